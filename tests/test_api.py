"""The JSON API over the built 8k real sample: every endpoint, its answers and its errors.

Errors must have one shape (``{"error": {"code", "message"}}``) and the right status; no
request may produce a 500 or leak a traceback.
"""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from tests.conftest import SAMPLE, make_settings

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def old_style_id(rows) -> str:
    return next(r["id"] for r in rows if "/" in r["id"])


def assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert body["error"]["message"], body
    assert "Traceback" not in resp.text
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


# -- health ------------------------------------------------------------------------------


def test_healthz_and_readyz(app_client):
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["index_version"] >= 1


def test_not_ready_without_an_index(tmp_path):
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "empty"))) as c:
        assert c.get("/healthz").status_code == 200
        assert_error(c.get("/readyz"), 503)
        err = assert_error(c.get("/api/search", params={"q": "neural"}), 503, "index_unavailable")
        assert "papers build" in err["message"]
        home = c.get("/", headers={"accept": "text/html"})
        assert home.status_code == 200 and "papers build" in home.text


# -- search ------------------------------------------------------------------------------


def test_search_returns_highlighted_hits(app_client):
    r = app_client.get("/api/search", params={"q": "neural network", "mode": "bm25", "size": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] > 7 and len(body["hits"]) == 7
    assert body["page"] == 1 and body["size"] == 7 and body["mode"] == "bm25" and body["took_ms"] >= 0
    hit = body["hits"][0]
    assert set(hit) >= {"id", "title", "authors", "categories", "published", "updated", "score", "title_html", "snippet_html"}
    date.fromisoformat(hit["published"])
    assert any("<mark>" in h["title_html"] + h["snippet_html"] for h in body["hits"])


def test_api_hits_are_the_engines_hits_serialised_once(app_client, search_engine):
    """One hit serialiser (Hit.to_dict): the API's hits are exactly the engine's, serialised."""
    got = app_client.get("/api/search", params={"q": "graph neural networks", "mode": "bm25", "size": 10}).json()
    res = search_engine.search("graph neural networks", mode="bm25", size=10)
    assert got["hits"] and got["hits"] == [h.to_dict() for h in res.hits]
    assert set(got["hits"][0]) == {"id", "title", "authors", "categories", "published", "updated", "score",
                                   "title_html", "snippet_html", "shared_keywords"}


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_every_mode(app_client, mode):
    body = app_client.get("/api/search", params={"q": "image segmentation", "mode": mode, "size": 5}).json()
    assert body["mode"] == mode and len(body["hits"]) == 5


def test_paging_does_not_repeat(app_client):
    p1 = app_client.get("/api/search", params={"q": "language models", "mode": "bm25", "size": 10}).json()
    p2 = app_client.get("/api/search", params={"q": "language models", "mode": "bm25", "size": 10, "page": 2}).json()
    assert p1["total"] == p2["total"] and p2["page"] == 2
    assert not {h["id"] for h in p1["hits"]} & {h["id"] for h in p2["hits"]}


def test_category_expression_filter(app_client):
    hits = app_client.get("/api/search", params={"q": "learning", "mode": "bm25", "cat": "cs.AI+cs.LG-cs.CV", "size": 50}).json()["hits"]
    assert hits
    for h in hits:
        assert {"cs.AI", "cs.LG"} & set(h["categories"]) and "cs.CV" not in h["categories"]


def test_date_filter_and_date_sort(app_client):
    params = {"q": "model", "mode": "bm25", "from": "2026-06-22", "to": "2026-06-30", "sort": "date", "size": 50}
    hits = app_client.get("/api/search", params=params).json()["hits"]
    assert hits
    days = [h["published"] for h in hits]
    assert all("2026-06-22" <= d <= "2026-06-30" for d in days)
    assert days == sorted(days, reverse=True)


def test_browse_by_category_without_query(app_client):
    body = app_client.get("/api/search", params={"cat": "hep-th", "sort": "date", "size": 20}).json()
    assert body["total"] > 20 and all(any(c.startswith("hep-th") for c in h["categories"]) for h in body["hits"])


def test_prefs_sort_reranks_by_preference_keywords(app_client):
    base = {"q": "learning", "mode": "bm25", "size": 20}
    plain = [h["id"] for h in app_client.get("/api/search", params=base).json()["hits"]]
    prefs = app_client.get("/api/search", params={**base, "sort": "prefs", "prefs": "reinforcement learning,reward,policy"}).json()["hits"]
    assert [h["id"] for h in prefs] != plain
    top = app_client.get(f"/api/papers/{prefs[0]['id']}").json()
    text = (top["title"] + " " + top["abstract"]).lower()
    assert "reinforcement" in text or "reward" in text or "policy" in text


def test_an_arxiv_url_as_query_names_the_paper(app_client):
    body = app_client.get("/api/search", params={"q": "https://arxiv.org/abs/0704.0808v1"}).json()
    assert body["arxiv_id"] == "0704.0808" and body["hits"][0]["id"] == "0704.0808"


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a" * 1001},
        {"q": "x", "size": "101"},
        {"q": "x", "size": "0"},
        {"q": "x", "page": "0"},
        {"q": "x", "page": "11", "size": "100"},  # beyond the 1000 window
        {"q": "x", "page": "51", "size": "20"},
        {"q": "x", "page": "1e9"},
        {"q": "x", "mode": "nope"},
        {"q": "x", "sort": "nope"},
        {"q": "x", "from": "2024-13-45"},
        {"q": "x", "to": "yesterday"},
        {"q": "x", "from": "2025-01-02", "to": "2025-01-01"},
        {"q": ""},  # nothing to search for
        {"q": "x", "cat": "cs.AI+-+-+"},
        {"q": "x", "cat": "c" * 501},
    ],
)
def test_bad_search_parameters_are_422(app_client, params):
    assert_error(app_client.get("/api/search", params=params), 422)


def test_window_edge_is_allowed(app_client):
    assert app_client.get("/api/search", params={"q": "model", "mode": "bm25", "page": 10, "size": 100}).status_code == 200


def test_huge_query_string_is_414(app_client):
    assert_error(app_client.get("/api/search", params={"q": "a" * 40_000}), 414, "uri_too_long")


@pytest.mark.parametrize(
    "value",
    ["' OR '1'='1", "'; DROP TABLE papers; --", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "%", "\\", "\x00", "ti:", '"', "((("],
)
def test_metacharacters_never_500(app_client, value):
    for params in ({"q": value}, {"q": "x", "cat": value}, {"q": value, "mode": "bm25", "sort": "prefs", "prefs": value}):
        r = app_client.get("/api/search", params=params)
        assert r.status_code in (200, 422), (params, r.status_code, r.text[:200])
        if r.status_code == 422:
            assert_error(r, 422)


def test_invalid_percent_encoding(app_client):
    for url in ("/api/search?q=%FF%FE", "/api/search?q=%E0%A4%A", "/api/search?q=%%%", "/api/papers/%FF", "/api/daily/%C3%28"):
        r = app_client.get(url)
        assert r.status_code < 500 and "Traceback" not in r.text, url


# -- papers --------------------------------------------------------------------------------


def test_paper_metadata(app_client, rows):
    row = next(r for r in rows if r["id"] == "0704.0808")
    body = app_client.get("/api/papers/0704.0808").json()
    assert body["id"] == "0704.0808" and body["title"] == row["title"]
    assert body["abs_url"] == "https://arxiv.org/abs/0704.0808" and body["pdf_url"].startswith("https://arxiv.org/pdf/")
    assert body["authors"] and body["categories"]
    assert app_client.get("/api/papers/arXiv:0704.0808v2").json()["id"] == "0704.0808"


def test_old_style_ids_with_a_slash(app_client, old_style_id):
    assert app_client.get(f"/api/papers/{old_style_id}").json()["id"] == old_style_id
    assert app_client.get(f"/api/papers/{old_style_id}/keywords").status_code == 200
    related = app_client.get(f"/api/papers/{old_style_id}/related").json()["hits"]
    assert old_style_id not in {h["id"] for h in related}
    bib = app_client.get(f"/api/papers/{old_style_id}.bib")
    assert bib.status_code == 200 and "eprint" in bib.text and old_style_id in bib.text


def test_unknown_and_invalid_ids(app_client):
    assert_error(app_client.get("/api/papers/2401.99999"), 404, "not_found")
    assert_error(app_client.get("/api/papers/2401.99999/related"), 404)
    assert_error(app_client.get("/api/papers/2401.99999.bib"), 404)
    for bad in ("not-an-id", "12345", "..%2F..%2Fetc%2Fpasswd", "0704.0808/extra"):
        assert_error(app_client.get(f"/api/papers/{bad}"), 422, "invalid_id")


def test_paper_keywords(app_client):
    kws = app_client.get("/api/papers/0704.0808/keywords").json()["keywords"]
    assert len(kws) >= 3
    weights = [k["weight"] for k in kws]
    assert weights == sorted(weights, reverse=True)
    assert any("hilbert" in k["keyword"].lower() or "vector field" in k["keyword"].lower() for k in kws), kws


def test_related_papers_explain_themselves(app_client):
    hits = app_client.get("/api/papers/0704.0808/related", params={"k": 5}).json()["hits"]
    assert 0 < len(hits) <= 5 and "0704.0808" not in {h["id"] for h in hits}
    assert any(h["shared_keywords"] for h in hits)
    assert_error(app_client.get("/api/papers/0704.0808/related", params={"k": 0}), 422)
    assert_error(app_client.get("/api/papers/0704.0808/related", params={"k": 51}), 422)


def test_size_is_the_one_page_size_name_and_k_an_alias(app_client, rows):
    """`size` everywhere (related used to take only `k` and ignored `?size=6`)."""
    assert len(app_client.get("/api/papers/0704.0808/related", params={"size": 6}).json()["hits"]) == 6
    assert len(app_client.get("/api/papers/0704.0808/related", params={"k": 4}).json()["hits"]) == 4
    assert_error(app_client.get("/api/papers/0704.0808/related", params={"size": 51}), 422)
    text = rows[0]["title"] + ". " + rows[0]["abstract"]
    assert len(app_client.post("/api/keywords", json={"text": text, "size": 3}).json()["keywords"]) == 3
    assert len(app_client.post("/api/similar", json={"text": text, "size": 3}).json()["hits"]) == 3
    liked = [rows[10]["id"]]
    assert len(app_client.post("/api/recommend", json={"liked": liked, "size": 3}).json()["hits"]) == 3
    assert_error(app_client.post("/api/similar", json={"text": text, "size": 101}), 422)
    schema = app_client.get("/openapi.json").json()["components"]["schemas"]
    assert all("size" in schema[m]["properties"] and "k" not in schema[m]["properties"]
               for m in ("KeywordsRequest", "SimilarRequest", "RecommendRequest"))


@pytest.mark.parametrize(
    "url",
    ["/api/search?q=graph&mode=meaning", "/api/search?q=graph&sort=newest", "/api/daily/cs.LG?sort=interests"],
)
def test_unknown_enum_values_are_422(app_client, url):
    err = assert_error(app_client.get(url), 422, "invalid_input")
    name = url.split("&")[-1].split("?")[-1].split("=")[0]
    assert name in err["message"] and "Input should be" in err["message"]


def test_unknown_category_is_called_unknown(app_client):
    err = assert_error(app_client.get("/api/daily/cs.AI+bogus.XY"), 422)
    assert "unknown category 'bogus.XY'" in err["message"] and "malformed" not in err["message"]
    err = assert_error(app_client.get("/api/search", params={"q": "graph", "cat": "cs.XYZ"}), 422)
    assert "unknown category 'cs.XYZ'" in err["message"]


def test_bibtex(app_client):
    r = app_client.get("/api/papers/0704.0808.bib")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/x-bibtex")
    text = r.text
    assert text.startswith("@misc{") and text.rstrip().endswith("}")
    assert "eprint" in text and "0704.0808" in text and "archivePrefix = {arXiv}" in text.replace("  ", " ").replace("  ", " ")
    assert text.count("{") == text.count("}")


def test_on_demand_fetch_of_an_unknown_id(tmp_path):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.arxiv_standin import ArxivStandin

    with ArxivStandin() as standin:
        offline = make_settings(tmp_path / "d", arxiv_api_url=standin.api_url)
        with TestClient(create_app(offline)) as c:
            assert_error(c.get("/api/papers/1605.08386"), 404)
        online = offline.model_copy(update={"online_fetch": True})
        with TestClient(create_app(online)) as c:
            body = c.get("/api/papers/1605.08386").json()
            assert body["id"] == "1605.08386" and body["title"]
            assert c.get("/api/papers/1605.08386.bib").status_code == 200


# -- text tools --------------------------------------------------------------------------------


def test_keywords_of_text(app_client, rows):
    text = rows[0]["title"] + ". " + rows[0]["abstract"]
    kws = app_client.post("/api/keywords", json={"text": text, "k": 5}).json()["keywords"]
    assert 0 < len(kws) <= 5 and all(k["weight"] > 0 for k in kws)
    zh = app_client.post("/api/keywords", json={"text": "我们提出了一种基于深度学习的图像分割方法，在医学图像数据集上取得了最好的结果。"}).json()
    assert zh["keywords"]


@pytest.mark.parametrize(
    "payload",
    [{"text": ""}, {"text": "   "}, {"text": "x", "k": 0}, {"text": "x", "k": 51}, {"text": 5}, {}, {"text": "x", "extra": 1}, {"text": "a" * 200_001}],
)
def test_keywords_bad_bodies(app_client, payload):
    assert_error(app_client.post("/api/keywords", json=payload), 422)


def test_bodies_over_256kb_are_413(app_client):
    for path in ("/api/keywords", "/api/similar", "/api/recommend"):
        assert_error(app_client.post(path, json={"text": "word " * 60_000}), 413, "payload_too_large")
    chunks = (b'{"text": "' + b"a" * 100_000 + b'"}' if i == 0 else b" " * 100_000 for i in range(3))
    r = app_client.post("/api/keywords", content=chunks, headers={"content-type": "application/json"})
    assert_error(r, 413)


def test_broken_json_is_422(app_client):
    r = app_client.post("/api/keywords", content=b'{"text": "abc', headers={"content-type": "application/json"})
    assert_error(r, 422)


def test_broken_json_says_where(app_client):
    body = b'{"text": "graph neural networks",\n "size": }'
    r = app_client.post("/api/keywords", content=body, headers={"content-type": "application/json"})
    err = assert_error(r, 422, "invalid_json")
    assert err["message"] == "the request body is not valid JSON: Expecting value at line 2, column 10 (character 44)"


def test_similar_finds_the_source_paper(app_client, rows):
    row = rows[123]
    hits = app_client.post("/api/similar", json={"text": row["abstract"], "k": 5}).json()["hits"]
    assert row["id"] in [h["id"] for h in hits[:3]]
    assert hits[0]["shared_keywords"]
    assert_error(app_client.post("/api/similar", json={"text": "x", "k": 101}), 422)


def test_recommend(app_client, rows):
    liked = [rows[10]["id"], rows[20]["id"]]
    hits = app_client.post("/api/recommend", json={"liked": liked, "disliked": [rows[30]["id"]], "k": 8}).json()["hits"]
    assert 0 < len(hits) <= 8 and not set(liked) & {h["id"] for h in hits}
    assert_error(app_client.post("/api/recommend", json={"liked": []}), 422)
    assert_error(app_client.post("/api/recommend", json={"liked": ["2401.00001"] * 101}), 422)
    assert_error(app_client.post("/api/recommend", json={"liked": ["x"], "disliked": ["2401.00001"] * 101}), 422)
    assert_error(app_client.post("/api/recommend", json={"liked": ["not an id"]}), 422)
    assert_error(app_client.post("/api/recommend", json={"liked": ["2401.99999"]}), 404)


# -- lists ------------------------------------------------------------------------------------------


def test_daily_list_and_its_neighbours(app_client):
    body = app_client.get("/api/daily/cs.CV").json()
    day = body["date"]
    assert body["expr"] and day and body["total"] >= len(body["hits"]) > 0
    assert all(h["published"] == day and any(c.startswith("cs.CV") for c in h["categories"]) for h in body["hits"])
    assert body["prev_date"] < day and body["next_date"] is None
    prev = app_client.get("/api/daily/cs.CV", params={"date": body["prev_date"]}).json()
    assert prev["date"] == body["prev_date"] and prev["next_date"] == day


def test_daily_expression_and_paging(app_client):
    body = app_client.get("/api/daily/cs.AI+cs.LG-cs.CV", params={"size": 5}).json()
    for h in body["hits"]:
        assert {"cs.AI", "cs.LG"} & set(h["categories"]) and "cs.CV" not in h["categories"]
    if body["total"] > 5:
        p2 = app_client.get("/api/daily/cs.AI+cs.LG-cs.CV", params={"size": 5, "page": 2}).json()
        assert not {h["id"] for h in p2["hits"]} & {h["id"] for h in body["hits"]}


def test_daily_errors(app_client):
    assert_error(app_client.get("/api/daily/cs.CV", params={"date": "2024-02-30"}), 422)
    assert_error(app_client.get("/api/daily/cs.CV", params={"size": 101}), 422)
    assert_error(app_client.get("/api/daily/+-+"), 422)


def test_categories_with_counts(app_client):
    cats = app_client.get("/api/categories").json()["categories"]
    counts = [c["count"] for c in cats]
    assert counts == sorted(counts, reverse=True)
    by_name = {c["category"]: c["count"] for c in cats}
    assert by_name["cs.CV"] >= 1287  # primary-category papers alone in the sample


def test_stats(app_client):
    body = app_client.get("/api/stats").json()
    assert 7000 < body["papers"] <= 8000
    assert body["newest_paper"] == "2026-08-05"
    assert body["index_version"] >= 1
    assert "last_nightly" in body


def test_feed_links_use_the_configured_public_url(built_settings, search_engine):
    """A client's Host header must not end up in links that others read."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    settings = built_settings.model_copy(update={"public_url": "https://papers.example.org/"})
    with TestClient(create_app(settings, engine=search_engine)) as c:
        r = c.get("/feeds/search.atom", params={"q": "neural"}, headers={"Host": "evil.example"})
    assert r.status_code == 200
    assert "evil.example" not in r.text and "https://papers.example.org/paper/" in r.text


def test_atom_feeds(app_client):
    r = app_client.get("/feeds/cs.CV.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    entries = feed.findall(f"{ATOM}entry")
    daily = app_client.get("/api/daily/cs.CV", params={"size": 100}).json()
    assert len(entries) == len(daily["hits"]) > 0
    assert entries[0].find(f"{ATOM}title").text and entries[0].find(f"{ATOM}summary").text
    r = app_client.get("/feeds/search.atom", params={"q": "transformer"})
    assert r.status_code == 200 and ET.fromstring(r.content).findall(f"{ATOM}entry")
    r = app_client.get("/feeds/search.atom", params={"q": "<script>\x01"})
    assert r.status_code == 200
    ET.fromstring(r.content)  # still well-formed XML
    assert_error(app_client.get("/feeds/search.atom"), 422)
    assert_error(app_client.get("/feeds/+-+.atom"), 422)


# -- protocol -------------------------------------------------------------------------------------


def test_unknown_routes_and_methods(app_client):
    assert_error(app_client.get("/api/nope"), 404, "not_found")
    assert_error(app_client.delete("/api/search"), 405, "method_not_allowed")
    assert_error(app_client.put("/api/keywords", json={"text": "x"}), 405)


def test_security_headers_on_api_responses(app_client):
    for r in (app_client.get("/api/stats"), app_client.get("/api/nope"), app_client.get("/api/search", params={"q": ""})):
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"]


def test_rate_limit_answers_429_json(built_settings, search_engine):
    from fastapi.testclient import TestClient

    from service.app import create_app

    settings = built_settings.model_copy(update={"rate_limit": 3})
    with TestClient(create_app(settings, engine=search_engine)) as c:
        codes = [c.get("/api/categories").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        r = c.get("/api/categories")
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/healthz").status_code == 200  # probes are never limited


def test_openapi_states_the_limits(app_client):
    spec = app_client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert params["q"]["schema"]["maxLength"] == 1000
    assert params["size"]["schema"]["maximum"] == 100
    assert {"from", "to", "cat", "mode", "sort", "prefs", "page"} <= set(params)
    for path in ("/api/papers/{paper_id}", "/api/papers/{paper_id}/related", "/api/papers/{paper_id}.bib", "/api/keywords",
                 "/api/recommend", "/api/similar", "/api/daily/{catexpr}", "/api/categories", "/api/stats", "/healthz", "/readyz",
                 "/feeds/{catexpr}.atom", "/feeds/search.atom"):
        assert path in spec["paths"], path
    body = spec["components"]["schemas"]["KeywordsRequest"]["properties"]["text"]
    assert body["maxLength"] == 200_000


def _raw_get(app, path: str, query: bytes, accept: bytes = b"application/json") -> tuple[int, bytes]:
    """One GET straight into the ASGI app with raw (possibly non-UTF-8) query bytes."""
    import asyncio

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
        "headers": [(b"host", b"testserver"), (b"accept", accept)],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    "path,query,accept",
    [
        ("/api/search", b"q=%C3%28&mode=\xff", b"application/json"),
        ("/search", b"q=\xff\xfe&cat=\xc3\x28", b"text/html"),
        ("/search", b"q=neural&from=\xff", b"text/html"),
        ("/feeds/search.atom", b"q=neural\xff", b"*/*"),
        ("/feeds/cs.CV.atom", b"date=\xff", b"*/*"),
        ("/daily/cs.CV", b"date=\xff&sort=prefs&prefs=\xfe", b"text/html"),
        ("/arxiv/cs.CV", b"date=\xff", b"text/html"),
        ("/nope", b"x=\xff", b"text/html"),
    ],
)
def test_raw_non_utf8_query_bytes_never_500(app_client, path, query, accept):
    status, body = _raw_get(app_client.app, path, query, accept)
    assert status < 500, (path, query, status, body[:300])
    assert b"Traceback" not in body


# -- building blocks ------------------------------------------------------------------------------


def test_token_bucket_refills_at_the_configured_rate():
    from service.middleware import TokenBucketLimiter

    now = [1000.0]
    limiter = TokenBucketLimiter(per_minute=6, clock=lambda: now[0])  # one token every 10 s, burst 6
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    wait = limiter.take("a")
    assert 9.9 < wait <= 10.0
    assert limiter.take("b") == 0.0  # clients are independent
    now[0] += 10.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_bibtex_entry_survives_hostile_metadata():
    from service.bibtex import bibtex_entry, cite_key

    paper = {"id": "hep-th/9901001", "title": "The {Large} N limit of 100% superconformal {field theories",
             "authors": ["Juan M. Maldacena", "Ö. Üst"], "published": "1999-01-01", "categories": ["hep-th"],
             "doi": "10.1023/A:1026654312961", "journal_ref": "Adv.Theor.Math.Phys. 2 (1998) 231 & more"}
    text = bibtex_entry(paper)
    assert text.startswith("@misc{maldacena1999large,")
    assert text.count("{") == text.count("}")
    assert "100\\%" in text and "\\& more" in text
    assert "eprint        = {hep-th/9901001}" in text
    assert cite_key({"id": "2401.01234", "title": "", "authors": []}) == "arxiv240101234"
