"""Incremental builds publish versions; changes, withdrawals and corrupt manifests."""

from __future__ import annotations

from datetime import date

import pytest

from indexer.db import open_database
from indexer.ingest.store import upsert_papers
from indexer.pipeline.build import build
from indexer.search.engine import SearchEngine
from tests.conftest import make_settings, sample_records


@pytest.fixture()
def small(tmp_path):
    settings = make_settings(tmp_path)
    recs = sample_records(300)
    upsert_papers(open_database(settings), recs)
    report = build(settings, embeddings=True, progress=False)
    return settings, recs, report


def test_first_build_publishes_version_one(small):
    settings, recs, report = small
    assert report.published and report.version == 1
    assert report.docs == 300 and report.indexed == 300 and report.keywords == 300
    assert report.embedded == {"fake": 300}
    eng = SearchEngine.open(settings)
    assert eng.ready and eng.version == 1


def test_rebuild_without_changes_publishes_nothing(small):
    settings, _, _ = small
    again = build(settings, embeddings=True, progress=False)
    assert not again.published and again.version == 1 and again.indexed == 0


def test_changed_paper_is_reindexed_and_running_engine_switches(small):
    settings, recs, _ = small
    eng = SearchEngine.open(settings)
    target = recs[7]
    target.title = "Quasicrystalline zeppelin aerodynamics"
    target.updated = date(2026, 8, 1)
    target.versions = 2
    upsert_papers(open_database(settings), [target])
    report = build(settings, embeddings=True, progress=False)
    assert report.version == 2 and report.indexed == 1 and report.embedded == {"fake": 1}
    assert eng.reload_if_changed()
    res = eng.search("zeppelin quasicrystalline", mode="bm25")
    assert res.hits[0].id == target.id


def test_withdrawn_paper_leaves_the_index(small):
    settings, recs, _ = small
    gone = recs[3]
    gone.withdrawn = True
    upsert_papers(open_database(settings), [gone])
    report = build(settings, embeddings=True, progress=False)
    assert report.removed == 1 and report.docs == 299
    eng = SearchEngine.open(settings)
    assert gone.id not in [h.id for h in eng.search(sample_records(4)[3].title, mode="hybrid").hits]


def test_corrupt_manifest_keeps_previous_version(small):
    settings, recs, _ = small
    recs[0].title = "Second version title about heliospheric neutrinos"
    upsert_papers(open_database(settings), [recs[0]])
    build(settings, embeddings=True, progress=False)
    manifest = settings.index_dir / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])  # truncated
    eng = SearchEngine.open(settings)
    assert eng.ready and eng.version == 1  # fell back to manifest.prev.json


def _keyword_rows(settings) -> dict[str, tuple[str, list]]:
    from sqlalchemy import select

    from indexer.models import PaperKeywords

    with open_database(settings).connect() as conn:
        return {r.paper_id: (r.content_hash, r.keywords) for r in conn.execute(select(PaperKeywords))}


def test_full_build_keywords_pool_and_counted_frequencies(tmp_path, monkeypatch):
    """A fresh build counts document frequencies while indexing and may extract keywords
    in a process pool: the stored keywords must equal an inline extraction with the
    finished index's frequencies (what incremental builds use)."""
    import indexer.pipeline.build as b
    from indexer.lexical.bm25 import BM25Index
    from indexer.text.keywords import DocFreqs, KeywordExtractor

    recs = sample_records(400)
    recs[5].withdrawn = True
    inline = make_settings(tmp_path / "inline")
    upsert_papers(open_database(inline), recs)
    build(inline, embeddings=False, progress=False)
    monkeypatch.setattr(b, "POOL_MIN", 1)
    monkeypatch.setattr(b, "INDEX_TASK", 53)
    monkeypatch.setattr(b, "KEYWORD_TASK", 37)
    pooled = make_settings(tmp_path / "pooled")
    upsert_papers(open_database(pooled), recs)
    report = build(pooled, embeddings=False, progress=False)
    assert report.keywords == 399 and report.docs == 399 and report.indexed == 399
    got = _keyword_rows(pooled)
    assert recs[5].id not in got
    assert got == _keyword_rows(inline)
    ix = BM25Index.open(b.bm25_path(pooled), readonly=True)
    extractor = KeywordExtractor(DocFreqs.from_index(ix))
    for r in recs[6:60]:
        want = [[k.keyword, round(float(k.weight), 4), list(k.terms)]
                for k in extractor.extract(r.abstract, k=b.KEYWORDS_PER_PAPER, title=r.title)]
        assert got[r.id][1] == want


def test_full_rebuild_replaces_index_and_keeps_keywords(small):
    settings, recs, _ = small
    before = _keyword_rows(settings)
    recs[2].title = "Ornithopter flight of quasicrystalline zeppelins"
    upsert_papers(open_database(settings), [recs[2]])
    report = build(settings, embeddings=False, progress=False, full=True)
    assert report.docs == 300 and report.indexed == 300
    assert report.keywords == 1  # unchanged content hashes keep their keywords
    after = _keyword_rows(settings)
    assert after[recs[2].id] != before[recs[2].id]
    assert {k: v for k, v in after.items() if k != recs[2].id} == {k: v for k, v in before.items() if k != recs[2].id}
    eng = SearchEngine.open(settings)
    assert [h.id for h in eng.search("ornithopter zeppelins", mode="bm25").hits][:1] == [recs[2].id]


def test_embedding_texts_are_streamed_in_batches_from_the_database(built_settings):
    """The build reads the texts to embed a batch at a time, in the order asked, with the
    stored hash; ids no longer in the database are skipped (deleted meanwhile)."""
    from sqlalchemy import select

    from indexer.models import Paper
    from indexer.pipeline.build import _embedding_items, _live_hashes, embedding_text

    engine = open_database(built_settings)
    pairs = _live_hashes(engine)
    assert len(pairs) == 8000 and all(len(h) == 40 for _, h in pairs[:50])  # sha1 of the content
    ids = [pairs[5][0], "9999.99999", pairs[0][0], pairs[3][0]]
    got = list(_embedding_items(engine, ids, batch=2))
    assert [g[0] for g in got] == [pairs[5][0], pairs[0][0], pairs[3][0]]
    with engine.connect() as conn:
        row = conn.execute(select(Paper.title, Paper.abstract, Paper.content_hash).where(Paper.id == pairs[0][0])).one()
    assert got[1] == (pairs[0][0], row.content_hash, embedding_text(row.title, row.abstract))
