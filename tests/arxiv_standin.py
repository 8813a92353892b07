"""A local stand-in for arXiv that replays REAL recorded responses on 127.0.0.1.

Why: nightly, kill, load and CLI tests must exercise the real HTTP path (httpx, retries,
resumption tokens, the 503 + Retry-After dance) without touching arxiv.org. Point the
code at it with ``PAPERS_ARXIV_OAI_URL`` / ``PAPERS_ARXIV_API_URL`` (``standin.oai_url``,
``standin.api_url``) and ``PAPERS_ARXIV_DELAY=0``.

What it serves (all bodies are files from ``tests/fixtures/arxiv``, copied from
``shared/data/arxiv``):

OAI-PMH (``/oai``)
  * ``ListRecords`` (no token): the recorded ``mikesaelim_ListRecordsResponse.xml`` page
    (arXivRaw, 6 records, resumptionToken ``726959|1001``); the token is answered with the
    recorded ``paperhive_ListRecords_arXiv_2015-01-01_2015-01-03.xml`` page (2 records, no
    token), so a harvester really follows a token across two pages. Any other token gets
    the recorded ``badResumptionToken`` error.
  * With ``filter_records=True`` (default) it behaves like the real server for ``from`` /
    ``until`` / ``set``: records outside the window or set are cut out of the recorded
    pages (an emptied page is skipped and its token dropped), and when nothing is left
    the recorded ``noRecordsMatch`` error is returned. ``filter_records=False`` serves the
    pages byte for byte whatever the window.
  * An unknown ``set`` (not in the recorded ``ListSets``): ``noRecordsMatch``.
  * ``unavailable=N``: the first N ListRecords requests get the recorded HTTP 503 with
    ``Retry-After: 10``.
  * ``GetRecord`` for the two recorded ids, ``idDoesNotExist`` otherwise; ``Identify``,
    ``ListSets``.
  * ``hold_token=True``: a request carrying the resumption token blocks until
    :meth:`release` is called (so a test can SIGKILL a harvester between pages).

arXiv API (``/api/query``): the recorded Atom feed whose original request had the same
``search_query``, ``id_list``, ``start`` and ``max_results`` (paging ignored as a fallback);
unknown ids get the recorded zero-result feed. The HTTP status is the recorded one
(400 for the ``abc`` id-format error).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ARXIV = Path(__file__).resolve().parent / "fixtures" / "arxiv"
TOKEN = "726959|1001"

_RECORD = re.compile(rb"<record>.*?</record>\s*", re.S)
_DATESTAMP = re.compile(rb"<datestamp>([0-9-]+)</datestamp>")
_SETSPEC = re.compile(rb"<setSpec>([^<]+)</setSpec>")
_TOKEN_EL = re.compile(rb"<resumptionToken[^>]*>[^<]*</resumptionToken>\s*")


@dataclass
class _Page:
    head: bytes  # everything before the first <record>
    records: list[bytes]
    tail: bytes  # from after the last record (token, closing tags)

    @classmethod
    def parse(cls, body: bytes) -> _Page:
        matches = list(_RECORD.finditer(body))
        if not matches:
            return cls(body, [], b"")
        return cls(body[: matches[0].start()], [m.group(0) for m in matches], body[matches[-1].end() :])

    def render(self, records: list[bytes], keep_token: bool) -> bytes:
        tail = self.tail if keep_token else _TOKEN_EL.sub(b"", self.tail)
        return self.head + b"".join(records) + tail


def _record_matches(record: bytes, from_: date | None, until: date | None, set_spec: str | None) -> bool:
    m = _DATESTAMP.search(record)
    if m:
        stamp = date.fromisoformat(m.group(1).decode())
        if from_ and stamp < from_:
            return False
        if until and stamp > until:
            return False
    if set_spec:
        specs = [s.decode() for s in _SETSPEC.findall(record)]
        if not any(s == set_spec or s.startswith(set_spec + ":") for s in specs):
            return False
    return True


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


class ArxivStandin:
    """Threaded HTTP server on 127.0.0.1 replaying recorded arXiv responses."""

    def __init__(self, *, filter_records: bool = True, unavailable: int = 0, hold_token: bool = False):
        self.filter_records = filter_records
        self.unavailable = unavailable
        self.hold_token = hold_token
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.token_requested = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        oai = ARXIV / "oai_pmh"
        self._oai = {p.name: p.read_bytes() for p in oai.glob("*.xml")}
        self._503 = json.loads((oai / "paperhive_ListRecords_503_RetryAfter.json").read_text())
        self._pages = [
            _Page.parse(self._oai["mikesaelim_ListRecordsResponse.xml"]),
            _Page.parse(self._oai["paperhive_ListRecords_arXiv_2015-01-01_2015-01-03.xml"]),
        ]
        self._sets = {s.decode() for s in _SETSPEC.findall(self._oai["paperhive_ListSets.xml"])}
        self._api = self._load_api()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> ArxivStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                url = urlsplit(self.path)
                standin._dispatch(self, url.path, parse_qs(url.query, keep_blank_values=True))

            def do_POST(self) -> None:  # noqa: N802 - OAI-PMH allows POST forms
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                standin._dispatch(self, urlsplit(self.path).path, parse_qs(body, keep_blank_values=True))

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="arxiv-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ArxivStandin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def release(self) -> None:
        """Let held token requests through."""
        self._release.set()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def oai_url(self) -> str:
        return f"{self.base_url}/oai"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/query"

    def env(self) -> dict[str, str]:
        """PAPERS_* variables pointing a subprocess at this stand-in."""
        return {"PAPERS_ARXIV_OAI_URL": self.oai_url, "PAPERS_ARXIV_API_URL": self.api_url, "PAPERS_ARXIV_DELAY": "0"}

    def count(self, verb: str) -> int:
        with self._lock:
            return sum(1 for path, q in self.requests if q.get("verb") == verb)

    # -- dispatch --------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        q = {k: v[-1] for k, v in query.items()}
        with self._lock:
            self.requests.append((path, q))
        if path.rstrip("/") in ("/oai", "/oai2"):
            status, headers, body = self._oai_response(q)
        elif path.rstrip("/") in ("/api/query", "/api"):
            status, headers, body = self._api_response(q)
        else:
            status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found\n"
        handler.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "date", "server"):
                handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _xml(self, name: str) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, self._oai[name]

    def _oai_response(self, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        verb = q.get("verb", "")
        if verb == "Identify":
            return self._xml("paperhive_Identify.xml")
        if verb == "ListSets":
            return self._xml("paperhive_ListSets.xml")
        if verb == "GetRecord":
            ident = q.get("identifier", "")
            if ident.endswith("1302.2146"):
                return self._xml("mikesaelim_GetRecordResponse.xml")
            if ident.endswith("1412.8544"):
                return self._xml("paperhive_GetRecord_arXiv_1412.8544.xml")
            return self._xml("mikesaelim_ErrorResponseIdDoesNotExist.xml")
        if verb != "ListRecords":
            return 400, {"Content-Type": "text/plain"}, b"unsupported verb in the stand-in\n"
        with self._lock:
            if self.unavailable > 0:
                self.unavailable -= 1
                r = self._503
                return int(r["status"]), dict(r["headers"]), r["body"].encode()
        token = q.get("resumptionToken")
        if token is not None:
            if token != TOKEN:
                return self._xml("mikesaelim_ErrorResponseBadResumptionToken.xml")
            self.token_requested.set()
            if self.hold_token:
                self._release.wait(timeout=600)
            # the window/set travel inside the token on the real server; here the
            # second page is filtered with the window of the first request
            window = getattr(self, "_window", (None, None, None))
            return self._page(1, *window)
        set_spec = q.get("set") or None
        if set_spec and set_spec not in self._sets and not any(set_spec.startswith(s + ":") for s in self._sets):
            return self._xml("mikesaelim_ErrorResponseNoRecordsMatch.xml")
        window = (_parse_day(q.get("from")), _parse_day(q.get("until")), set_spec)
        self._window = window
        return self._page(0, *window)

    def _page(self, index: int, from_: date | None, until: date | None, set_spec: str | None):
        if not self.filter_records:
            page = self._pages[index]
            return 200, {"Content-Type": "text/xml; charset=utf-8"}, page.render(page.records, keep_token=True)
        kept = [[r for r in p.records if _record_matches(r, from_, until, set_spec)] for p in self._pages]
        non_empty = [i for i in range(len(kept)) if kept[i]]
        if not non_empty:
            return self._xml("mikesaelim_ErrorResponseNoRecordsMatch.xml")
        # the first request gets the first non-empty page; the token leads to the last one
        serve = non_empty[0] if index == 0 else non_empty[-1]
        has_more = index == 0 and serve != non_empty[-1]
        body = self._pages[serve].render(kept[serve], keep_token=has_more)
        if has_more and TOKEN.encode() not in body:
            body = body.replace(b"</ListRecords>", f"<resumptionToken>{TOKEN}</resumptionToken>\n</ListRecords>".encode())
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, body

    # -- arXiv API -------------------------------------------------------------------
    def _load_api(self) -> dict[tuple[str, str, str, str], tuple[int, bytes]]:
        out: dict[tuple[str, str, str, str], tuple[int, bytes]] = {}
        base = ARXIV / "api_atom"
        for line in (base / "MANIFEST.jsonl").read_text().splitlines():
            rec = json.loads(line)
            path = base / rec["file"]
            if not path.is_file():
                continue
            params = {k: v[-1] for k, v in parse_qs(urlsplit(rec["request_url"]).query, keep_blank_values=True).items()}
            key = (
                params.get("search_query", ""),
                params.get("id_list", ""),
                params.get("start", "0"),
                params.get("max_results", "10"),
            )
            out.setdefault(key, (int(rec.get("status", 200)), path.read_bytes()))
        return out

    def _api_response(self, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/atom+xml; charset=utf-8"}
        sq, ids = q.get("search_query", ""), q.get("id_list", "")
        exact = self._api.get((sq, ids, q.get("start", "0"), q.get("max_results", "10")))
        if exact:
            return exact[0], headers, exact[1]
        for (s, i, _start, _max), (status, body) in self._api.items():
            if s == sq and i == ids:
                return status, headers, body
        status, body = self._api[("", "0000.0000", "0", "100")]  # the recorded empty feed
        return status, headers, body


if __name__ == "__main__":  # manual use: python tests/arxiv_standin.py
    import time

    with ArxivStandin() as s:
        print(f"OAI {s.oai_url}\nAPI {s.api_url}", flush=True)
        while True:
            time.sleep(3600)
