"""Helpers shared by the nightly, kill, load and hostile-input tests.

A small real base corpus (the first papers of the bundled sample), subprocess
environments pointing `papers` at a data dir and at the arXiv stand-in, and readers of
the state a nightly leaves behind (DB ids and hashes, manifest, runs).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.arxiv_standin import ARXIV
from tests.conftest import SAMPLE, make_settings, sample_records  # noqa: F401 - re-exported

REPO = Path(__file__).resolve().parents[1]


def recorded_oai_ids() -> set[str]:
    """Every arXiv id in the two recorded ListRecords pages the stand-in chains."""
    ids: set[str] = set()
    for name in ("mikesaelim_ListRecordsResponse.xml", "paperhive_ListRecords_arXiv_2015-01-01_2015-01-03.xml"):
        text = (ARXIV / "oai_pmh" / name).read_text(encoding="utf-8")
        ids.update(re.findall(r"<identifier>oai:arXiv\.org:([^<]+)</identifier>", text))
    return ids


def base_settings(data_dir: Path, n: int = 300, *, build_index: bool = True, **overrides):
    """A data dir holding ``n`` real sample papers, built once (fake embedder)."""
    from indexer.db import open_database
    from indexer.ingest.store import upsert_papers
    from indexer.pipeline.build import build

    settings = make_settings(data_dir, arxiv_retries=1, **overrides)
    if n:
        upsert_papers(open_database(settings), sample_records(n))
    if build_index:
        build(settings, embeddings=True, progress=False)
    return settings


def cli_env(settings, standin=None, **extra: str) -> dict[str, str]:
    """Environment for a `papers` subprocess on ``settings``' data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERS_")}
    env.update(
        {
            "PAPERS_DATA_DIR": str(settings.data_dir),
            "PAPERS_EMBEDDING_MODEL": settings.embedding_model,
            "PAPERS_MULTILINGUAL_MODEL": settings.multilingual_model,
            "PAPERS_ARXIV_DELAY": "0",
            "PAPERS_ARXIV_RETRIES": str(settings.arxiv_retries),
            "PAPERS_LOG_LEVEL": "INFO",
            "PAPERS_RATE_LIMIT": str(settings.rate_limit),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    if standin is not None:
        env.update(standin.env())
    env.update(extra)
    return env


def papers_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]


def run_papers(settings, *args: str, standin=None, timeout: float = 240, cwd: Path | None = None, **extra: str):
    """Run `papers ARGS` in a subprocess (cwd outside the repo so no .env is read)."""
    return subprocess.run(
        papers_cmd(*args),
        env=cli_env(settings, standin, **extra),
        cwd=str(cwd or settings.data_dir.parent),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def db_state(settings) -> dict[str, str]:
    """{id: content_hash} of every paper row: what "no lost papers, no duplicates" compares."""
    from indexer.db import open_database
    from indexer.models import Paper

    engine = open_database(settings)
    with engine.connect() as conn:
        rows = conn.execute(select(Paper.id, Paper.content_hash)).all()
        distinct = conn.execute(select(func.count(func.distinct(Paper.id)))).scalar_one()
    assert distinct == len(rows), "duplicate paper rows"
    return {r.id: r.content_hash for r in rows}


def max_seq(settings) -> int:
    from indexer.db import open_database
    from indexer.models import Paper

    with open_database(settings).connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(Paper.seq), 0))).scalar_one())


def runs(settings, kind: str = "nightly") -> list[tuple[str, int, int]]:
    """(status, inserted, updated) of every run of ``kind``, oldest first."""
    from indexer.db import open_database
    from indexer.models import IngestRun

    with open_database(settings).connect() as conn:
        rows = conn.execute(
            select(IngestRun.status, IngestRun.inserted, IngestRun.updated)
            .where(IngestRun.kind == kind)
            .order_by(IngestRun.id)
        ).all()
    return [tuple(r) for r in rows]


def published(settings):
    from indexer.manifest import read_manifest

    return read_manifest(settings.index_dir)


def fresh_settings(data_dir: Path, **overrides):
    return make_settings(data_dir, arxiv_retries=1, **overrides)


def titles(settings, ids) -> dict[str, str]:
    """{id: title} from the database, for searching papers by their own title."""
    from indexer.db import open_database
    from indexer.models import Paper

    with open_database(settings).connect() as conn:
        return dict(conn.execute(select(Paper.id, Paper.title).where(Paper.id.in_(list(ids)))).all())


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    """Poll ``predicate`` until it holds; fail the test when ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"process ended (rc={proc.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def sigkill_at_pause(proc: subprocess.Popen, standin, marker: Path, point: str, *, at_token: bool) -> None:
    """SIGKILL ``proc`` where it pauses: once it asks the stand-in for page 2 of a harvest
    (``at_token``), else once it wrote ``marker``; the stand-in is released either way."""
    try:
        if at_token:
            wait_for(standin.token_requested.is_set, 180, "page 2 of the harvest", proc)
            time.sleep(0.3)  # page 1's commit happens before the next request
        else:
            wait_for(marker.exists, 180, f"the {point} pause", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        standin.release()
