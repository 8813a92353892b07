"""SIGKILL a real `papers ingest jsonl` process mid-way, re-run it, and get exactly the
database a clean run gives (same ids, content hashes, fields and categories; run
bookkeeping, seq numbers and ingestion timestamps aside)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from sqlalchemy import select

from indexer.ingest.jsonl import ingest_jsonl
from indexer.ingest.store import open_database
from indexer.models import IngestRun, Paper, PaperCategory
from tests.conftest import REPO, SAMPLE, make_settings

TOTAL = 8000  # papers in the bundled sample


def ingest_cmd(data_dir) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERS_")}
    env.update({"PAPERS_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO), "PAPERS_LOG_LEVEL": "WARNING"})
    cmd = [sys.executable, "-m", "service.cli", "ingest", "jsonl", str(SAMPLE), "--batch-size", "100", "--no-progress"]
    return cmd, env


def count_rows(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM papers").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def snapshot(settings) -> tuple[dict, set]:
    skip = {"seq", "ingested_at"}
    cols = [c for c in Paper.__table__.columns if c.name not in skip]
    with open_database(settings).connect() as conn:
        papers = {r.id: r._asdict() for r in conn.execute(select(*cols))}
        cats = {(r.paper_id, r.category) for r in conn.execute(select(PaperCategory))}
    return papers, cats


def processes_with_env(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds ``marker``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = open(f"/proc/{entry}/environ", "rb").read()  # noqa: SIM115
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]  # noqa: SIM115
        except OSError:
            continue
        if marker.encode() in env.split(b"\0") and state != "Z":
            pids.append(int(entry))
    return pids


def test_sigkill_mid_import_then_rerun_equals_clean_run(tmp_path):
    clean = make_settings(tmp_path / "clean")
    ingest_jsonl(clean, SAMPLE, progress=False)

    killed_dir = tmp_path / "killed"
    db = killed_dir / "papers.db"
    cmd, env = ingest_cmd(killed_dir)
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count_rows(db) < 300:
        assert proc.poll() is None, f"import ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "import made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # the import's parser process (forked, same environment) does not outlive it
    marker = f"PAPERS_DATA_DIR={killed_dir}"
    deadline = time.monotonic() + 30
    while processes_with_env(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes_with_env(marker), "the parser process outlived the killed import"
    partial = count_rows(db)
    assert 0 < partial < TOTAL, partial
    assert partial % 100 == 0  # whole batches only: a batch is written whole or not at all

    rerun = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{TOTAL - partial} inserted" in rerun.stdout and f"{partial} unchanged" in rerun.stdout

    killed = make_settings(killed_dir)
    got, want = snapshot(killed), snapshot(clean)
    assert len(got[0]) == TOTAL
    assert got[0] == want[0]
    assert got[1] == want[1]
    with open_database(killed).connect() as conn:
        statuses = conn.execute(select(IngestRun.status).order_by(IngestRun.id)).scalars().all()
    assert statuses == ["running", "ok"]  # the killed run is visible as never finished
