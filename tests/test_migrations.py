"""Models and Alembic migrations agree, migrating is idempotent, and every entry point
brings a fresh database to head (indexer.ingest.store.open_database)."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from indexer.db import make_engine
from indexer.ingest.store import open_database
from indexer.migrate import current_revision, head_revision, is_up_to_date, upgrade
from indexer.models import Base
from tests.conftest import REPO, make_settings


def schema(engine) -> dict:
    insp = inspect(engine)
    return {
        t: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
            sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(t)),
            insp.get_pk_constraint(t)["constrained_columns"],
            [(fk["referred_table"], fk["constrained_columns"]) for fk in insp.get_foreign_keys(t)],
        )
        for t in sorted(insp.get_table_names())
    }


def test_models_and_migrations_agree(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diffs = compare_metadata(ctx, Base.metadata)
    assert diffs == [], f"models and migrations disagree: {diffs}"
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)


def test_migrate_twice_is_a_no_op(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert current_revision(engine) is None and not is_up_to_date(engine)
    assert upgrade(engine) == head_revision()
    before = schema(engine)
    assert upgrade(engine) == head_revision() and schema(engine) == before
    assert is_up_to_date(engine)


def test_fresh_data_dir_is_migrated_on_open(tmp_path):
    settings = make_settings(tmp_path / "new" / "dir")
    engine = open_database(settings)
    assert is_up_to_date(engine) and (tmp_path / "new" / "dir" / "papers.db").is_file()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_papers_migrate_command_is_idempotent(tmp_path):
    env = {"PAPERS_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "service.cli", "migrate"]
    first = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"migrated from empty to {head_revision()}" in first.stdout
    second = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and f"already at revision {head_revision()}" in second.stdout


def test_up_to_date_check_agrees_with_alembic_without_importing_it(tmp_path):
    """Every process asks is_up_to_date on open; it reads the version table and the version
    files' declarations itself (Alembic costs more to import than a CLI search)."""
    from indexer.migrate import _declared_heads

    assert _declared_heads() == {head_revision()}
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'older'")
    assert not is_up_to_date(engine) and current_revision(engine) == "older"
    probe = (
        "import sys; from indexer.db import make_engine; from indexer.migrate import is_up_to_date; "
        f"print(is_up_to_date(make_engine({str('sqlite:///' + str(tmp_path / 'n.db'))!r})), 'alembic' in sys.modules)"
    )
    upgrade(make_engine(f"sqlite:///{tmp_path / 'n.db'}"))
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr
