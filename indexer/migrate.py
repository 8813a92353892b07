"""Run Alembic migrations from code (`papers migrate`); idempotent.

Alembic is imported only to migrate or to answer in full: every process opens the database
through :func:`indexer.db.open_database`, which asks :func:`is_up_to_date` first, and
importing Alembic (with Mako) costs more than a `papers search` itself. So that check reads
the ``alembic_version`` table and the ``revision`` / ``down_revision`` lines of the files
in ``migrations/versions`` directly, and falls back to Alembic when they are not plain.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config  # heavy: alembic, Mako

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # heavy: alembic, Mako

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(db: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision now current."""
    from alembic import command  # heavy: alembic, Mako

    cfg = alembic_config(str(db.url.render_as_string(hide_password=False)))
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(db)


def current_revision(db: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext  # heavy: alembic, Mako

    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory  # heavy: alembic, Mako

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _declared_heads() -> set[str] | None:
    """Head revisions from the version files' literal ``revision``/``down_revision``
    assignments; None when a file does not declare them plainly (Alembic decides then)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("revision", "down_revision"):
                    try:
                        values[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        return None
        rev, down = values.get("revision"), values.get("down_revision")
        if not isinstance(rev, str):
            return None
        revisions.add(rev)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(d for d in down if isinstance(d, str))
        elif down is not None:
            return None
    heads = revisions - parents
    return heads or None


def is_up_to_date(db: Engine) -> bool:
    heads = _declared_heads()
    if heads is not None:
        try:
            with db.connect() as conn:
                have = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except DBAPIError:  # no version table: a new database
            return False
        return have == heads
    return current_revision(db) == head_revision()
