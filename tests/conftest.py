"""Shared fixtures: a data directory with the bundled 8k real arXiv sample ingested and
indexed (fake embedder, so it builds in seconds), the engine over it, and an HTTP client.

Session-scoped: built once per test process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "indexer" / "data" / "sample-papers.jsonl.gz"
SAMPLE_ZH = REPO / "indexer" / "data" / "sample-zh.jsonl.gz"
SHARED = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_settings(data_dir: Path, **overrides):
    from indexer.settings import Settings

    values = {
        "data_dir": data_dir,
        "embedding_model": "fake",
        "multilingual_model": "",
        "arxiv_delay": 0.0,
        "online_fetch": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (../shared/data next to the repo)")
    return SHARED


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory):
    """Settings for a data dir holding the bundled sample, ingested and built."""
    from indexer.build import build
    from indexer.ingest.jsonl import ingest_jsonl

    data_dir = tmp_path_factory.mktemp("built-data")
    settings = make_settings(data_dir)
    ingest_jsonl(settings, SAMPLE, progress=False)
    build(settings, embeddings=True, progress=False)
    return settings


@pytest.fixture(scope="session")
def search_engine(built_settings):
    from indexer.engine import SearchEngine

    return SearchEngine.open(built_settings)


@pytest.fixture(scope="session")
def app_client(built_settings, search_engine):
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(built_settings, engine=search_engine)) as client:
        yield client
