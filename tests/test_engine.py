"""The SearchEngine facade over the built 8k real sample: modes, filters, paging,
related papers, recommendations, daily lists, ❤ re-ranking, Chinese queries."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest

from indexer.errors import IndexUnavailable, InvalidInput, InvalidQuery, NotFound
from tests.conftest import SAMPLE, SAMPLE_ZH


def _sample_rows():
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def rows():
    return _sample_rows()


def test_title_query_finds_its_paper_first(search_engine, rows):
    found = 0
    for r in rows[::400][:20]:
        res = search_engine.search(r["title"], mode="bm25", size=5)
        if res.hits and res.hits[0].id == r["id"]:
            found += 1
    assert found >= 18, f"only {found}/20 titles ranked their own paper first"


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_every_mode_answers_with_highlights(search_engine, mode):
    res = search_engine.search("graph neural networks", mode=mode, size=10)
    assert res.total > 0 and len(res.hits) == 10
    assert res.mode == mode
    if mode != "dense":
        assert any("<mark>" in h.title_html + h.snippet_html for h in res.hits)


def test_paging_is_consistent(search_engine):
    first = search_engine.search("language models", mode="bm25", page=1, size=10)
    second = search_engine.search("language models", mode="bm25", page=2, size=10)
    assert first.total == second.total
    assert not {h.id for h in first.hits} & {h.id for h in second.hits}


def test_category_and_date_filters(search_engine):
    res = search_engine.search("galaxies", mode="hybrid", cat="astro-ph", size=50)
    assert res.hits and all(any(c.startswith("astro-ph") for c in h.categories) for h in res.hits)
    res = search_engine.search("learning", mode="bm25", cat="cs.AI+cs.LG-cs.CV", size=50)
    assert res.hits
    for h in res.hits:
        assert {"cs.AI", "cs.LG"} & set(h.categories) and "cs.CV" not in h.categories
    lo, hi = date(2026, 6, 22), date(2026, 6, 24)
    res = search_engine.search("model", mode="hybrid", date_from=lo, date_to=hi, size=50)
    assert res.hits and all(lo <= h.published <= hi for h in res.hits)


def test_sort_by_date(search_engine):
    res = search_engine.search("transformer", mode="hybrid", sort="date", size=30)
    days = [h.published for h in res.hits]
    assert days == sorted(days, reverse=True)


def test_arxiv_id_and_url_open_the_paper(search_engine, rows):
    pid = rows[123]["id"]
    for q in (pid, f"https://arxiv.org/abs/{pid}v2", f"arXiv:{pid}"):
        res = search_engine.search(q)
        assert res.arxiv_id == pid and res.hits[0].id == pid


def test_chinese_query_finds_english_paper(search_engine):
    with gzip.open(SAMPLE_ZH, "rt", encoding="utf-8") as f:
        zh = [json.loads(line) for line in f][:40]
    hits_at_10 = 0
    for item in zh:
        res = search_engine.search(item["zh"], mode="hybrid", size=10)
        hits_at_10 += item["id"] in [h.id for h in res.hits]
    # mixed Chinese summaries keep English terms (model names, acronyms): BM25 with
    # jieba finds most of them even with the fake embedder
    assert hits_at_10 >= 24, hits_at_10


def test_bad_requests_raise_clear_errors(search_engine):
    with pytest.raises(InvalidQuery):
        search_engine.search("x", mode="nope")
    with pytest.raises(InvalidQuery):
        search_engine.search("x", page=200, size=10)
    with pytest.raises(InvalidQuery):
        search_engine.search("")
    with pytest.raises(InvalidQuery):
        search_engine.search("graphs", cat="cs.AI++")
    with pytest.raises(InvalidInput):
        search_engine.paper("not-an-id")
    with pytest.raises(NotFound):
        search_engine.paper("2101.99999")


def test_related_never_itself_and_explained(search_engine, rows):
    pid = rows[500]["id"]
    rel = search_engine.related(pid, k=10)
    assert len(rel) == 10
    assert pid not in [h.id for h in rel]
    assert sum(bool(h.shared_keywords) for h in rel) >= 5


def test_recommend_from_liked_and_disliked(search_engine, rows):
    liked = [r["id"] for r in rows if "cs.CV" in r["categories"]][:3]
    disliked = [r["id"] for r in rows if r["categories"][0].startswith("astro-ph")][:2]
    recs = search_engine.recommend(liked, disliked, k=20)
    ids = [h.id for h in recs]
    assert ids and not set(ids) & (set(liked) | set(disliked))
    assert sum("cs.CV" in h.categories for h in recs) >= 10


def test_prefs_rerank_moves_matching_papers_up(search_engine):
    base = search_engine.search("learning", mode="bm25", size=50)
    pref = search_engine.search("learning", mode="bm25", size=50, sort="prefs", prefs=["galaxy", "star formation"])
    assert {h.id for h in base.hits} <= {h.id for h in search_engine.search("learning", mode="bm25", size=100).hits}
    top = pref.hits[:5]
    assert any("galax" in (h.title + h.abstract).lower() for h in top)


def test_daily_list_and_navigation(search_engine):
    d = search_engine.daily("cs.CV")
    assert d.day is not None and d.total > 0 and d.hits
    assert all(h.published == d.day for h in d.hits)
    assert all("cs.CV" in h.categories for h in d.hits)
    if d.prev_day:
        prev = search_engine.daily("cs.CV", day=d.prev_day)
        assert prev.next_day == d.day


def test_daily_opens_on_the_latest_real_batch_not_a_stray_cross_list(search_engine):
    """In the sample cs.AI's newest day (2026-07-09) holds one cross-listed paper; the
    listing day before it holds 128. Without a date the list opens on the batch, and the
    stray day stays one "next" click away."""
    for expr in ("cs.AI", "cs.LG", "cs.AI+cs.LG-cs.CV"):
        d = search_engine.daily(expr)
        assert d.day == date(2026, 7, 1) and d.total >= 35, (expr, d.day, d.total)
        assert d.next_day == date(2026, 7, 9)
        stray = search_engine.daily(expr, day=d.next_day)
        assert stray.total == 1 and stray.prev_day == d.day and stray.next_day is None
    assert search_engine.daily("cs.AI").total == 128
    # a sparse category (a paper every few days) still opens on its newest day
    hep = search_engine.daily("hep-th")
    assert hep.total >= 1 and hep.next_day is None


def test_categories_and_stats(search_engine):
    cats = dict(search_engine.categories())
    assert cats["cs.CV"] > 100
    stats = search_engine.stats()
    assert stats["papers"] == 8000 and stats["index_version"] >= 1


def test_keywords_for_text(search_engine):
    kws = search_engine.keywords("We propose a graph neural network for molecular property prediction.", k=5)
    assert kws and any("graph" in k["keyword"] for k in kws)


def test_engine_without_index_is_unavailable(tmp_path):
    from indexer.search.engine import SearchEngine
    from tests.conftest import make_settings

    eng = SearchEngine.open(make_settings(tmp_path))
    assert not eng.ready
    with pytest.raises(IndexUnavailable):
        eng.search("anything")


def test_a_search_request_and_its_fields_answer_alike(search_engine):
    """The API and the web page ask with a SearchRequest, the CLI and feeds with arguments:
    one answer, and one check of the limits (the same messages)."""
    from indexer.search.search_request import SearchRequest

    fields = dict(mode="bm25", cat="cs.LG", sort="prefs", page=2, size=5, prefs=["graph"])
    by_fields = search_engine.search("neural network", **fields)
    by_request = search_engine.search(SearchRequest("neural network", **fields))
    assert by_request.total == by_fields.total > 5
    assert [h.to_dict() for h in by_request.hits] == [h.to_dict() for h in by_fields.hits]
    for bad in (dict(page=11, size=100), dict(size=101), dict(mode="x"), dict(sort="y")):
        with pytest.raises(InvalidQuery) as by_args:
            search_engine.search("graph", **bad)
        with pytest.raises(InvalidQuery) as by_req:
            search_engine.search(SearchRequest("graph", **bad))
        assert by_req.value.message == by_args.value.message
