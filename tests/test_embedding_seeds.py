"""Bundled seed vectors (indexer.dense.embedding_seeds): a build takes the vectors of papers
whose content hash matches instead of embedding them, refuses seeds that disagree with
the installed model, and the shipped file covers the bundled sample in both spaces."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from tests.conftest import make_settings, sample_records


def _texts_and_hashes(settings):
    from indexer.db import open_database
    from indexer.models import Paper
    from indexer.pipeline.build import embedding_text

    with open_database(settings).connect() as conn:
        rows = conn.execute(select(Paper.id, Paper.content_hash, Paper.title, Paper.abstract).order_by(Paper.seq)).all()
    return [(r.id, r.content_hash, embedding_text(r.title, r.abstract)) for r in rows]


@pytest.fixture()
def ingested(tmp_path):
    from indexer.db import open_database
    from indexer.ingest.store import upsert_papers
    from indexer.migrate import upgrade

    settings = make_settings(tmp_path)
    upgrade(open_database(settings))
    upsert_papers(open_database(settings), sample_records(300))
    return settings


def test_int8_rows_keep_cosine_above_0_9999():
    from indexer.dense.embedding_seeds import dequantize, quantize
    from indexer.dense.embeddings import FakeEmbedder

    texts = [f"{r.title}. {r.abstract}" for r in sample_records(200)]
    for dim in (384, 512):
        exact = FakeEmbedder(dim=dim).encode(texts)
        q, scale = quantize(exact)
        assert q.dtype == np.int8 and scale.dtype == np.float32
        assert np.min(np.sum(exact * dequantize(q, scale), axis=1)) >= 0.9999


def test_a_build_takes_matching_seeds_and_embeds_the_rest(ingested, tmp_path, monkeypatch):
    from indexer.dense import embedding_seeds
    from indexer.dense.embeddings import FakeEmbedder
    from indexer.embed_progress import read_progress
    from indexer.pipeline.build import build

    items = _texts_and_hashes(ingested)
    seeded = items[:200]
    exact = FakeEmbedder().encode([t for _, _, t in seeded])
    path = tmp_path / "seeds.npz"
    embedding_seeds.write_seeds(path, [h for _, h, _ in seeded], {"fake": exact, "other-model": exact})
    monkeypatch.setattr(embedding_seeds, "SEED_FILE", path)

    report = build(ingested, progress=False)
    assert report.seeded == {"fake": 200} and report.embedded == {"fake": 100}
    progress = read_progress(ingested.index_dir)
    assert progress["models"][0]["seeded"] == 200 and progress["state"] == "done"

    from indexer.search.engine import SearchEngine

    store = SearchEngine.open(ingested)._state.stores["fake"]
    got = np.stack([store.vector(pid) for pid, _, _ in seeded])
    assert np.min(np.sum(got * exact, axis=1)) >= 0.9999


def test_seeds_that_disagree_with_the_model_are_ignored(ingested, tmp_path, monkeypatch):
    from indexer.dense import embedding_seeds
    from indexer.dense.embeddings import FakeEmbedder
    from indexer.pipeline.build import build

    items = _texts_and_hashes(ingested)[:200]
    wrong = FakeEmbedder().encode([t for _, _, t in reversed(items)])  # each hash gets another paper's vector
    path = tmp_path / "seeds.npz"
    embedding_seeds.write_seeds(path, [h for _, h, _ in items], {"fake": wrong})
    monkeypatch.setattr(embedding_seeds, "SEED_FILE", path)

    report = build(ingested, progress=False)
    assert report.seeded == {"fake": 0} and report.embedded == {"fake": 300}


def test_the_shipped_seeds_cover_the_sample_and_match_the_real_models(built_settings):
    """Every bundled sample paper has a vector in both spaces the build produces, and the
    installed models give the same vectors for a few of them (MiniLM through the numpy
    query encoder: no torch needed)."""
    from indexer.dense.embedding_seeds import SEED_FILE, load_seeds
    from indexer.dense.embeddings import MINILM, USE_MULTILINGUAL, get_query_embedder

    assert SEED_FILE.stat().st_size < 10_000_000
    items = _texts_and_hashes(built_settings)
    assert len(items) == 8000
    for model in (MINILM, USE_MULTILINGUAL):
        seeds = load_seeds(model)
        assert seeds is not None, model
        rows, vectors = seeds
        assert {h for _, h, _ in items} <= set(rows)
        probe = items[::1000]
        fresh = get_query_embedder(model).encode([t for _, _, t in probe])
        cos = np.sum(fresh * vectors[[rows[h] for _, h, _ in probe]], axis=1)
        assert cos.min() >= 0.999, (model, cos)


def test_a_fresh_sample_build_serves_hybrid_and_chinese_without_embedding(tmp_path):
    """What `make serve` does on a fresh clone: ingest the sample and build with the real
    models. Every vector comes from the seeds (nothing is embedded, torch is not needed
    for MiniLM), and the first searches are hybrid, in English and in Chinese."""
    from indexer.ingest.jsonl import ingest_jsonl
    from indexer.pipeline.build import build
    from indexer.search.engine import SearchEngine
    from tests.conftest import SAMPLE

    settings = make_settings(tmp_path, embedding_model="all-MiniLM-L6-v2", multilingual_model="use-multilingual")
    ingest_jsonl(settings, SAMPLE, progress=False)
    report = build(settings, progress=False)
    assert report.embedded == {"all-MiniLM-L6-v2": 0, "use-multilingual": 0}
    assert report.seeded == {"all-MiniLM-L6-v2": 8000, "use-multilingual": 8000}
    engine = SearchEngine.open(settings)
    # (图神经网络 is left to the relevance work's query translation: USE alone ranks
    # generic "network" papers first, with seeded and freshly embedded vectors alike)
    for q, word, need in (("graph neural network", "graph", 4), ("大语言模型 推理", "language", 3)):
        res = engine.search(q, size=5)
        assert res.mode == "hybrid" and res.fallback is None
        on_topic = [h for h in res.hits if word in f"{h.title} {h.abstract}".lower()]
        assert len(on_topic) >= need, (q, [h.title for h in res.hits])
    assert engine.search("图神经网络", mode="dense", size=5).hits
