"""The service's numpy query encoder: the same vectors as sentence-transformers for the
real all-MiniLM-L6-v2 on real papers, weights read in place, no torch in the process,
and a fallback to sentence-transformers for any model it does not reproduce."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from indexer.dense.bert_numpy import NumpyBertEncoder, UnsupportedModel
from indexer.dense.embeddings import (
    MINILM,
    SentenceTransformerEmbedder,
    get_embedder,
    get_query_embedder,
    model_dir,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "indexer" / "data" / "sample-papers.jsonl.gz"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in islice(f, 60)]
    out = [r["title"] for r in rows] + [f"{r['title']}. {r['abstract']}" for r in rows]
    # queries as users type them: padded, empty, Chinese, TeX, and past the 256-token cut
    out += ["  graph neural networks ", "", "图神经网络 在 推荐系统 中的应用", "$\\ell_1$-regularised LASSO",
            " ".join(r["abstract"] for r in rows[:4])]
    return out


@pytest.fixture(scope="module")
def numpy_minilm() -> NumpyBertEncoder:
    encoder = get_query_embedder(MINILM)
    assert isinstance(encoder, NumpyBertEncoder)
    return encoder


def test_same_vectors_as_sentence_transformers(texts, numpy_minilm):
    reference = get_embedder(MINILM, precision="fp32")  # fp32 is what this encoder reproduces
    assert isinstance(reference, SentenceTransformerEmbedder)
    assert len(numpy_minilm.token_ids(texts[-1])) == 256  # truncated like the reference
    ours, theirs = numpy_minilm.encode(texts), reference.encode(texts, batch_size=16)
    assert ours.shape == theirs.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.99999, texts[int(cosines.argmin())][:80]
    # and so the same neighbours: each abstract's nearest title is its own in both
    n = 60
    assert ((ours[n : 2 * n] @ ours[:n].T).argmax(axis=1) == (theirs[n : 2 * n] @ theirs[:n].T).argmax(axis=1)).all()


def test_weights_are_read_in_place_and_torch_is_never_imported():
    """In a fresh process: encoding a query imports neither torch nor transformers, and
    costs a few MB of anonymous memory, not the ~90 MB of weights (they are file pages)."""
    code = """
import sys
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) // 1024
from indexer.dense.embeddings import get_query_embedder
before = anon()
enc = get_query_embedder("all-MiniLM-L6-v2")
v = enc.encode(["graph neural networks for molecules"])
assert v.shape == (1, 384), v.shape
print(type(enc).__name__, anon() - before, sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    name, grown, imported = out.stdout.split(maxsplit=2)
    assert name == "NumpyBertEncoder"
    assert imported.strip() == "[]"
    assert int(grown) < 40, f"{grown} MB of anonymous memory for the encoder"


def _zh_summaries() -> dict[str, str]:
    with gzip.open(REPO / "indexer" / "data" / "sample-zh.jsonl.gz", "rt", encoding="utf-8") as f:
        return {r["id"]: r["zh"] for r in map(json.loads, f)}


def _model_copy(tmp_path: Path, pooling: dict | None = None) -> Path:
    """The shipped model's files linked into tmp_path, with another pooling config."""
    src = model_dir(MINILM)
    assert src is not None
    dst = tmp_path / "model"
    (dst / "1_Pooling").mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).symlink_to(f)
    config = json.loads((src / "1_Pooling" / "config.json").read_text())
    config.update(pooling or {})
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return dst


def test_models_it_does_not_reproduce_fall_back_to_sentence_transformers(tmp_path):
    cls_model = _model_copy(tmp_path, {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    with pytest.raises(UnsupportedModel, match="pooling"):
        NumpyBertEncoder(cls_model)
    fallback = get_query_embedder(str(cls_model))
    assert isinstance(fallback, SentenceTransformerEmbedder)
    # a CLS-pooled vector is not the mean-pooled one: the fallback really is another model
    mean = get_query_embedder(MINILM).encode(["graph neural networks"])[0]
    assert float(fallback.encode(["graph neural networks"])[0] @ mean) < 0.999


def test_settings_and_devices_choose_the_encoder():
    assert isinstance(get_query_embedder(MINILM, encoder="sentence-transformers"), SentenceTransformerEmbedder)
    assert isinstance(get_query_embedder(MINILM, device="cpu", encoder="numpy"), NumpyBertEncoder)
    assert get_query_embedder("use-multilingual").name == "use-multilingual"  # not BERT: as before


@pytest.fixture(scope="module")
def minilm_data(tmp_path_factory):
    """40 real papers (20 with a Chinese summary) embedded by sentence-transformers into
    MiniLM and USE stores: (settings, records, the ones with a summary, the summaries)."""
    from indexer.db import open_database
    from indexer.ingest.store import upsert_papers
    from indexer.pipeline.build import build
    from tests.conftest import make_settings, sample_records

    settings = make_settings(tmp_path_factory.mktemp("minilm-data"), embedding_model=MINILM,
                             multilingual_model="use-multilingual")
    zh = _zh_summaries()
    pool = sample_records(10_000)
    with_zh = [r for r in pool if r.id in zh][:20]
    records = [r for r in pool if r.id not in zh][:20] + with_zh
    upsert_papers(open_database(settings), records)
    build(settings, embeddings=True, progress=False)
    return settings, records, with_zh, zh


def test_engine_answers_dense_queries_with_the_numpy_encoder(minilm_data):
    """A data dir embedded by sentence-transformers, searched through the numpy encoder:
    a paper's own title finds it first (and a Chinese query goes through USE)."""
    from indexer.search.engine import SearchEngine

    settings, records, with_zh, zh = minilm_data
    tmp_path = settings.data_dir
    engine = SearchEngine.open(settings)
    assert isinstance(engine.embedder(MINILM), NumpyBertEncoder)
    # and USE's table is mapped from the data dir's cache (tests/test_embeddings.py)
    assert isinstance(engine.embedder("use-multilingual").model._model.table, np.memmap)
    assert [p.name[:6] for p in (tmp_path / "cache").iterdir()] == ["usem3-"]
    for r in records[:5]:
        hits = engine.search(r.title, mode="dense", size=3).hits
        assert hits[0].id == r.id, (r.title, [h.id for h in hits])
    # a Chinese summary is routed to the multilingual space and finds its English paper
    found = sum(any(h.id == r.id for h in engine.search(zh[r.id], mode="dense", size=3).hits) for r in with_zh)
    assert len(with_zh) == 20 and found >= 15, found  # 19 of 20 measured


def test_the_service_answers_hybrid_search_without_importing_torch(minilm_data):
    """The whole app in a fresh process — start-up warm-up, English and Chinese hybrid
    searches, related papers — never imports torch or transformers (each worker saves the
    0.29 GB those imports cost)."""
    settings, records, _, zh = minilm_data
    code = f"""
import sys
from fastapi.testclient import TestClient
from indexer.settings import Settings
from service.app import create_app
settings = Settings(data_dir={str(settings.data_dir)!r}, embedding_model="all-MiniLM-L6-v2",
                    multilingual_model="use-multilingual", online_fetch=False)
with TestClient(create_app(settings)) as client:
    for q in ({records[0].title!r}, {zh[records[-1].id]!r}):
        r = client.get("/api/search", params={{"q": q, "mode": "hybrid", "size": 5}})
        assert r.status_code == 200, r.text
        print(r.json()["hits"][0]["id"])
    assert client.get("/api/papers/{records[1].id}/related").status_code == 200
print(sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    first_en, first_zh, imported = out.stdout.strip().splitlines()[-3:]
    assert first_en == records[0].id and first_zh == records[-1].id
    assert imported == "[]"
