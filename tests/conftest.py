"""Shared fixtures: a data directory with the bundled 8k real arXiv sample ingested and
indexed (fake embedder, so it builds in seconds), the engine over it, and an HTTP client.

Session-scoped: built once per test process.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "indexer" / "data" / "sample-papers.jsonl.gz"
SAMPLE_ZH = REPO / "indexer" / "data" / "sample-zh.jsonl.gz"
SHARED = REPO.parent / "shared" / "data"
# Recorded arXiv responses (OAI-PMH, API Atom) and the 200-line Kaggle snapshot sample,
# copied from ../shared/data/arxiv so ingestion and nightly tests run on a bare clone
# (provenance and licences: tests/fixtures/arxiv/README.md).
ARXIV_FIXTURES = REPO / "tests" / "fixtures" / "arxiv"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_settings(data_dir: Path, **overrides):
    from indexer.settings import Settings

    values = {
        "data_dir": data_dir,
        "embedding_model": "fake",
        "multilingual_model": "",
        "arxiv_delay": 0.0,
        "online_fetch": False,
        "rate_limit": 0,  # on by default (600/min); tests that exercise it turn it on
    }
    values.update(overrides)
    return Settings(**values)


def sample_records(n: int, skip: int = 0) -> list:
    """Papers ``skip .. skip+n`` of the bundled real sample as PaperRecords."""
    from indexer.ingest.records import PaperRecord

    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in itertools.islice(f, skip, skip + n)]
    return [
        PaperRecord(
            id=r["id"], title=r["title"], abstract=r["abstract"], authors=r["authors"],
            categories=r["categories"], published=date.fromisoformat(r["published"]),
            updated=date.fromisoformat(r["updated"]) if r.get("updated") else None,
        )
        for r in rows
    ]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The large shared corpora (evaluation sets); tests that need them skip on a bare clone."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (../shared/data next to the repo)")
    return SHARED


@pytest.fixture(scope="session")
def arxiv_fixtures() -> Path:
    """Recorded arXiv responses shipped in the repository (always present)."""
    return ARXIV_FIXTURES


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory):
    """Settings for a data dir holding the bundled sample, ingested and built."""
    from indexer.ingest.jsonl import ingest_jsonl
    from indexer.pipeline.build import build

    data_dir = tmp_path_factory.mktemp("built-data")
    settings = make_settings(data_dir)
    ingest_jsonl(settings, SAMPLE, progress=False)
    build(settings, embeddings=True, progress=False)
    return settings


@pytest.fixture(scope="session")
def search_engine(built_settings):
    from indexer.search.engine import SearchEngine

    return SearchEngine.open(built_settings)


@pytest.fixture(scope="session")
def app_client(built_settings, search_engine):
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(built_settings, engine=search_engine)) as client:
        yield client
