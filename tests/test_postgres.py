"""The database layer on a real PostgreSQL server, through the same URL setting and the
same Alembic migrations as SQLite.

Starts its own throw-away server (tests/pg_server.py: Debian's ``postgresql`` package,
initdb into a temp dir, a free loopback port). Skipped, with the reason, where the
binaries are absent; CI installs them (``apt-get install -y postgresql``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pg_server import find_pg_bin, start_server  # noqa: E402

from tests.conftest import SAMPLE, sample_records  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    find_pg_bin() is None,
    reason="PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install -y postgresql",
)


@pytest.fixture(scope="module")
def pg():
    pytest.importorskip("psycopg2", reason="psycopg2-binary is needed to talk to PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="papers-pg-"))
    try:
        server = start_server(base)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        shutil.rmtree(base, ignore_errors=True)
        detail = getattr(e, "stderr", "") or ""
        pytest.fail(f"could not start PostgreSQL: {e} {detail}")
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def pg_url(pg, request):
    """A fresh database per test, so tests do not see each other's rows."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return pg.create_database(name)


def _papers(pg_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update({"PAPERS_DATABASE_URL": pg_url, "PAPERS_DATA_DIR": str(data_dir), "PAPERS_LOG_LEVEL": "WARNING",
                "PAPERS_EMBEDDING_MODEL": "fake", "PAPERS_MULTILINGUAL_MODEL": "", "HF_HUB_OFFLINE": "1"})
    exe = Path(sys.executable).with_name("papers")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=300)


def test_migrate_cli_creates_schema_at_head_and_is_idempotent(pg_url, tmp_path):
    import sqlalchemy as sa

    from indexer.migrate import head_revision

    first = _papers(pg_url, tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    second = _papers(pg_url, tmp_path, "migrate")
    assert second.returncode == 0, second.stderr

    engine = sa.create_engine(pg_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            server = conn.execute(sa.text("SELECT version()")).scalar_one()
    finally:
        engine.dispose()
    assert {"papers", "paper_categories", "paper_keywords", "harvest_state", "ingest_runs"} <= tables
    assert version == head_revision()
    assert server.startswith("PostgreSQL")
    assert not (tmp_path / "papers.db").exists(), "must not fall back to SQLite"


def test_upsert_is_idempotent_and_versions_update(pg_url, tmp_path):
    import sqlalchemy as sa

    from indexer.db import make_engine
    from indexer.ingest.store import upsert_papers
    from indexer.migrate import upgrade
    from indexer.models import Paper, PaperCategory

    engine = make_engine(pg_url)
    try:
        upgrade(engine)
        recs = sample_records(600)
        first = upsert_papers(engine, recs, batch_size=250)
        assert first.inserted == 600 and first.updated == 0 and not first.errors
        with engine.connect() as conn:
            seq1 = conn.execute(sa.select(sa.func.max(Paper.seq))).scalar_one()
            n_cats = conn.execute(sa.select(sa.func.count()).select_from(PaperCategory)).scalar_one()
        assert n_cats >= 600

        again = upsert_papers(engine, sample_records(600), batch_size=250)
        assert again.inserted == 0 and again.updated == 0 and again.unchanged == 600
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.max(Paper.seq))).scalar_one() == seq1
            assert conn.execute(sa.select(sa.func.count()).select_from(Paper)).scalar_one() == 600

        changed = replace(sample_records(1)[0], title="A revised title for the PostgreSQL test", versions=2)
        res = upsert_papers(engine, [changed])
        assert res.updated == 1 and res.inserted == 0
        with engine.connect() as conn:
            row = conn.execute(sa.select(Paper.title, Paper.seq).where(Paper.id == changed.id)).one()
        assert row.title == "A revised title for the PostgreSQL test"
        assert row.seq > seq1, "a changed row must get a newer seq so the builder sees it"
    finally:
        engine.dispose()


def test_ingest_and_stats_cli_on_postgres(pg_url, tmp_path):
    import gzip

    src = tmp_path / "papers.jsonl"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh, src.open("w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i >= 300:
                break
            out.write(line)

    r1 = _papers(pg_url, tmp_path, "ingest", "jsonl", str(src))
    assert r1.returncode == 0, r1.stderr
    r2 = _papers(pg_url, tmp_path, "ingest", "jsonl", str(src))
    assert r2.returncode == 0, r2.stderr

    st = _papers(pg_url, tmp_path, "stats", "--json")
    assert st.returncode == 0, st.stderr
    stats = json.loads(st.stdout)
    assert stats["papers"] == 300, stats
    assert stats.get("withdrawn", 0) == 0
    assert not (tmp_path / "papers.db").exists(), "must not fall back to SQLite"


def test_build_and_search_over_postgres(pg_url, tmp_path):
    """The builder (keywords table, ingest_runs, seq tracking) and the engine read PostgreSQL."""
    import gzip

    src = tmp_path / "papers.jsonl"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh, src.open("w", encoding="utf-8") as out:
        lines = [line for _, line in zip(range(200), fh, strict=False)]
        out.writelines(lines)
    first = json.loads(lines[0])

    assert _papers(pg_url, tmp_path, "ingest", "jsonl", str(src)).returncode == 0
    b1 = _papers(pg_url, tmp_path, "build", "--json")
    assert b1.returncode == 0, b1.stderr
    b2 = _papers(pg_url, tmp_path, "build", "--json")
    assert b2.returncode == 0, b2.stderr
    query = " ".join(first["title"].split()[:6])
    s = _papers(pg_url, tmp_path, "search", "--mode", "bm25", "--json", query)
    assert s.returncode == 0, s.stderr
    assert json.loads(b1.stdout)["docs"] == 200
    assert json.loads(b2.stdout)["indexed"] == 0, "a second build with nothing new indexes nothing"
    ids = [h["id"] for h in json.loads(s.stdout)["hits"]]
    assert first["id"] in ids
