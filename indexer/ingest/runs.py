"""What an ingest reports, and how it is recorded as a run (:mod:`indexer.runs` writes
the ``ingest_runs`` rows of every kind of run; this module adds an ingest's own counts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from indexer.ingest.store import UpsertCounts
from indexer.runs import finish_run, start_run


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


@contextmanager
def recorded_run(db: Engine, report: IngestReport) -> Iterator[IngestReport]:
    """Record ``report`` as a run: 'running' now, then 'ok' or 'failed' with its counts."""
    report.run_id = start_run(db, report.kind, report.source)
    try:
        yield report
    except BaseException as e:
        report.status = "failed"
        finish_run(db, report.run_id, report, "failed", f"{type(e).__name__}: {e}"[:2000], best_effort=True)
        raise
    report.status = "ok"
    finish_run(db, report.run_id, report, "ok", report.summary())
