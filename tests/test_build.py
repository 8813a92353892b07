"""Incremental builds publish versions; changes, withdrawals and corrupt manifests."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import date

import pytest

from indexer.build import build
from indexer.db import open_database
from indexer.engine import SearchEngine
from indexer.records import PaperRecord
from indexer.store import upsert_papers
from tests.conftest import SAMPLE, make_settings


def _records(n: int) -> list[PaperRecord]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in itertools.islice(f, n)]
    return [
        PaperRecord(
            id=r["id"], title=r["title"], abstract=r["abstract"], authors=r["authors"],
            categories=r["categories"], published=date.fromisoformat(r["published"]),
            updated=date.fromisoformat(r["updated"]) if r["updated"] else None,
        )
        for r in rows
    ]


@pytest.fixture()
def small(tmp_path):
    settings = make_settings(tmp_path)
    recs = _records(300)
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
    assert gone.id not in [h.id for h in eng.search(_records(4)[3].title, mode="hybrid").hits]


def test_corrupt_manifest_keeps_previous_version(small):
    settings, recs, _ = small
    recs[0].title = "Second version title about heliospheric neutrinos"
    upsert_papers(open_database(settings), [recs[0]])
    build(settings, embeddings=True, progress=False)
    manifest = settings.index_dir / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])  # truncated
    eng = SearchEngine.open(settings)
    assert eng.ready and eng.version == 1  # fell back to manifest.prev.json
