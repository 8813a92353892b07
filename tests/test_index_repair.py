"""`papers build` repairs what it cannot verify, and /readyz never says ready over an index
that cannot answer.

Each case damages a published index the way an operator met it (issue 14): the BM25
directory gone, a segment file truncated, ``manifest.json`` truncated, both manifests
broken. Before the repair ``/readyz`` is 503 (and its body shows no server path and no
library internals); ``papers build`` exits 0 and publishes a version that verifies:
every paper findable by its own title, ``/readyz`` 200.
"""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from indexer.manifest import read_manifest
from indexer.pipeline.verify import verify_published
from tests.nightly_support import base_settings, db_state, run_papers, titles

N = 60


def _damage(settings, how: str) -> None:
    from indexer.pipeline.build import bm25_path

    index = settings.index_dir
    if how == "bm25-missing":
        shutil.rmtree(bm25_path(settings))
    elif how == "segment-truncated":
        seg = max((p for p in bm25_path(settings).iterdir() if p.suffix == ".term"), key=lambda p: p.stat().st_size)
        seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])
    elif how == "manifest-truncated":
        m = index / "manifest.json"
        m.write_bytes(m.read_bytes()[:50])
    elif how == "both-manifests-broken":
        for name in ("manifest.json", "manifest.prev.json"):
            p = index / name
            p.write_bytes(p.read_bytes()[:40] if p.exists() else b"{")
    else:  # pragma: no cover
        raise AssertionError(how)


def _readyz(settings):
    from service.app import create_app

    with TestClient(create_app(settings)) as c:
        return c.get("/readyz")


def _two_versions(tmp_path):
    """Version 2 (so that a manifest.prev.json exists), as a nightly leaves it."""
    settings = base_settings(tmp_path / "d", n=N)
    from indexer.db import open_database
    from indexer.ingest.store import upsert_papers
    from indexer.pipeline.build import build
    from tests.nightly_support import sample_records

    upsert_papers(open_database(settings), sample_records(N + 10)[N:])
    build(settings, embeddings=True, progress=False)
    assert read_manifest(settings.index_dir).version == 2
    return settings


@pytest.mark.parametrize("how", ["bm25-missing", "segment-truncated", "manifest-truncated", "both-manifests-broken"])
def test_build_repairs_a_damaged_index(how, tmp_path):
    settings = _two_versions(tmp_path)
    papers = db_state(settings)
    _damage(settings, how)
    assert not verify_published(settings).ok

    if how != "manifest-truncated":  # a truncated manifest still serves the previous version
        r = _readyz(settings)
        assert r.status_code == 503, r.text
        body = r.text
        assert str(settings.data_dir) not in body and "/index" not in body, body
        assert "IoError" not in body and "tantivy" not in body.lower() and "Traceback" not in body, body
        assert r.json()["error"]["code"] in ("index_unavailable", "storage_error")

    proc = run_papers(settings, "build")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr[-2000:]
    check = verify_published(settings, checksums=True)
    assert check.ok, check.summary()
    m = check.manifest
    assert m.docs == len(papers) and m.version >= 3, m  # never a number readers have already seen

    from indexer.search.engine import SearchEngine

    eng = SearchEngine.open(settings)
    some = dict(list(titles(settings, papers).items())[:15])
    for pid, title in some.items():
        assert pid in [h.id for h in eng.search(title, mode="bm25", size=20).hits], pid
    r = _readyz(settings)
    assert r.status_code == 200 and r.json()["index_version"] == m.version

    again = run_papers(settings, "build")  # nothing left to repair: no new version
    assert again.returncode == 0 and read_manifest(settings.index_dir).version == m.version


def test_readyz_is_503_when_the_index_holds_fewer_papers_than_published(tmp_path):
    """An empty BM25 index under a version that had papers (what `build` used to leave)."""
    from indexer.lexical.bm25 import BM25Index
    from indexer.pipeline.build import bm25_path

    settings = base_settings(tmp_path / "d", n=N)
    shutil.rmtree(bm25_path(settings))
    BM25Index.open(bm25_path(settings)).close()  # an empty index in its place
    r = _readyz(settings)
    assert r.status_code == 503 and r.json()["error"]["code"] == "index_unavailable", r.text
    assert "papers build" in r.json()["error"]["message"]
