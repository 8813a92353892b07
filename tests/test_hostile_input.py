"""Hostile input and hostile environments: a clear 4xx / clear error, never a 500, nothing lost.

HTTP (in-process app over the built 8k sample): oversized and deeply nested JSON bodies,
invalid UTF-8 (body and query), huge query strings, SQL and HTML metacharacters in every
parameter of every endpoint. CORS and the per-client rate limit are configurable.

Storage: a data directory that cannot be used (its parent is a regular file: tests run
as root, so chmod would not stop reads) and a full disk (a write raising ENOSPC) give a
clear error with its exit code, keep the published index, and lose no harvested paper.
"""

from __future__ import annotations

import asyncio
import errno
import json
from urllib.parse import quote

import pytest

from tests.arxiv_standin import ArxivStandin
from tests.conftest import make_settings

SQL_HTML = [
    "' OR '1'='1",
    "'; DROP TABLE papers; --",
    '" OR 1=1 --',
    "1; SELECT * FROM papers",
    "%' UNION SELECT id, title FROM papers --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "&lt;&amp;&#x27;",
    "\\x00\\u0000",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "cs.AI+-+-+",
    "\u202e\u0000\u200b",
    "ti: au: cat: id:",
    '"unclosed phrase',
    "((((((((((",
    "-",
    "OR OR OR",
]


@pytest.fixture(scope="module")
def app_env(request):
    """(service.app module, settings of the built 8k sample, its SearchEngine)."""
    from service import app as app_mod
    return app_mod, request.getfixturevalue("built_settings"), request.getfixturevalue("search_engine")


@pytest.fixture(scope="module")
def client(app_env, request):
    return request.getfixturevalue("app_client")


def _assert_clean(resp, where: str) -> None:
    """< 500; a 4xx has the one JSON error shape; no stack trace leaks."""
    assert resp.status_code < 500, f"{where}: {resp.status_code} {resp.text[:300]}"
    assert "Traceback" not in resp.text, where
    if resp.status_code >= 400 and resp.request.url.path.startswith("/api"):
        body = resp.json()
        assert set(body["error"]) >= {"code", "message"}, f"{where}: {body}"


def _assert_html_fields_inert(data, where: str) -> None:
    """Fields meant for HTML (``*_html``) never carry live markup from the input."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith("_html") and isinstance(value, str):
                assert "<script" not in value.lower() and "<img" not in value.lower(), f"{where}: {key}={value[:200]}"
            else:
                _assert_html_fields_inert(value, where)
    elif isinstance(data, list):
        for item in data:
            _assert_html_fields_inert(item, where)


def _openapi_get_params(client) -> list[tuple[str, list[str], list[str]]]:
    """(path template, path params, query params) of every GET /api operation."""
    spec = client.get("/openapi.json").json()
    out = []
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        if not op or not path.startswith("/api"):
            continue
        params = op.get("parameters", [])
        out.append(
            (path, [p["name"] for p in params if p["in"] == "path"], [p["name"] for p in params if p["in"] == "query"])
        )
    return out


def _paper_count(client) -> int:
    return client.get("/api/stats").json()["papers"]


def test_metacharacters_in_every_parameter(client):
    before = _paper_count(client)
    ops = _openapi_get_params(client)
    assert any(p == "/api/search" for p, _, _ in ops), "no /api/search in the OpenAPI schema"
    n = 0
    for path, path_params, query_params in ops:
        for value in SQL_HTML:
            url = path
            for p in path_params:
                url = url.replace("{" + p + "}", quote(value, safe=""))
            for q in query_params or [None]:
                params = {q: value} if q else {}
                resp = client.get(url, params=params)
                _assert_clean(resp, f"GET {url} {params}")
                n += 1
                if resp.status_code == 200 and "json" in resp.headers.get("content-type", ""):
                    _assert_html_fields_inert(resp.json(), url)
    for path in ("/api/keywords", "/api/similar"):
        for value in SQL_HTML:
            _assert_clean(client.post(path, json={"text": value}), f"POST {path} {value!r}")
    for value in SQL_HTML:
        _assert_clean(client.post("/api/recommend", json={"liked": [value], "disliked": [value]}), f"recommend {value!r}")
    assert n > len(SQL_HTML)
    assert _paper_count(client) == before  # no statement ran


def test_search_results_escape_html(client):
    resp = client.get("/api/search", params={"q": '<script>alert(1)</script> "><img onerror=x>', "mode": "bm25"})
    _assert_clean(resp, "search html")
    if resp.status_code == 200:
        for hit in resp.json().get("hits", []):
            for key in ("title_html", "snippet_html"):
                assert "<script" not in hit.get(key, "") and "<img" not in hit.get(key, "")


@pytest.mark.parametrize("path", ["/api/keywords", "/api/similar"])
def test_oversized_body_is_413(client, path):
    resp = client.post(path, json={"text": "word " * 2_000_000})  # ~10 MB
    _assert_clean(resp, path)
    assert resp.status_code == 413


def test_oversized_recommend_list_is_rejected(client):
    resp = client.post("/api/recommend", json={"liked": ["2401.00001"] * 200_000})
    _assert_clean(resp, "recommend")
    assert resp.status_code in (413, 422)


@pytest.mark.parametrize("depth", [200, 5_000, 100_000])
@pytest.mark.parametrize("path", ["/api/keywords", "/api/recommend", "/api/similar"])
def test_deeply_nested_json_is_4xx(client, path, depth):
    body = "[" * depth + "]" * depth
    for payload in (body, '{"text": ' + body + "}", '{"liked": ' + body + "}"):
        resp = client.post(path, content=payload, headers={"content-type": "application/json"})
        _assert_clean(resp, f"{path} depth {depth}")
        assert 400 <= resp.status_code < 500


@pytest.mark.parametrize("path", ["/api/keywords", "/api/recommend", "/api/similar"])
def test_invalid_utf8_and_broken_json_bodies(client, path):
    for raw in (b'{"text": "\xff\xfe\xfd"}', b"\xc3\x28", b'{"text": "abc', b"", b"null", b"[]", b'"text"', b"{" * 10):
        resp = client.post(path, content=raw, headers={"content-type": "application/json"})
        _assert_clean(resp, f"{path} {raw[:20]!r}")
        assert 400 <= resp.status_code < 500, (path, raw, resp.status_code)
    resp = client.post(path, content=b"text=abc", headers={"content-type": "application/x-www-form-urlencoded"})
    _assert_clean(resp, f"{path} form")


def test_invalid_utf8_in_query_and_path(client):
    for url in ("/api/search?q=%FF%FE%FD", "/api/search?q=%C3%28&cat=%FF", "/api/papers/%FF%FE", "/api/daily/%C3%28"):
        _assert_clean(client.get(url), url)


def _raw_get(app, path: str, query: bytes) -> tuple[int, dict]:
    """One GET straight into the ASGI app with raw query bytes (no client-side URL checks)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
        "headers": [(b"host", b"testserver"), (b"accept", b"application/json")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body else {}


@pytest.mark.parametrize("length", [10_000, 100_000, 1_000_000])
def test_huge_query_strings(client, length):
    app = client.app
    for query in (b"q=" + b"a" * length, b"q=x&cat=" + b"cs.AI%2B" * (length // 8), b"q=" + b"%FF" * (length // 3)):
        status, body = _raw_get(app, "/api/search", query)
        assert 400 <= status < 500, (length, query[:30], status)
        assert {"code", "message"} <= set(body["error"])
    if length <= 10_000:  # also through the HTTP client, where the URL is still legal
        resp = client.get("/api/search", params={"q": "a" * length})
        _assert_clean(resp, f"q of {length}")
        assert resp.status_code in (413, 414, 422)


def test_raw_invalid_utf8_bytes_in_query(client):
    for query in (b"q=\xff\xfe\xfd", b"q=%C3%28&mode=\xff", b"cat=\xc3\x28&q=neural", b"q=" + bytes(range(1, 32))):
        status, body = _raw_get(client.app, "/api/search", query)
        assert status < 500, (query, status, body)
        if status >= 400:
            assert {"code", "message"} <= set(body["error"])


def test_out_of_range_numbers(client):
    for params in ({"q": "x", "page": "-1"}, {"q": "x", "size": "100000"}, {"q": "x", "page": "99999999999999999999"},
                   {"q": "x", "page": "1e9"}, {"q": "x", "from": "2024-13-45"}, {"q": "x", "mode": "nope"}):
        resp = client.get("/api/search", params=params)
        _assert_clean(resp, str(params))
        assert resp.status_code == 422, (params, resp.status_code)


def test_cors_is_configurable(app_env):
    app_mod, built_settings, search_engine = app_env
    from fastapi.testclient import TestClient

    settings = built_settings.model_copy(update={"cors_origins": "https://allowed.example"})
    with TestClient(app_mod.create_app(settings, engine=search_engine)) as c:
        pre = {"Origin": "https://allowed.example", "Access-Control-Request-Method": "GET"}
        ok = c.options("/api/search", headers=pre)
        assert ok.headers.get("access-control-allow-origin") == "https://allowed.example"
        bad = c.options("/api/search", headers={**pre, "Origin": "https://evil.example"})
        assert bad.headers.get("access-control-allow-origin") != "https://evil.example"
    with TestClient(app_mod.create_app(built_settings, engine=search_engine)) as c:  # default: no CORS
        r = c.get("/api/stats", headers={"Origin": "https://allowed.example"})
        assert "access-control-allow-origin" not in r.headers


def test_rate_limit_is_configurable(app_env):
    app_mod, built_settings, search_engine = app_env
    from fastapi.testclient import TestClient

    settings = built_settings.model_copy(update={"rate_limit": 5})
    with TestClient(app_mod.create_app(settings, engine=search_engine)) as c:
        codes = [c.get("/api/stats").status_code for _ in range(12)]
    assert codes[:5] == [200] * 5 and 429 in codes, codes
    limited = codes.index(429)
    assert limited >= 5


# -- storage ------------------------------------------------------------------------

def _blocked_settings(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where a directory should be\n")
    return make_settings(blocker / "data")


def test_unusable_data_dir_is_a_clear_cli_error(tmp_path):
    from tests.nightly_support import run_papers

    settings = _blocked_settings(tmp_path)
    for args in (["nightly", "--set", "cs"], ["build", "--no-embeddings"], ["nightly", "--dry-run"]):
        proc = run_papers(settings, *args, cwd=tmp_path, timeout=120)
        assert proc.returncode == 6, (args, proc.returncode, proc.stderr[-800:])
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and "not a directory" in last, last
        assert "Traceback" not in proc.stderr


def test_unusable_data_dir_in_the_library(tmp_path):
    from indexer.errors import StorageError
    from indexer.pipeline.locks import run_lock
    from indexer.pipeline.nightly import nightly

    settings = _blocked_settings(tmp_path)
    with pytest.raises(StorageError) as e:
        nightly(settings, set_spec="cs")
    assert e.value.exit_code == 6 and "not a directory" in e.value.message
    with pytest.raises(StorageError):
        with run_lock(settings):
            pass


def test_unusable_data_dir_in_the_service(tmp_path):
    from fastapi.testclient import TestClient

    from indexer.errors import PapersError
    from service import app as app_mod

    settings = _blocked_settings(tmp_path)
    try:
        app = app_mod.create_app(settings)
    except PapersError as e:  # refusing to start with a clear message is fine too
        assert "not a directory" in e.message or "data" in e.message
        return
    with TestClient(app, raise_server_exceptions=False) as c:
        for url in ("/readyz", "/api/search?q=neural", "/api/stats"):
            r = c.get(url)
            assert r.status_code == 503 or r.status_code < 500, (url, r.status_code, r.text[:300])
            # never a server path or a library's internals in the answer
            assert str(tmp_path) not in r.text and "/not-a-dir" not in r.text, (url, r.text[:300])
            assert "Errno" not in r.text and "sqlite" not in r.text.lower(), (url, r.text[:300])


@pytest.mark.parametrize("k", [True, 10.5, "10"])
def test_body_integers_are_strict(client, k):
    """`k: true` used to be accepted as 1 (pydantic's lax mode)."""
    for path in ("/api/keywords", "/api/similar"):
        r = client.post(path, json={"text": "graph neural networks for molecules", "k": k})
        assert r.status_code == 422, (path, k, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "invalid_input"


def test_disk_full_while_publishing_loses_nothing(tmp_path, monkeypatch):
    import indexer.manifest as manifest_mod
    from indexer.errors import StorageError
    from indexer.pipeline.nightly import nightly
    from tests.nightly_support import (
        base_settings,
        db_state,
        max_seq,
        published,
        recorded_oai_ids,
        run_papers,
        runs,
    )

    with ArxivStandin(filter_records=False) as standin:
        settings = base_settings(tmp_path / "d", n=40).model_copy(
            update={"arxiv_oai_url": standin.oai_url, "arxiv_api_url": standin.api_url}
        )
        before = published(settings)
        real_write = manifest_mod.atomic_write_bytes

        def full(path, data):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(manifest_mod, "atomic_write_bytes", full)
        with pytest.raises(StorageError) as e:
            nightly(settings, from_date=__import__("datetime").date(2014, 10, 1), set_spec="cs", sleep=lambda s: None)
        assert e.value.exit_code == 6 and "disk full" in e.value.message
        after = published(settings)
        assert after.version == before.version and after.checksum == before.checksum  # index kept
        assert recorded_oai_ids() <= set(db_state(settings))  # harvested papers kept
        assert runs(settings)[-1][0] == "failed"

        monkeypatch.setattr(manifest_mod, "atomic_write_bytes", real_write)  # space again
        # the operator runs it again (a new process, as cron would)
        proc = run_papers(settings, "nightly", "--from", "2014-10-01", "--set", "cs", standin=standin)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert published(settings).version == before.version + 1
        assert published(settings).built_seq == max_seq(settings)
        assert recorded_oai_ids() <= set(db_state(settings))


def test_disk_full_while_taking_the_lock(tmp_path, monkeypatch):
    import indexer.pipeline.locks as locks
    from indexer.errors import StorageError

    settings = make_settings(tmp_path / "d")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(locks.os, "open", full)
    with pytest.raises(StorageError) as e:
        with locks.run_lock(settings):
            pass
    assert "No space left" in e.value.message


def test_error_bodies_are_json_for_unknown_routes_and_methods(client):
    for method, url in (("GET", "/api/nope"), ("DELETE", "/api/search"), ("PUT", "/api/keywords")):
        resp = client.request(method, url)
        _assert_clean(resp, f"{method} {url}")
        assert resp.status_code in (404, 405)
        json.loads(resp.text)


def test_a_request_over_its_time_budget_gets_a_json_503(app_env):
    """PAPERS_REQUEST_TIMEOUT: the client gets an answer even when a route hangs."""
    import threading
    import time

    from fastapi.testclient import TestClient

    app_mod, built_settings, search_engine = app_env
    release = threading.Event()

    class Hanging:
        """The real engine, except that a search hangs until released."""

        def __getattr__(self, name):
            return getattr(search_engine, name)

        def search(self, *a, **k):
            release.wait(30)
            return search_engine.search(*a, **k)

    settings = built_settings.model_copy(update={"request_timeout": 0.5})
    try:
        with TestClient(app_mod.create_app(settings, engine=Hanging())) as c:
            t0 = time.monotonic()
            r = c.get("/api/search", params={"q": "neural"})
            waited = time.monotonic() - t0
            assert r.status_code == 503 and r.json()["error"]["code"] == "timeout", r.text[:200]
            assert "Retry-After" in r.headers and waited < 20
            assert c.get("/api/stats").status_code == 200  # the worker still answers
            release.set()
    finally:
        release.set()
