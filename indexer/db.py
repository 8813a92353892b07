"""Engine creation: SQLite in WAL mode with foreign keys and a busy timeout, so the
service keeps reading while the indexer writes; PostgreSQL through the same URL setting."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from indexer.migrate import is_up_to_date, upgrade


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url[len("sqlite:///") :])
    return None


def make_engine(url: str) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        db = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(db, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return db
    return create_engine(url, pool_pre_ping=True)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One cached engine per URL per process."""
    return make_engine(url)


def session_factory(db: Engine) -> sessionmaker[Session]:
    return sessionmaker(db, expire_on_commit=False)


_migrated: set[str] = set()


def open_database(settings) -> Engine:
    """Engine for ``settings`` with the schema brought to head once per process.

    Every entry point (CLI commands, the service, the builder) goes through here, so a
    fresh data directory just works and an old one is migrated before use.
    """
    url = settings.resolved_database_url
    db = engine_for(url)
    if url not in _migrated:
        if not is_up_to_date(db):
            upgrade(db)
        _migrated.add(url)
    return db
