"""Labels never lie: without a dense space the search says which mode ran and why, shows
the embedding build's progress, and ``mode=dense`` is a clear 503 instead of 200 with
nothing. Also the build's progress file (indexer.embed_progress)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import make_settings, sample_records


@pytest.fixture(scope="module")
def bare_settings(tmp_path_factory):
    """300 real sample papers, BM25 and keywords built, no embeddings yet."""
    from indexer.ingest.store import upsert_papers
    from indexer.pipeline.build import build

    data_dir = tmp_path_factory.mktemp("no-vectors")
    settings = make_settings(data_dir)
    from indexer.db import open_database
    from indexer.migrate import upgrade

    upgrade(open_database(settings))
    upsert_papers(open_database(settings), sample_records(300))
    build(settings, embeddings=False, progress=False)
    return settings


@pytest.fixture()
def client(bare_settings):
    from fastapi.testclient import TestClient

    from indexer.embed_progress import progress_path
    from service.app import create_app

    progress_path(bare_settings.index_dir).unlink(missing_ok=True)
    with TestClient(create_app(bare_settings)) as c:
        yield c
    progress_path(bare_settings.index_dir).unlink(missing_ok=True)


def _running_build(settings, done: int = 64, total: int = 300):
    """A build in this process that embedded ``done`` of ``total`` papers of its first model."""
    from indexer.embed_progress import ProgressWriter

    tracker = ProgressWriter(settings.index_dir, ["fake", "use-multilingual"])
    tracker.start_model("fake", total)
    tracker._slice_t = time.time() - 4.0  # four seconds of embedding so far: a rate to estimate from
    tracker.advance("fake", done)
    tracker.write(force=True)
    return tracker


def test_hybrid_without_vectors_says_it_ran_bm25_and_why(client):
    body = client.get("/api/search", params={"q": "graph neural network"}).json()
    assert body["mode"] == "bm25"
    assert "not built yet" in body["fallback"] and "papers build" in body["fallback"]
    assert body["hits"], "keyword results are still served"


def test_dense_without_vectors_is_a_503_with_a_reason(client):
    r = client.get("/api/search", params={"q": "graph neural network", "mode": "dense"})
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "dense_unavailable"
    assert "dense search is not available" in err["message"]


def test_fallback_and_stats_show_the_running_build(client, bare_settings):
    _running_build(bare_settings)
    body = client.get("/api/search", params={"q": "graph neural network"}).json()
    assert body["mode"] == "bm25"
    assert "still being built" in body["fallback"] and "left" in body["fallback"]
    assert "64 of 600 vectors" in body["fallback"]  # the second model is assumed as large as the first
    build = client.get("/api/stats").json()["embedding_build"]
    assert build["state"] == "running" and build["done"] == 64 and build["total"] == 600
    assert build["eta_s"] > 0 and build["docs_per_s"] > 0
    assert [m["state"] for m in build["models"]] == ["running", "pending"]


def test_the_page_says_keywords_only_and_shows_progress(client, bare_settings):
    _running_build(bare_settings)
    for mode in ("hybrid", "dense"):
        r = client.get("/search", params={"q": "graph neural network", "mode": mode}, headers={"accept": "text/html"})
        assert r.status_code == 200
        assert "data-fallback" in r.text and "still being built" in r.text
        assert "data-embed-progress" in r.text
        assert "· bm25 ·" in r.text  # the mode that ran, not the one asked for
    home = client.get("/", headers={"accept": "text/html"}).text
    assert "data-embed-progress" in home and "Search by meaning is being prepared" in home


def test_a_dead_build_is_reported_interrupted(bare_settings):
    from indexer.embed_progress import progress_path, read_progress

    _running_build(bare_settings)
    path = progress_path(bare_settings.index_dir)
    data = json.loads(path.read_text())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    data["pid"] = int(dead.stdout)
    path.write_text(json.dumps(data))
    assert read_progress(bare_settings.index_dir)["state"] == "interrupted"
    data["pid"], data["host"], data["updated_ts"] = os.getpid(), "elsewhere", time.time() - 7200
    path.write_text(json.dumps(data))
    assert read_progress(bare_settings.index_dir)["state"] == "interrupted"  # silent for two hours
    path.unlink()


def test_chinese_without_the_multilingual_space_falls_back(tmp_path):
    """The main space is built but not the multilingual one: a Chinese query is not sent
    to the English model under a hybrid label."""
    from indexer.db import open_database
    from indexer.errors import DenseUnavailable
    from indexer.ingest.store import upsert_papers
    from indexer.migrate import upgrade
    from indexer.pipeline.build import build
    from indexer.search.engine import SearchEngine

    settings = make_settings(tmp_path)
    upgrade(open_database(settings))
    upsert_papers(open_database(settings), sample_records(200))
    build(settings, progress=False)
    engine = SearchEngine.open(settings.model_copy(update={"multilingual_model": "use-multilingual"}))
    assert engine.search("graph neural network").mode == "hybrid"
    res = engine.search("图神经网络 graph")
    assert res.mode == "bm25" and "multilingual" in res.fallback
    with pytest.raises(DenseUnavailable):
        engine.search("图神经网络", mode="dense")


def test_the_build_records_its_progress(tmp_path):
    from indexer.db import open_database
    from indexer.embed_progress import read_progress
    from indexer.ingest.store import upsert_papers
    from indexer.migrate import upgrade
    from indexer.pipeline.build import build

    settings = make_settings(tmp_path)
    upgrade(open_database(settings))
    upsert_papers(open_database(settings), sample_records(300))
    build(settings, progress=False)
    done = read_progress(settings.index_dir)
    assert done["state"] == "done" and done["done"] == done["total"] == 300 and done["share"] == 1.0
    assert done["models"] == [{"model": "fake", "state": "done", "done": 300, "total": 300, "seeded": 0}]
    upsert_papers(open_database(settings), sample_records(20, skip=300))
    build(settings, progress=False)
    assert read_progress(settings.index_dir)["total"] == 20  # the increment, not the corpus


def test_papers_stats_shows_the_embedding_build(bare_settings):
    from tests.test_cli_data import papers

    _running_build(bare_settings)
    try:
        human = papers(bare_settings.data_dir, "stats")
        assert human.returncode == 0, human.stderr
        assert "embeddings: running, 11% done (64 of 600 vectors), about" in human.stdout
        data = json.loads(papers(bare_settings.data_dir, "stats", "--json").stdout)
        assert data["embedding_build"]["state"] == "running" and data["embedding_build"]["done"] == 64
    finally:
        from indexer.embed_progress import progress_path

        progress_path(bare_settings.index_dir).unlink(missing_ok=True)
