"""``ingest_runs`` bookkeeping: one row per run (start, end, status, counts, errors) for
every kind of run — file imports, harvests, builds and nightly runs.

Why a separate transaction from the data: the row says "running" from the start, so a
killed process leaves evidence an operator (and ``papers stats``) can see.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from indexer.models import IngestRun
from indexer.store import MAX_ERRORS, UpsertCounts

log = logging.getLogger(__name__)


def now() -> datetime:
    """Naive UTC, as stored in the DateTime columns."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class IngestReport(UpsertCounts):
    """Counts of one ingest plus where it came from and how long it took."""

    kind: str = ""
    source: str = ""
    run_id: int | None = None
    status: str = "running"
    records: int = 0  # records read from the source (including skipped ones)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        line = f"{self.kind} {self.source}: {super().summary()}"
        if self.seconds:
            line += f" in {self.seconds:.1f}s ({self.rate:,.0f} records/s)"
        return line

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d.update(kind=self.kind, source=self.source, run_id=self.run_id, status=self.status,
                 records=self.records, seconds=round(self.seconds, 3), **self.extra)
        return d


def start_run(engine: Engine, kind: str, source: str) -> int:
    with engine.begin() as conn:
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


def finish_run(engine: Engine, run_id: int, counts: RunCounts, status: str, message: str | None = None,
               *, best_effort: bool = False) -> None:
    """Close run ``run_id`` with ``status`` and its counts.

    ``best_effort``: the run is ending because something failed, perhaps the database or
    the disk itself; a row that cannot be written is logged instead of raised, so the
    original error is the one the caller sees (the row then stays "running", and the next
    nightly run marks it interrupted).
    """
    try:
        with engine.begin() as conn:
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


@contextmanager
def recorded_run(engine: Engine, report: IngestReport) -> Iterator[IngestReport]:
    """Record ``report`` as a run: 'running' now, then 'ok' or 'failed' with its counts."""
    report.run_id = start_run(engine, report.kind, report.source)
    try:
        yield report
    except BaseException as e:
        report.status = "failed"
        finish_run(engine, report.run_id, report, "failed", f"{type(e).__name__}: {e}"[:2000], best_effort=True)
        raise
    report.status = "ok"
    finish_run(engine, report.run_id, report, "ok", report.summary())


def last_run(engine: Engine, kind: str | None = None) -> dict[str, Any] | None:
    """The newest ingest_runs row (optionally of one kind) as a JSON-ready dict."""
    q = select(IngestRun).order_by(IngestRun.id.desc()).limit(1)
    if kind:
        q = q.where(IngestRun.kind == kind)
    with engine.connect() as conn:
        row = conn.execute(q).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for k in ("started_at", "finished_at"):
        if out[k] is not None:
            out[k] = out[k].isoformat() + "Z"
    out["errors"] = len(out["errors"] or [])
    return out
