"""The one place that turns failures into HTTP responses.

Every error a client can see has the same JSON shape, ``{"error": {"code", "message"}}``,
and the status its cause deserves: :class:`indexer.errors.PapersError` carries both;
validation problems are 422, unknown routes 404, wrong methods 405, and anything
unexpected is a 500 with a generic message (the traceback goes to the log, never out).

Web pages (paths outside ``/api`` and ``/feeds`` asked for by a browser) get the same
status with a small HTML page instead, so a reader never sees raw JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexer.errors import PapersError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

#: Set by service.web: renders an error page for browsers (status, code, message) -> Response.
HtmlRenderer = Callable[[Request, int, str, str], Response]


#: What a client is told when the server itself failed (5xx): the full message names
#: server paths and library internals (tantivy, SQLite), so it goes to the log instead.
PUBLIC_MESSAGES = {
    "index_unavailable": "the search index is not available: the operator should run `papers build` "
    "(details are in the server log)",
    "storage_error": "the server's data directory is unusable (details are in the server log)",
    "upstream_error": "arXiv could not be reached; try again later",
}
GENERIC_SERVER_MESSAGE = "the service is not available right now (details are in the server log)"


def public_message(exc: BaseException) -> str:
    """The message a client may see for ``exc``: a PapersError's own message when it is the
    client's doing (4xx) or built for clients (``public``, e.g. the embedding build's
    progress), a fixed text for server-side failures (which are logged whole)."""
    if isinstance(exc, PapersError) and (exc.http_status < 500 or getattr(exc, "public", False)):
        return exc.message
    global _last_logged
    code = getattr(exc, "code", "")
    detail = str(getattr(exc, "message", None) or exc)
    if detail != _last_logged:  # once per distinct failure, not once per request of an outage
        _last_logged = detail
        log.warning("server-side failure shown to clients as %r: %s", code, detail)
    return PUBLIC_MESSAGES.get(code, GENERIC_SERVER_MESSAGE)


_last_logged = ""


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def wants_html(request: Request) -> bool:
    """A browser asking for a web page (not the API, not a feed)."""
    path = request.scope.get("path", "")
    if path.startswith(("/api", "/feeds", "/static")) or path in ("/healthz", "/readyz", "/openapi.json"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _json_error_message(err: dict[str, Any], doc: Any) -> str:
    """``Expecting value at line 2, column 7`` from FastAPI's json_invalid error (whose loc
    holds the character offset and whose body is the document)."""
    pos = next((p for p in err.get("loc", ()) if isinstance(p, int)), None)
    why = str((err.get("ctx") or {}).get("error") or "invalid JSON")
    if isinstance(doc, bytes):
        doc = doc.decode("utf-8", "replace")
    if pos is None or not isinstance(doc, str):
        return f"the request body is not valid JSON: {why}"
    line = doc.count("\n", 0, pos) + 1
    column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
    return f"the request body is not valid JSON: {why} at line {line}, column {column} (character {pos + 1})"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            return _json_error_message(err, getattr(exc, "body", None))
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "request"
        msg = str(err.get("msg", "invalid value"))
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, html_renderer: HtmlRenderer | None = None) -> None:
    """Register the handlers; ``html_renderer`` turns an error into a web page."""

    def respond(request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        if html_renderer is not None and wants_html(request):
            try:
                resp = html_renderer(request, status, code, message)
                for k, v in (headers or {}).items():
                    resp.headers[k] = v
                return resp
            except Exception:  # an error page must never fail the error path
                log.exception("error page failed to render")
        return json_error(status, code, message, headers)

    async def papers_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PapersError)
        headers = {"Retry-After": "30"} if exc.http_status == 503 else None
        return respond(request, exc.http_status, exc.code, public_message(exc), headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        json_invalid = any(e.get("type") == "json_invalid" for e in exc.errors())
        return respond(request, 422, "invalid_json" if json_invalid else "invalid_input", _validation_message(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        code = HTTP_CODES.get(status, "error")
        if status == 404 and exc.detail in (None, "Not Found"):
            message = f"no such page or endpoint: {request.scope.get('path', '')[:200]}"
        elif status == 405:
            message = f"method {request.method} is not allowed here"
        else:
            message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if status == 400 and "parsing the body" in message:
            status, code, message = 422, "invalid_json", "the request body is not valid JSON"
        return respond(request, status, code, message, dict(exc.headers or {}))

    app.add_exception_handler(PapersError, papers_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


class CatchAllMiddleware:
    """Outermost guard: an unexpected exception becomes a JSON 500 without a traceback.

    Starlette's own last-resort handler re-raises after answering; this one logs and
    answers, so a bug in one request never shows internals or kills the connection.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            resp = json_error(500, "internal_error", "an internal error occurred; it has been logged")
            await resp(scope, receive, send)
