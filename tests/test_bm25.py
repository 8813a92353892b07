"""BM25Index on the bundled 8k real arXiv sample: query language semantics, filters,
sorting, paging, incremental updates, reader/writer separation and corpus statistics.
Every expectation is recomputed independently in Python from the sample itself."""

from __future__ import annotations

import gzip
import json
import random
import threading
from datetime import date
from pathlib import Path

import pytest

from indexer.errors import IndexUnavailable, InvalidQuery, StorageError
from indexer.lexical.bm25 import BM25Index, IndexedDoc, relaxable_phrases
from indexer.lexical.catexpr import parse_category_expr
from indexer.lexical.query import parse_query
from indexer.text.tokenizer import author_terms, tokenize

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "indexer" / "data" / "sample-papers.jsonl.gz"
SAMPLE_ZH = REPO / "indexer" / "data" / "sample-zh.jsonl.gz"


def _load() -> list[IndexedDoc]:
    docs = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs.append(IndexedDoc(d["id"], d["title"], d["abstract"], d["authors"], d["categories"],
                                   date.fromisoformat(d["published"])))
    return docs


@pytest.fixture(scope="module")
def docs() -> list[IndexedDoc]:
    return _load()


@pytest.fixture(scope="module")
def by_id(docs) -> dict[str, IndexedDoc]:
    return {d.id: d for d in docs}


@pytest.fixture(scope="module")
def terms_of(docs) -> dict[str, tuple[list[str], list[str]]]:
    return {d.id: (tokenize(d.title), tokenize(d.abstract)) for d in docs}


@pytest.fixture(scope="module")
def index(tmp_path_factory, docs) -> BM25Index:
    ix = BM25Index.open(tmp_path_factory.mktemp("bm25") / "bm25")
    assert ix.upsert(docs) == len(docs)
    ix.commit()
    return ix


def _has_seq(seq: list[str], sub: list[str]) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_counts_and_doc_freq_match_python(index, docs, terms_of):
    assert index.num_docs == len(docs)
    for term in ["learn", "graph", "galaxi", "quantum", "transform", "zzzqqq"]:
        expected = sum(1 for t, a in terms_of.values() if term in t or term in a)
        assert index.doc_freq(term) == expected, term


def test_title_words_find_their_paper(index, docs):
    rng = random.Random(4)
    found = 0
    sample = rng.sample([d for d in docs if len(tokenize(d.title)) >= 5], 40)
    for d in sample:
        res = index.search(parse_query(d.title[:200].replace('"', " ")), limit=3)
        found += d.id in [h.id for h in res.hits]
    assert found >= 38, found


def test_title_counts_twice_in_one_field(tmp_path):
    """A title mention weighs TITLE_REPEAT times inside text_t (BM25F-style): the title hit
    ranks first, and a title-only paper (no abstract) is still found and ranked."""
    ix = BM25Index.open(tmp_path / "b")
    ix.upsert([IndexedDoc("2401.00002", "Graph partitions", "We study spectral methods of graphs."),
               IndexedDoc("2401.00001", "Spectral clustering", "We study spectral methods of graphs."),
               IndexedDoc("2401.00004", "Spectral sparsification of graphs", ""),
               IndexedDoc("2401.00003", "Other things", "Nothing related at all here.")])
    ix.commit()
    hits = ix.search(parse_query("spectral"), limit=4).hits
    assert [h.id for h in hits] == ["2401.00001", "2401.00004", "2401.00002"]
    assert ix.doc_freq("spectral") == 3 == ix.approx_doc_freq("spectral")


def test_repeated_query_words_weigh_more(tmp_path):
    """Query term frequency: "graph graph spectral" prefers the graph paper."""
    ix = BM25Index.open(tmp_path / "b")
    ix.upsert([IndexedDoc("2401.00001", "Graph methods", "A study of partitions."),
               IndexedDoc("2401.00002", "Spectral methods", "A study of partitions.")])
    ix.commit()
    once = ix.search(parse_query("graph spectral"), limit=2).hits
    assert once[0].score == pytest.approx(once[1].score)
    assert [h.id for h in ix.search(parse_query("graph graph spectral"), limit=2).hits][0] == "2401.00001"


def test_relaxed_phrase_finds_the_closest_papers(tmp_path):
    """A quoted phrase no paper holds returns nothing strictly; relaxed, papers holding its
    words rank, and a paper holding the phrase itself beats one with the words apart."""
    ix = BM25Index.open(tmp_path / "b")
    ix.upsert([IndexedDoc("2401.00001", "Neural networks for graphs", "Message passing on a graph."),
               IndexedDoc("2401.00002", "Graph theory", "Neural coding of networks in the brain.")])
    ix.commit()
    q = parse_query('"graph neural networks"')
    assert ix.search(q, limit=5).total == 0
    assert relaxable_phrases(q) == ["graph neural networks"]
    assert {h.id for h in ix.search(q, limit=5, relax=True).hits} == {"2401.00001", "2401.00002"}
    q2 = parse_query('"neural networks" graph')
    assert [h.id for h in ix.search(q2, limit=5, relax=True).hits][0] == "2401.00001"


def test_phrase_requires_adjacent_terms(index, terms_of):
    res = index.search(parse_query('"neural network"'), limit=200)
    assert res.total > 20
    phrase = tokenize("neural network")
    for h in res.hits:
        t, a = terms_of[h.id]
        assert _has_seq(t, phrase) or _has_seq(a, phrase), h.id
    expected = sum(1 for t, a in terms_of.values() if _has_seq(t, phrase) or _has_seq(a, phrase))
    assert res.total == expected


def test_exclusion_and_or(index, terms_of):
    res = index.search(parse_query("graph -neural"), limit=500)
    assert res.total > 0
    for h in res.hits:
        t, a = terms_of[h.id]
        assert "neural" not in t and "neural" not in a
        assert "graph" in t or "graph" in a
    both = index.search(parse_query("ti:galaxy OR ti:quasar"), limit=1000)
    expected = {i for i, (t, _) in terms_of.items() if "galaxi" in t or "quasar" in t}
    assert both.total == len(expected)
    assert {h.id for h in both.hits} == expected


def test_fields_title_abstract(index, terms_of):
    res = index.search(parse_query("ti:transformer"), limit=1000)
    expected = {i for i, (t, _) in terms_of.items() if "transform" in t}
    assert {h.id for h in res.hits} == expected
    res = index.search(parse_query("abs:transformer -ti:transformer"), limit=1000)
    expected = {i for i, (t, a) in terms_of.items() if "transform" in a and "transform" not in t}
    assert {h.id for h in res.hits} == expected


def test_author_search(index, docs):
    d = next(d for d in docs if len(d.authors) >= 3 and len(author_terms(d.authors[1])) >= 2)
    name = d.authors[1]
    res = index.search(parse_query(f'au:"{name}"'), limit=100)
    assert d.id in [h.id for h in res.hits]
    for h in res.hits:  # every hit has an author whose terms contain the phrase
        other = next(x for x in docs if x.id == h.id)
        assert any(_has_seq(author_terms(a), author_terms(name)) for a in other.authors)
    # a phrase made of the last word of one author and the first of the next must not match
    cross = f'au:"{author_terms(d.authors[0])[-1]} {author_terms(d.authors[1])[0]}"'
    assert d.id not in [h.id for h in index.search(parse_query(cross), limit=1000).hits]
    surname = author_terms(name)[-1]
    assert d.id in [h.id for h in index.search(parse_query(f"au:{surname.upper()}"), limit=1000).hits]


def test_id_field_and_arxiv_id(index, docs):
    d = docs[123]
    res = index.search(parse_query(f"id:{d.id}"))
    assert [h.id for h in res.hits] == [d.id]
    assert parse_query(f"https://arxiv.org/abs/{d.id}v2").arxiv_id == d.id


def test_category_filter_total_is_exact(index, docs):
    expr = parse_category_expr("cs.AI+cs.LG-cs.CY")
    res = index.search(parse_query("learning"), cats=expr, limit=2000)
    expected = {d.id for d in docs if expr.matches(d.categories)
                and "learn" in tokenize(d.title) + tokenize(d.abstract)}
    assert res.total == len(expected) > 0
    assert {h.id for h in res.hits} == expected
    archive = index.ids_matching(parse_category_expr("astro-ph"), limit=0)
    assert archive.total == sum(1 for d in docs if any(c.split(".")[0] == "astro-ph" for c in d.categories))
    assert index.search(parse_query("cat:cs"), limit=0).total == sum(1 for d in docs if any(c.startswith("cs.") for c in d.categories))


def test_date_range_and_date_sort(index, docs, by_id):
    lo, hi = date(2015, 1, 1), date(2020, 12, 31)
    res = index.search(parse_query("model"), date_from=lo, date_to=hi, sort="date", limit=50)
    expected = [d for d in docs if lo <= d.published <= hi and "model" in tokenize(d.title) + tokenize(d.abstract)]
    assert res.total == len(expected) > 50
    dates = [by_id[h.id].published for h in res.hits]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == max(d.published for d in expected)
    daily = index.ids_matching(None, date(2020, 1, 1), date(2020, 1, 31), limit=1000)
    assert daily.total == sum(1 for d in docs if date(2020, 1, 1) <= d.published <= date(2020, 1, 31))


def test_paging_is_consistent(index):
    q = parse_query("deep learning")
    whole = index.search(q, limit=40).hits
    pages = index.search(q, offset=0, limit=20).hits + index.search(q, offset=20, limit=20).hits
    assert [h.id for h in pages] == [h.id for h in whole]
    assert index.search(q, offset=10_000, limit=10).hits == []


def test_search_terms_and_score_ids(index, docs):
    weights = {"galaxi": 2.0, "cluster": 1.0, "redshift": 1.0}
    hits = index.search_terms(weights, limit=10, exclude_ids=[docs[0].id])
    assert len(hits) == 10 and docs[0].id not in [h.id for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    ids = [h.id for h in hits[:5]] + [docs[1].id]
    scores = index.score_ids(weights, ids)
    assert set(scores) <= set(ids)
    for h in hits[:5]:
        assert scores[h.id] == pytest.approx(h.score, rel=1e-4)
    cs = parse_category_expr("cs")
    for h in index.search_terms({"network": 1.0}, limit=20, cats=cs):
        assert cs.matches(next(d for d in docs if d.id == h.id).categories)


def test_search_terms_flat_query_equals_excluding_query(index, docs):
    """search_terms runs a flat OR (WAND-prunable) and drops excluded ids afterwards: the
    hits must be those of the Must + MustNot query it replaces."""
    from tantivy import Occur, Query

    weights = {"galaxi": 1.0, "cluster": 0.7, "redshift": 0.5, "dark matter": 0.4, "halo": 0.3}
    first = index.search_terms(weights, limit=3)
    exclude = [h.id for h in first[:2]] + [docs[5].id]
    hits = index.search_terms(weights, limit=25, exclude_ids=exclude)
    q = Query.boolean_query([(Occur.Must, Query.boolean_query(index._bag(weights))),
                             (Occur.MustNot, Query.term_set_query(index._schema, "id", exclude))])
    wrapped = index._run(q, sort="relevance", offset=0, limit=25, count=False).hits
    assert len(hits) == 25 and not set(exclude) & {h.id for h in hits}
    assert [h.id for h in hits] == [h.id for h in wrapped]
    assert [h.score for h in hits] == pytest.approx([h.score for h in wrapped], rel=1e-6)


def test_bulk_add_counts_document_frequencies(tmp_path, docs):
    """add_new (full builds: no delete per id, bulk writer) indexes like upsert, and its
    term counts are the index's doc_freq; begin_bulk(clear=True) replaces the contents."""
    from collections import Counter

    ix = BM25Index.open(tmp_path / "bulk")
    ix.begin_bulk()
    terms: Counter = Counter()
    assert ix.add_new(docs[:400], terms) == 400
    ix.commit()
    assert ix.num_docs == 400
    for t in ["galaxi", "network", "quantum", "graph", "zzzz-not-a-term"]:
        assert ix.doc_freq(t) == terms.get(t, 0)
    for t, n in list(terms.items())[:200]:
        assert ix.doc_freq(t) == n
    q = parse_query("neural network")
    ref = BM25Index.open(tmp_path / "ref")
    ref.upsert(docs[:400])
    ref.commit()
    assert [h.id for h in ix.search(q, limit=20).hits] == [h.id for h in ref.search(q, limit=20).hits]
    ix.begin_bulk(clear=True)
    ix.add_new(docs[400:450])
    ix.commit()
    assert ix.num_docs == 50 and not ix.contains(docs[0].id) and ix.contains(docs[420].id)


def test_equal_scores_are_ordered_by_id_whatever_the_write_order(tmp_path, docs):
    """Papers with the same score come back by id, on every page, whether they were added in
    one commit or one per commit (different segments), in either order."""
    twins = [IndexedDoc(id=f"2401.{n:05d}", title="Graph sparsification bounds", abstract="We bound sparsifiers.")
             for n in (7, 3, 9, 1, 5, 2, 8, 4, 6, 10, 12, 11)]
    pages = []
    for name, batches in [("one", [docs[:50] + twins]),
                          ("each", [docs[:50]] + [[t] for t in reversed(twins)])]:
        ix = BM25Index.open(tmp_path / name)
        for batch in batches:
            ix.upsert(batch)
            ix.commit()
        q = parse_query("sparsification")
        pages.append([h.id for off in (0, 5, 10) for h in ix.search(q, offset=off, limit=5).hits])
    assert pages[0] == pages[1] == sorted(t.id for t in twins)


def test_chinese_documents_and_mixed_queries(tmp_path, docs):
    with gzip.open(SAMPLE_ZH, "rt", encoding="utf-8") as f:
        zh = [json.loads(line) for line in f]
    ix = BM25Index.open(tmp_path / "zh")
    ix.upsert([IndexedDoc(z["id"], "", z["zh"]) for z in zh])
    ix.commit()
    rng = random.Random(7)
    hits = 0
    picks = rng.sample([z for z in zh if len(z["zh"]) >= 30], 30)
    for z in picks:
        q = z["zh"][5:25].replace('"', " ").replace("-", " ")
        hits += z["id"] in [h.id for h in ix.search(parse_query(q), limit=10).hits]
    assert hits >= 27, hits


def test_mixed_chinese_query_on_english_index(index, terms_of):
    res = index.search(parse_query("基于Transformer的目标检测"), limit=20)
    assert res.hits
    assert "transform" in terms_of[res.hits[0].id][0] + terms_of[res.hits[0].id][1]


def test_upsert_replaces_and_delete_removes(tmp_path, docs):
    ix = BM25Index.open(tmp_path / "inc")
    ix.upsert(docs[:300])
    ix.commit()
    d = docs[10]
    changed = IndexedDoc(d.id, "Zyxwvut quokka migration", "A study of quokka migrations.", d.authors, d.categories, d.published)
    ix.upsert([changed])
    ix.commit()
    assert ix.num_docs == 300
    assert [h.id for h in ix.search(parse_query("quokka")).hits] == [d.id]
    old_words = " ".join(tokenize(d.title)[:4])
    assert d.id not in [h.id for h in ix.search(parse_query(f"ti:\"{old_words}\"")).hits]
    assert ix.delete([d.id, "9999.99999"]) == 1
    ix.commit()
    assert ix.num_docs == 299
    assert ix.search(parse_query("quokka")).total == 0
    assert ix.doc_freq("quokka") == 0


def test_uncommitted_writes_are_invisible_and_rollback(tmp_path, docs):
    ix = BM25Index.open(tmp_path / "rb")
    ix.upsert(docs[:50])
    ix.commit()
    ix.upsert(docs[50:80])
    assert ix.num_docs == 50
    ix.rollback()
    ix.commit()
    assert ix.num_docs == 50


def test_readers_never_lock_and_reload_sees_commits(tmp_path, docs):
    path = tmp_path / "rw"
    with pytest.raises(IndexUnavailable):
        BM25Index.open(path, readonly=True)
    writer = BM25Index.open(path)
    writer.upsert(docs[:100])
    writer.commit()
    reader = BM25Index.open(path, readonly=True)
    assert reader.num_docs == 100
    with pytest.raises(StorageError):
        reader.upsert(docs[100:101])
    writer.upsert(docs[100:150])  # holds tantivy's writer lock until commit
    assert BM25Index.open(path, readonly=True).num_docs == 100  # readers open while it is held
    second_writer = BM25Index.open(path)
    with pytest.raises(StorageError):
        second_writer.upsert(docs[150:151])
    writer.commit()
    assert reader.num_docs == 100
    reader.reload()
    assert reader.num_docs == 150
    # commit released the lock: another writer (e.g. the next nightly) can write now
    second_writer.upsert(docs[150:160])
    second_writer.commit()
    assert BM25Index.open(path).num_docs == 160
    writer.upsert(docs[160:170])
    writer.close()  # uncommitted writes are dropped with the writer
    assert BM25Index.open(path).num_docs == 160


def test_concurrent_searches_agree(index):
    queries = [parse_query(q) for q in ["graph neural network", "dark matter halo", "quantum error correction", "protein folding"]]
    expected = [[h.id for h in index.search(q, limit=10).hits] for q in queries]
    errors: list[str] = []

    def work(k: int) -> None:
        for _ in range(25):
            got = [h.id for h in index.search(queries[k % 4], limit=10).hits]
            if got != expected[k % 4]:
                errors.append(f"{k}: {got}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_stop_word_query_is_empty_not_an_error(index):
    q = parse_query("the of and")
    assert q.is_empty
    assert index.search(q).total == 0
    with pytest.raises(InvalidQuery):
        index.search(parse_query("graph"), sort="popularity")


def test_category_counts(index, docs):
    counts = index.doc_count_by_category()
    assert counts["cs"] == sum(1 for d in docs if any(c.startswith("cs.") for c in d.categories))
    assert counts["cs.AI"] == sum(1 for d in docs if "cs.AI" in d.categories)


def test_stale_tokenizer_version_is_detected(tmp_path, docs):
    import json as _json

    from indexer.lexical.bm25 import STAMP_FILE

    ix = BM25Index.open(tmp_path / "v")
    ix.upsert(docs[:5])
    ix.commit()
    assert not ix.stale
    (tmp_path / "v" / STAMP_FILE).write_text(_json.dumps({"tokenizer_version": -1, "schema_version": 1}))
    assert BM25Index.open(tmp_path / "v", readonly=True).stale
    ix.mark_current()
    assert not BM25Index.open(tmp_path / "v").stale
    assert BM25Index.open(tmp_path / "v").num_docs == 5


def test_weighted_phrases_in_term_bags(index, terms_of):
    phrase = tokenize("neural network")
    hits = index.search_terms({" ".join(phrase): 1.0}, limit=50)
    assert hits
    for h in hits:
        t, a = terms_of[h.id]
        assert _has_seq(t, phrase) or _has_seq(a, phrase)
    assert index.search_terms({"graph": 0.0, "": 1.0}, limit=5) == []


def test_random_hostile_queries_never_crash(index):
    """Any string either parses and searches, or raises InvalidQuery (never another error)."""
    rng = random.Random(11)
    alphabet = list('ab -"():+*?\\/<>&;\'OR') + ["ti:", "au:", "abs:", "cat:", "id:", "OR", "cs.AI", "图", "ＯＲ",
                                                   "\u200b", "\t", "2401.01234", "graph", "-", '"', "x:"]
    parsed = 0
    for _ in range(1500):
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        try:
            p = parse_query(q)
        except InvalidQuery:
            continue
        index.search(p, limit=3)
        parsed += 1
    assert parsed > 300


def test_author_full_name_matches_initials(tmp_path):
    ix = BM25Index.open(tmp_path / "au")
    ix.upsert([IndexedDoc("2401.00001", "A", "x", ["Yann LeCun", "Léon Bottou"]),
               IndexedDoc("2401.00002", "B", "x", ["Y. LeCun"]),
               IndexedDoc("2401.00003", "C", "x", ["Yoshua Bengio", "Kate LeCun"]),
               IndexedDoc("2401.00004", "D", "x", ["Yann Bengio", "Zoe LeCun"])])
    ix.commit()

    def ids(q: str) -> set[str]:
        return {h.id for h in ix.search(parse_query(q), limit=10).hits}

    assert ids('au:"Yann LeCun"') == {"2401.00001", "2401.00002"}
    assert ids('au:"Y. LeCun"') == {"2401.00002"}  # an initial cannot be expanded
    assert ids("au:lecun") == {"2401.00001", "2401.00002", "2401.00003", "2401.00004"}
    assert ids("au:bottou") == ids("au:Bottou") == ids('au:"Leon Bottou"') == {"2401.00001"}
