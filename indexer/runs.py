"""``ingest_runs`` bookkeeping: one row per run (start, end, status, counts, errors) for
every kind of run — file imports, harvests, builds and nightly runs.

Why a separate transaction from the data: the row says "running" from the start, so a
killed process leaves evidence an operator (and ``papers stats``) can see.

Why here and not in :mod:`indexer.ingest`: builds and nightly runs write these rows too,
and :mod:`indexer.ingest.store` reads the newest one for ``papers stats``; this module depends
on the table alone, so every one of them imports it without a cycle. What only an
ingest reports (:class:`indexer.ingest.runs.IngestReport`) stays with the ingest code.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from indexer.models import IngestRun

log = logging.getLogger(__name__)

MAX_ERRORS = 100  # errors kept in a summary / ingest_runs row; every one is still counted


def now() -> datetime:
    """Naive UTC, as stored in the DateTime columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(db: Engine, kind: str, source: str) -> int:
    with db.begin() as conn:
        res = conn.execute(
            insert(IngestRun).values(kind=kind, source=source, started_at=now(), status="running", errors=[])
        )
        key = res.inserted_primary_key
        assert key is not None
        return int(key[0])


class RunCounts(Protocol):
    """What a run reports into its row: an ingest's counts, or a nightly run's."""

    inserted: int
    updated: int
    unchanged: int
    skipped: int
    errors: list[str]


def finish_run(db: Engine, run_id: int, counts: RunCounts, status: str, message: str | None = None,
               *, best_effort: bool = False) -> None:
    """Close run ``run_id`` with ``status`` and its counts.

    ``best_effort``: the run is ending because something failed, perhaps the database or
    the disk itself; a row that cannot be written is logged instead of raised, so the
    original error is the one the caller sees (the row then stays "running", and the next
    nightly run marks it interrupted).
    """
    try:
        with db.begin() as conn:
            conn.execute(
                update(IngestRun)
                .where(IngestRun.id == run_id)
                .values(
                    finished_at=now(), status=status, inserted=counts.inserted, updated=counts.updated,
                    unchanged=counts.unchanged, skipped=counts.skipped, errors=list(counts.errors[:MAX_ERRORS]),
                    message=message,
                )
            )
    except (OSError, SQLAlchemyError) as e:
        if not best_effort:
            raise
        log.error("event=run_record_failed run=%s error=%s", run_id, e)


def close_interrupted_runs(db: Engine, kind: str) -> None:
    """Runs of ``kind`` left 'running' by a killed process (the caller holds the run
    lock, so none of them is alive) become 'interrupted'."""
    with db.begin() as conn:
        conn.execute(
            update(IngestRun)
            .where(IngestRun.kind == kind, IngestRun.status == "running")
            .values(status="interrupted", finished_at=now(), message="process ended before finishing; resumed by a later run")
        )


def last_run(db: Engine, kind: str | None = None) -> dict[str, Any] | None:
    """The newest ingest_runs row (optionally of one kind) as a JSON-ready dict."""
    q = select(IngestRun).order_by(IngestRun.id.desc()).limit(1)
    if kind:
        q = q.where(IngestRun.kind == kind)
    with db.connect() as conn:
        row = conn.execute(q).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for k in ("started_at", "finished_at"):
        if out[k] is not None:
            out[k] = out[k].isoformat() + "Z"
    out["errors"] = len(out["errors"] or [])
    return out
