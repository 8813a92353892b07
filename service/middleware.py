"""ASGI middlewares that guard every request: security headers, size limits, HEAD, a time
budget, rate limit.

Pure ASGI (no BaseHTTPMiddleware) so they add no per-request task and work for
streaming responses too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import json_error
from service.ratelimit import SharedClientSlots, SharedTokenBuckets

log = logging.getLogger(__name__)

#: Request bodies above this are refused with 413 (docs/api.md).
MAX_BODY_BYTES = 256 * 1024
#: Query strings above this are refused with 414; parameters have their own, smaller limits.
MAX_QUERY_STRING_BYTES = 32 * 1024

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # KaTeX positions glyphs with inline style attributes
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


_RAW_SECURITY_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
_RAW_SECURITY_NAMES = frozenset(k for k, _ in _RAW_SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """Adds CSP and friends to every response; long cache lifetimes for static files.

    The headers are appended as ready-made byte pairs (every response pays for this)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers") or ())
                present = {k.lower() for k, _ in raw}
                if present.isdisjoint(_RAW_SECURITY_NAMES):
                    raw.extend(_RAW_SECURITY_HEADERS)
                else:  # a route set one of them itself: keep its value
                    raw.extend(kv for kv in _RAW_SECURITY_HEADERS if kv[0] not in present)
                message["headers"] = raw
                if is_static and message.get("status") == 200:
                    MutableHeaders(scope=message)["Cache-Control"] = "public, max-age=86400"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    pass


class SizeLimitMiddleware:
    """413 for bodies over ``max_body`` bytes (declared or streamed); 414 for huge URLs.

    The body is read here (it is small by construction) and replayed to the app, so a
    chunked upload cannot slip past a Content-Length check.
    """

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, max_query: int = MAX_QUERY_STRING_BYTES):
        self.app = app
        self.max_body = max_body
        self.max_query = max_query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_query:
            await json_error(414, "uri_too_long", f"the query string is over {self.max_query // 1024} KB")(scope, receive, send)
            return
        declared = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.max_body:
            await self._too_large()(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and not declared:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> ASGIApp:
        return json_error(413, "payload_too_large", f"request bodies are limited to {self.max_body // 1024} KB")


class TokenBucketLimiter:
    """Per-key token buckets: ``per_minute`` requests per minute, bursts up to the same.

    In memory and per process: enough to stop one client from starving the others on a
    small server; a shared limiter belongs in the reverse proxy.
    """

    def __init__(self, per_minute: int, max_clients: int = 10_000, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed, else the seconds until a token is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


EXEMPT_FROM_RATE_LIMIT = ("/healthz", "/readyz", "/static/")


class RateLimitMiddleware:
    """429 with the JSON error shape and ``Retry-After`` once a client address runs dry.

    The client is the connection's peer address (``scope["client"]``): ``papers serve``
    lets uvicorn replace it from ``X-Forwarded-For`` only for the proxies listed in
    ``PAPERS_TRUSTED_PROXIES``, so a client cannot pick its own bucket. With
    ``shared_path`` the buckets are shared by every worker (:mod:`service.ratelimit`).
    """

    def __init__(self, app: ASGIApp, per_minute: int, shared_path=None, concurrency: int = 0,
                 max_waiting: int = 64, max_wait_s: float = 30.0):
        self.app = app
        # requests of one client in progress at once (0 = no cap), on the whole server when
        # shared (else per worker); the rest wait their turn (up to max_waiting of them in a
        # worker, for max_wait_s, then 429), so 16 heavy requests from one client keep
        # `concurrency` threads busy, not every worker
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}
        self.limiter: TokenBucketLimiter | SharedTokenBuckets = TokenBucketLimiter(per_minute)
        self.shared_slots: SharedClientSlots | None = None
        if shared_path is not None:
            try:
                self.limiter = SharedTokenBuckets(shared_path, per_minute)
                if concurrency:
                    self.shared_slots = SharedClientSlots(shared_path.parent / "clients", concurrency)
            except OSError as e:
                log.warning("rate limit buckets cannot be shared between workers (%s): each worker keeps its own",
                            e.strerror or e)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(EXEMPT_FROM_RATE_LIMIT):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        wait = self.limiter.take(key)
        if wait > 0:
            retry = str(max(1, int(wait + 0.999)))
            resp = json_error(429, "rate_limited", f"too many requests: retry in {retry} s", headers={"Retry-After": retry})
            await resp(scope, receive, send)
            return
        if not self.concurrency:
            await self.app(scope, receive, send)
            return
        users = self._users.get(key, 0)
        if users >= self.concurrency + self.max_waiting:
            resp = json_error(429, "rate_limited", "too many requests in progress from this client: retry in 1 s",
                              headers={"Retry-After": "1"})
            await resp(scope, receive, send)
            return
        self._users[key] = users + 1
        try:
            if self.shared_slots is not None:
                held = await self.shared_slots.acquire(key, self.max_wait_s)
                if held is None:
                    resp = json_error(429, "rate_limited", "too many requests in progress from this client: "
                                      "retry in 1 s", headers={"Retry-After": "1"})
                    await resp(scope, receive, send)
                    return
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.shared_slots.release(held)
                return
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = asyncio.Semaphore(self.concurrency)
            async with slot:
                await self.app(scope, receive, send)
        finally:
            left = self._users[key] - 1
            if left:
                self._users[key] = left
            else:
                del self._users[key]
                self._slots.pop(key, None)


class HeadAsGetMiddleware:
    """HEAD works wherever GET does: the GET route answers, its body is not sent.

    FastAPI routes declared with ``@router.get`` answer 405 to HEAD (monitors and link
    checkers use it); the status and headers (Content-Length included) are the GET's.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # swallow the streamed parts; the last one ends the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, headless)


#: Seconds a request may take before the client gets a 503 (``PAPERS_REQUEST_TIMEOUT``).
DEFAULT_REQUEST_BUDGET = 30.0


class TimeBudgetMiddleware:
    """A JSON 503 with Retry-After when a request has not started answering within its
    budget, so a client (and the connection) is never held indefinitely.

    The route's thread cannot be interrupted and finishes its work in the background;
    the budget bounds what a client waits, the rate limiter bounds what it can start.
    """

    def __init__(self, app: ASGIApp, seconds: float = DEFAULT_REQUEST_BUDGET):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = timed_out = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if timed_out:  # the client already has its 503
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracking))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done:
            task.result()
            return
        if started:  # already answering (a long stream): let it finish
            await task
            return
        timed_out = True
        task.cancel()
        task.add_done_callback(_retrieve)
        resp = json_error(503, "timeout", f"the request took over {self.seconds:g} s; try a narrower query",
                          headers={"Retry-After": "5"})
        await resp(scope, receive, send)


def _retrieve(task: asyncio.Future) -> None:
    """Collect a timed-out request's outcome (no "exception was never retrieved")."""
    if not task.cancelled():
        task.exception()
