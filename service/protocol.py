"""uvicorn's httptools protocol with limits on the request head, answered in JSON.

Why: uvicorn bounds neither the size nor the number of request headers: four
connections sending 300 MB of headers each grew a worker from 684 to 1,558 MB, and a
long URL got a plain-text 400 instead of the JSON 414 the API documents. This protocol
counts the bytes of each request head as they arrive and refuses, then closes the
connection, as soon as

* the URL is over :data:`MAX_URL_BYTES` (414),
* more than :data:`MAX_HEADERS` headers, or a head over :data:`MAX_HEAD_BYTES`, arrived
  (431, Request Header Fields Too Large),

so a worker never holds more than about one read buffer beyond the limit per
connection; a head still incomplete after :data:`HEAD_TIMEOUT_S` gets a 408 (a client
sending a byte now and then cannot hold a connection). Other malformed requests get a
JSON 400 instead of uvicorn's plain text.

After a refusal the response is sent, the sending side shut down, and up to
:data:`DRAIN_BYTES` more of what the client was still sending are read and dropped
before closing: closing a socket with unread data makes the kernel reset the
connection, and the client would never see its 414/431.
``papers serve`` uses it when httptools is installed (uvicorn's default then).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: Longest URL (path and query string) accepted; the query string alone is limited to
#: 32 KB by service.middleware.SizeLimitMiddleware (JSON 414 too).
MAX_URL_BYTES = 34 * 1024
#: Most request headers, and most bytes of the whole head (request line and headers).
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024
#: Seconds a request head may take to arrive in full.
HEAD_TIMEOUT_S = 30.0
#: After a refusal: at most this much more is read (and dropped), for at most DRAIN_S.
DRAIN_BYTES = 4 << 20
DRAIN_S = 2.0


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing (httptools wraps it)."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str, str] | None = None
        self._drained = 0
        self._head_timer: asyncio.TimerHandle | None = None

    # -- counting ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._refuse_in_parser(414, "uri_too_long", f"the URL is over {MAX_URL_BYTES // 1024} KB")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refuse_in_parser(431, "headers_too_large", f"more than {MAX_HEADERS} request headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:  # draining after a refusal
            self._drained += len(data)
            if self._drained > DRAIN_BYTES:
                self.transport.close()
            return
        super().data_received(data)
        if self._refusal is not None or self.transport.is_closing():
            return
        if self._in_head:  # the head is still arriving: count what it has cost so far
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_too_slow)
            if self._head_bytes > MAX_HEAD_BYTES:
                # a single endless header never reaches on_header: stop reading it here
                self._refusal = (431, "headers_too_large", f"the request head is over {MAX_HEAD_BYTES // 1024} KB")
                self._send_refusal()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and self._refusal is None and not self.transport.is_closing():
            self._refusal = (408, "request_timeout", f"the request head took over {HEAD_TIMEOUT_S:g} s")
            self._send_refusal()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    # -- answering -----------------------------------------------------------------------
    def _refuse_in_parser(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _Refused(message)

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            self._refusal = (400, "bad_request", "the request is not valid HTTP")
        self._send_refusal()

    def _send_refusal(self) -> None:
        assert self._refusal is not None
        status, code, message = self._refusal
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self._cancel_head_timer()
        self.transport.write(b"".join(head))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer, then FIN; keep reading (and dropping) a while
            self.loop.call_later(DRAIN_S, self.transport.close)
        else:
            self.transport.close()


def http_protocol() -> type | str:
    """The protocol ``papers serve`` runs: this one with httptools, else uvicorn's h11
    (which bounds the request head itself, at 16 KB, with a plain-text 400)."""
    try:
        import httptools  # noqa: F401  # optional: its presence chooses the protocol
    except ImportError:
        return "h11"
    return LimitedHttpToolsProtocol
