"""`papers nightly`: harvest what arXiv changed since the last run, then build and publish.

Why it is safe to run from cron and to kill at any moment:

* One run at a time: the whole run holds the ``index`` lock (:mod:`indexer.pipeline.locks`); a
  second run raises :class:`AlreadyRunning` at once (exit code 75).
* Harvesting is resumable and idempotent: ``harvest_oai`` commits each page with its
  resumption token, and ``upsert_papers`` keyed by arXiv id never duplicates a paper.
* Building is driven by the database, not by what this run harvested: the build indexes
  every row whose ``seq`` is above the published ``built_seq``. Papers upserted by a run
  that was killed before it built are therefore picked up by the next run.
* The index is published by one atomic manifest replace; a reader keeps serving the
  previous version until then.

Window: from the last successful harvest datestamp minus one day of overlap (arXiv
datestamps are per day and a run may have started mid-day) up to today (UTC). A first
run without ``--from`` and without harvest state harvests from yesterday; use
``--from`` to backfill further (or ``papers backfill kaggle`` for the whole archive).

An interrupted window is never abandoned: when a previous run (killed, disk full,
upstream failure, harvest deadline) left a window unfinished, whatever its dates, this
run first finishes that window (resuming its stored token, or restarting the window
when the token expired), then harvests its own window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, inspect, select

from indexer.db import engine_for, open_database
from indexer.errors import InvalidInput, PapersError, StorageError
from indexer.ingest.kaggle import ingest_kaggle
from indexer.ingest.oai import OVERLAP, harvest_oai, harvest_source, last_datestamp, owed_window
from indexer.models import HarvestState, Paper
from indexer.paths import current_manifest
from indexer.pipeline.build import build
from indexer.pipeline.locks import run_lock
from indexer.pipeline.verify import verify_published
from indexer.runs import close_interrupted_runs, finish_run, start_run
from indexer.settings import Settings
from indexer.storage_errors import storage_errors

log = logging.getLogger(__name__)

RUN_KIND = "nightly"


@dataclass
class NightlyReport:
    """What one nightly run did (or, with ``dry_run``, would do)."""

    set_spec: str
    from_date: date
    until_date: date
    dry_run: bool = False
    status: str = "ok"  # ok | nothing_new | dry_run
    harvested: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    pending_before: int = 0  # rows already in the DB but not yet in the published index
    # the window an interrupted run left unfinished, finished first by this run
    owed_from: date | None = None
    owed_until: date | None = None
    built: bool = False
    version: int = 0
    indexed: int = 0
    removed: int = 0
    embedded: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None

    @property
    def owed(self) -> str:
        """The interrupted window this run finishes first, as text ('' when none)."""
        if self.owed_until is None and self.owed_from is None:
            return ""
        return f"{_iso_or(self.owed_from)}..{_iso_or(self.owed_until)}"

    def summary(self) -> str:
        window = f"{self.set_spec} {self.from_date.isoformat()}..{self.until_date.isoformat()}"
        if self.owed:
            window += f" (after finishing the interrupted window {self.owed})"
        if self.dry_run:
            return (
                f"dry run: would harvest set {window}; {self.pending_before} papers waiting to be indexed; "
                "nothing written"
            )
        harvest = (
            f"harvested {window}: {self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.skipped} skipped"
        )
        if not self.built:
            return f"{harvest}; nothing new to index (index unchanged) in {self.seconds:.1f}s"
        emb = ", ".join(f"{k} {v}" for k, v in self.embedded.items()) or "skipped"
        return (
            f"{harvest}; published index version {self.version} "
            f"({self.indexed} indexed, {self.removed} removed, embedded: {emb}) in {self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_spec,
            "from": self.from_date.isoformat(),
            "until": self.until_date.isoformat(),
            "dry_run": self.dry_run,
            "status": self.status,
            "harvested": self.harvested,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "errors": list(self.errors),
            "pending_before": self.pending_before,
            "owed_window": self.owed or None,
            "built": self.built,
            "version": self.version,
            "indexed": self.indexed,
            "removed": self.removed,
            "embedded": dict(self.embedded),
            "seconds": round(self.seconds, 3),
        }


def _iso_or(d: date | None) -> str:
    return d.isoformat() if d else "…"


def _today() -> date:
    return datetime.now(UTC).date()


def _event(name: str, **fields: Any) -> None:
    """One structured (logfmt) log line on stderr: ``event=<name> key=value ...``."""
    parts = [f"event={name}"] + [f"{k}={v}" for k, v in fields.items()]
    log.info(" ".join(parts))


def harvest_window(
    settings: Settings, db: Engine | None, set_spec: str, from_date: date | None, today: date | None = None
) -> tuple[date, date]:
    """(from, until) of the next harvest: see the module docstring."""
    until = today or _today()
    if from_date is not None:
        start = from_date
    else:
        last = last_datestamp(db, set_spec) if db is not None else None
        start = (last - OVERLAP) if last else (until - timedelta(days=1))
    return min(start, until), until


def _database_exists(settings: Settings) -> bool:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).is_file()
    return True


def _check_data_dir(settings: Settings) -> None:
    """Fail early and clearly when the data directory cannot be a directory."""
    d = settings.data_dir
    for parent in [d, *d.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise StorageError(f"data directory {d} is unusable: {parent} is not a directory")
            break


def nightly(
    settings: Settings,
    from_date: date | None = None,
    dry_run: bool = False,
    embeddings: bool = True,
    set_spec: str | None = None,
    *,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = False,
) -> NightlyReport:
    """Harvest → upsert → incremental build → atomic publish, under the run lock."""
    set_spec = set_spec or settings.oai_set
    _check_data_dir(settings)
    if dry_run:
        return _dry_run(settings, set_spec, from_date)

    t0 = time.perf_counter()
    with storage_errors("nightly run"), run_lock(settings, "index"):
        db = open_database(settings)
        start, until = harvest_window(settings, db, set_spec, from_date)
        report = NightlyReport(set_spec=set_spec, from_date=start, until_date=until)
        _note_owed_window(db, report)
        close_interrupted_runs(db, RUN_KIND)
        report.run_id = _start_run(db, report)
        _event("nightly_start", set=set_spec, frm=start.isoformat(), until=until.isoformat(), run=report.run_id)
        try:
            _harvest(settings, db, report, from_date, client=client, sleep=sleep)
            _build_if_needed(settings, db, report, embeddings=embeddings, progress=progress)
        except BaseException as e:
            report.seconds = time.perf_counter() - t0
            _finish_run(db, report, status="failed", message=_describe(e))
            _event("nightly_failed", run=report.run_id, error=type(e).__name__)
            raise
        report.seconds = time.perf_counter() - t0
        report.status = "ok" if report.built else "nothing_new"
        _finish_run(db, report, status="ok", message=report.summary())
        _event(
            "nightly_done", run=report.run_id, status=report.status, inserted=report.inserted,
            updated=report.updated, version=report.version, seconds=f"{report.seconds:.2f}",
        )
        return report


def _describe(e: BaseException) -> str:
    if isinstance(e, PapersError):
        return e.message
    return f"{type(e).__name__}: {e}"


def _note_owed_window(db: Engine, report: NightlyReport) -> None:
    """Record in ``report`` the window an interrupted run left unfinished, when it is not
    the very window this run harvests (that one simply resumes from its token)."""
    owed = owed_window(db, harvest_source(report.set_spec))
    if owed is not None and owed != (report.from_date, report.until_date):
        report.owed_from, report.owed_until = owed


def _harvest(settings: Settings, db: Engine, report: NightlyReport, from_date: date | None, *,
             client: Any, sleep) -> None:
    """Finish the owed window (if any), then harvest this run's window."""
    if report.owed:
        _event("harvest_resume_window", set=report.set_spec, window=report.owed)
        owed = harvest_oai(settings, db, report.set_spec, report.owed_from, report.owed_until,
                           client=client, sleep=sleep)
        _add_counts(report, owed)
        if from_date is None:  # the finished window moved last_datestamp: start from there
            report.from_date, report.until_date = harvest_window(settings, db, report.set_spec, None,
                                                                 today=report.until_date)
    h = harvest_oai(settings, db, report.set_spec, report.from_date, report.until_date, client=client, sleep=sleep)
    _add_counts(report, h)
    _event(
        "harvest_done", set=report.set_spec, records=report.harvested, inserted=report.inserted,
        updated=report.updated, unchanged=report.unchanged, skipped=report.skipped,
    )


def _add_counts(report: NightlyReport, h: Any) -> None:
    """Add one harvest's counts to the run's report."""
    inserted, updated = int(h.inserted or 0), int(h.updated or 0)
    unchanged, skipped = int(h.unchanged or 0), int(h.skipped or 0)
    report.inserted += inserted
    report.updated += updated
    report.unchanged += unchanged
    report.skipped += skipped
    report.errors = (report.errors + [str(x) for x in (h.errors or [])])[:100]
    report.harvested += int(h.records or 0) or (inserted + updated + unchanged + skipped)


def pending_rows(settings: Settings, db: Engine) -> int:
    """Rows in the database that the published index does not contain yet."""
    built_seq = current_manifest(settings).built_seq
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Paper).where(Paper.seq > built_seq)).scalar_one())


def _build_if_needed(settings: Settings, db: Engine, report: NightlyReport, *, embeddings: bool, progress: bool) -> None:
    """Build when the DB holds rows the published index lacks (this run's or a killed run's)."""
    pending = pending_rows(settings, db)
    report.pending_before = pending
    # a corrupt manifest or a missing/damaged BM25 index: the build repairs it
    check = verify_published(settings)
    damaged = check.manifest_broken or check.bm25_broken
    if pending == 0 and not damaged:
        _event("build_skipped", reason="nothing_new")
        return
    b = build(settings, embeddings=embeddings, progress=progress, lock=False)
    report.built = bool(getattr(b, "published", True))
    report.version = int(getattr(b, "version", 0))
    report.indexed = int(getattr(b, "indexed", 0))
    report.removed = int(getattr(b, "removed", 0))
    report.embedded = dict(getattr(b, "embedded", {}) or {})
    _event("build_done", version=report.version, indexed=report.indexed, removed=report.removed)


def _dry_run(settings: Settings, set_spec: str, from_date: date | None) -> NightlyReport:
    """The window and backlog a real run would process; writes nothing, takes no lock."""
    db = None
    if _database_exists(settings):
        db = engine_for(settings.resolved_database_url)
        tables = set(inspect(db).get_table_names())
        if not {HarvestState.__tablename__, Paper.__tablename__} <= tables:
            db = None
    start, until = harvest_window(settings, db, set_spec, from_date)
    report = NightlyReport(set_spec=set_spec, from_date=start, until_date=until, dry_run=True, status="dry_run")
    if db is not None:
        report.pending_before = pending_rows(settings, db)
        columns = {c["name"] for c in inspect(db).get_columns(HarvestState.__tablename__)}
        if "window_done" in columns:  # an older schema is migrated by the first real run
            _note_owed_window(db, report)
    _event("nightly_dry_run", set=set_spec, frm=start.isoformat(), until=until.isoformat(), pending=report.pending_before)
    return report


def _start_run(db: Engine, report: NightlyReport) -> int:
    window = f"{report.from_date.isoformat()}..{report.until_date.isoformat()}"
    return start_run(db, RUN_KIND, f"{harvest_source(report.set_spec)} {window}")


def _finish_run(db: Engine, report: NightlyReport, *, status: str, message: str) -> None:
    assert report.run_id is not None
    # best effort on success too: a run whose data is published must not fail on its log row
    finish_run(db, report.run_id, report, status, message, best_effort=True)


@dataclass
class BackfillReport:
    """A bulk load followed by a build."""

    source: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    version: int = 0
    indexed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"backfill {self.source}: {self.inserted} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped; published index version {self.version} ({self.indexed} indexed) "
            f"in {self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def backfill_kaggle(settings: Settings, path: Path, *, embeddings: bool = True, progress: bool = True) -> BackfillReport:
    """Ingest a Kaggle snapshot file, then build, all under the index lock."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"Kaggle snapshot {path} does not exist or is not a file")
    _check_data_dir(settings)
    t0 = time.perf_counter()
    report = BackfillReport(source=str(path))
    with storage_errors("backfill"), run_lock(settings, "index"):
        counts = ingest_kaggle(settings, path, progress=progress)
        for name in ("inserted", "updated", "unchanged", "skipped"):
            setattr(report, name, int(getattr(counts, name, 0) or 0))
        _event("backfill_ingested", source=path.name, inserted=report.inserted, updated=report.updated)
        b = build(settings, embeddings=embeddings, progress=progress, lock=False)
        report.version = int(getattr(b, "version", 0))
        report.indexed = int(getattr(b, "indexed", 0))
    report.seconds = time.perf_counter() - t0
    _event("backfill_done", version=report.version, seconds=f"{report.seconds:.2f}")
    return report
