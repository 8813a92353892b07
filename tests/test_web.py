"""Server-rendered pages over the built 8k real sample, read as HTML (no browser).

Checks what a reader without JavaScript gets: every page renders, links and forms carry
state in the URL, ids and URLs typed into the search box open the paper, errors are pages.
Browser behaviour (interests, ❤ order, KaTeX, screenshots) is in test_browser.py.
"""

from __future__ import annotations

import gzip
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import SAMPLE

HTML = {"accept": "text/html"}
STATIC = Path(__file__).resolve().parents[1] / "service" / "static"


class Page(HTMLParser):
    """Collects links, scripts, form fields and element attributes of one page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.scripts: list[dict] = []
        self.stylesheets: list[str] = []
        self.inputs: dict[str, dict] = {}
        self.elements: list[tuple[str, dict]] = []
        self.text_parts: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "script":
            self.scripts.append(a)
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a["href"])
        if tag in ("input", "select", "textarea") and a.get("name"):
            self.inputs.setdefault(a["name"], a)

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def with_class(self, cls: str) -> list[dict]:
        return [a for _, a in self.elements if cls in (a.get("class") or "").split()]


def get_page(client, url: str, status: int = 200):
    r = client.get(url, headers=HTML, follow_redirects=False)
    assert r.status_code == status, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    return r, Page(r.text)


def test_home(app_client):
    r, page = get_page(app_client, "/")
    assert "search" in page.inputs.get("q", {}).get("type", "")
    cat_links = [h for h in page.links if h.startswith("/daily/")]
    assert "/daily/cs.CV" in cat_links
    assert re.search(r"cs\.CV\s*</span>\s*<span class=\"count\">[\d,]+", r.text)
    assert "Latest days" in page.text and any(h.startswith("/paper/") for h in page.links)
    # the cs.AI card shows its latest real batch, not 2026-07-09's one cross-listed paper
    assert re.search(r'href="/daily/cs.AI">cs.AI</a> <span class="muted small">2026-07-01 · 128 papers', r.text)


def test_search_results_page(app_client):
    r, page = get_page(app_client, "/search?q=graph+neural+network&mode=bm25&size=10")
    assert "<mark>" in r.text
    hits = page.with_class("hit")
    assert len(hits) == 10
    assert page.inputs["q"]["value"] == "graph neural network"
    assert any(h.startswith("/search?") and "page=2" in h for h in page.links), "no pager link"
    sort_links = [h for h in page.links if "sort=date" in h and "graph" in h]
    assert sort_links, "no date-order link keeping the query"
    assert any(h.startswith("/feeds/search.atom?") for h in page.links)
    assert "Query syntax" in page.text


def test_search_filters_are_kept_in_the_form(app_client):
    r, page = get_page(app_client, "/search?q=learning&cat=cs.AI-cs.CV&from=2026-01-01&sort=date&mode=bm25")
    assert page.inputs["cat"]["value"] == "cs.AI-cs.CV"
    assert page.inputs["from"]["value"] == "2026-01-01"
    selected = [a for t, a in page.elements if t == "option" and "selected" in a]
    assert {"date", "bm25"} <= {a["value"] for a in selected}
    page2 = [h for h in page.links if "page=2" in h]
    if page2:
        q = parse_qs(urlsplit(page2[0]).query)
        assert q["cat"] == ["cs.AI-cs.CV"] and q["sort"] == ["date"] and q["from"] == ["2026-01-01"]


def test_search_page_errors_are_shown_not_thrown(app_client):
    r, page = get_page(app_client, "/search?q=x&from=not-a-date", status=422)
    assert "'from' must be a date" in page.text
    r, page = get_page(app_client, "/search?q=x&cat=%2B-%2B", status=422)
    assert page.with_class("notice-error")
    r, page = get_page(app_client, "/search")
    assert "Type a query" in page.text


@pytest.mark.parametrize("typed", ["0704.0808", "arXiv:0704.0808v2", "https://arxiv.org/abs/0704.0808", "https://arxiv.org/pdf/0704.0808v1"])
def test_an_id_or_url_in_the_search_box_opens_the_paper(app_client, typed):
    r = app_client.get("/search", params={"q": typed}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/paper/0704.0808"


def test_paper_page(app_client):
    r, page = get_page(app_client, "/paper/0704.0808")
    assert "On a Conjecture of EM Stein" in page.text
    assert "https://arxiv.org/abs/0704.0808" in page.links and any(h.startswith("https://arxiv.org/pdf/0704.0808") for h in page.links)
    chips = [h for h in page.links if h.startswith("/search?q=%22")]
    assert len(chips) >= 3, "keyword chips should link to phrase searches"
    related = page.with_class("hit")
    assert related and all(a["data-id"] != "0704.0808" for a in related)
    assert "Shared keywords" in page.text
    assert "@misc{" in r.text and "eprint" in r.text
    article = next(a for t, a in page.elements if a.get("id") == "paper")
    kws = json.loads(article["data-keywords"])
    assert kws and all(0 < k["weight"] <= 1 for k in kws)


def test_paper_urls(app_client, rows_with_slash):
    r = app_client.get("/paper/0704.0808v1", headers=HTML, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/paper/0704.0808"
    r = app_client.get("/arxiv/0704.0808", headers=HTML, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/paper/0704.0808"
    r = app_client.get("/arxiv/cs.CV?date=2026-06-23", headers=HTML, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/daily/cs.CV?date=2026-06-23"
    get_page(app_client, f"/paper/{rows_with_slash}")
    r, page = get_page(app_client, "/paper/2401.99999", status=404)
    assert "not" in page.text.lower() and "Traceback" not in r.text
    get_page(app_client, "/paper/not-an-id", status=422)


@pytest.fixture(scope="module")
def rows_with_slash() -> str:
    """An old-style id (``hep-th/9901001``) from the bundled sample."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return next(json.loads(line)["id"] for line in f if "/" in json.loads(line)["id"])


def test_daily_page(app_client):
    r, page = get_page(app_client, "/daily/cs.CV")
    day = page.inputs["date"]["value"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day)
    assert page.with_class("hit")
    prev = [h for h in page.links if h.startswith("/daily/cs.CV?") and "date=" in h]
    assert prev, "no previous-day link"
    r2, page2 = get_page(app_client, prev[0])
    assert page2.inputs["date"]["value"] < day
    assert any(f"date={day}" in h for h in page2.links), "no next-day link back"
    assert any(h == "/feeds/cs.CV.atom" for h in page.links)


def test_daily_page_bad_input(app_client):
    r, page = get_page(app_client, "/daily/cs.CV?date=2024-99-99", status=422)
    assert "'date' must be a date" in page.text
    r, page = get_page(app_client, "/daily/cs.CV?sort=interests", status=422)
    assert "'sort' must be one of default, prefs (not 'interests')" in page.text and page.with_class("hit")
    r, page = get_page(app_client, "/search?q=graph&mode=meaning", status=422)
    assert "'mode' must be one of hybrid, bm25, dense (not 'meaning')" in page.text
    get_page(app_client, "/daily/+-+", status=422)


def test_keyword_extractor_page(app_client):
    get_page(app_client, "/keywords")
    text = "Graph neural networks learn representations of nodes by message passing between neighbouring nodes in a graph."
    r = app_client.post("/keywords", data={"text": text, "k": "5"}, headers=HTML)
    assert r.status_code == 200
    page = Page(r.text)
    words = [a for _, a in page.elements if "kw-word" in (a.get("class") or "")]
    assert 0 < len(words) <= 5
    assert "graph" in page.text.lower()
    r = app_client.post("/keywords", data={"text": "  "}, headers=HTML)
    assert r.status_code == 422 and "Paste some text" in r.text


def test_similar_page(app_client):
    get_page(app_client, "/similar")
    draft = "We propose a convolutional network for semantic segmentation of street scenes, trained end to end."
    r = app_client.post("/similar", data={"text": draft}, headers=HTML)
    assert r.status_code == 200
    page = Page(r.text)
    assert len(page.with_class("hit")) > 3
    assert "Shared keywords" in page.text


def test_interests_and_help_pages(app_client):
    r, page = get_page(app_client, "/interests")
    ids = {a.get("id") for _, a in page.elements}
    assert {"cloud", "prefs-list", "interests-export", "interests-import", "interests-clear"} <= ids
    r, page = get_page(app_client, "/help")
    assert "ti:" in page.text


def test_unknown_page_is_a_404_page(app_client):
    r, page = get_page(app_client, "/no/such/page", status=404)
    assert "404" in page.text


def test_no_inline_script_or_handlers(app_client):
    for url in ("/", "/search?q=quantum", "/paper/0704.0808", "/daily/cs.CV", "/keywords", "/similar", "/interests", "/docs", "/nope"):
        r = app_client.get(url, headers=HTML)
        page = Page(r.text)
        for attrs in page.scripts:
            assert attrs.get("src", "").startswith("/static/"), (url, attrs)
        for tag, attrs in page.elements:
            assert not any(k.startswith("on") for k in attrs), (url, tag, attrs)
        assert "default-src 'self'" in r.headers["content-security-policy"]


def test_api_docs_page_is_local(app_client):
    """/docs: Swagger UI from files served here (no CDN, no inline script), linked from the footer."""
    r, page = get_page(app_client, "/docs")
    srcs = [s["src"] for s in page.scripts]
    assert srcs == ["/static/api-docs/swagger-ui-bundle.js", "/static/api-docs.js"]
    for asset in [*srcs, *page.stylesheets]:
        a = app_client.get(asset)
        assert a.status_code == 200 and len(a.content) > 100, asset
    assert "SwaggerUIBundle" in app_client.get("/static/api-docs/swagger-ui-bundle.js").text
    assert 'data-openapi-url="/openapi.json"' in r.text
    assert "/docs" not in app_client.get("/openapi.json").json()["paths"]
    r, home = get_page(app_client, "/")
    assert "/docs" in home.links and "/openapi.json" not in home.links


def test_first_page_load_is_under_300kb(app_client):
    """Home and results: under 300 KB even uncompressed. A paper page with TeX also loads
    the local KaTeX: under 300 KB as transferred (gzip), fonts aside."""
    katex = ["/static/katex/katex.min.js", "/static/katex/katex.min.css", "/static/katex/auto-render.min.js"]
    for url, extra in (("/", []), ("/search?q=neural+network", []), ("/paper/0704.0808", katex)):
        r = app_client.get(url, headers={**HTML, "accept-encoding": "gzip"})
        page = Page(r.text)
        raw, wire = len(r.content), r.num_bytes_downloaded
        assets = [s["src"] for s in page.scripts] + page.stylesheets + extra
        assert assets
        for asset in assets:
            a = app_client.get(asset, headers={"accept-encoding": "gzip"})
            assert a.status_code == 200, asset
            raw += len(a.content)
            wire += a.num_bytes_downloaded
        assert wire < 300 * 1024, (url, wire)
        if not extra:
            assert raw < 300 * 1024, (url, raw)


def test_static_files_are_local_and_cached(app_client):
    for name in ("katex/katex.min.js", "katex/katex.min.css", "katex/auto-render.min.js", "app.js", "style.css"):
        r = app_client.get(f"/static/{name}")
        assert r.status_code == 200 and "max-age" in r.headers.get("cache-control", "")
    css = (STATIC / "katex" / "katex.min.css").read_text()
    for font in re.findall(r"url\((fonts/[^)]+)\)", css):
        assert (STATIC / "katex" / font).exists(), font
