"""The one write path for paper metadata: batched, idempotent upserts.

Every source (OAI-PMH, arXiv API, Kaggle, JSONL) produces :class:`PaperRecord` and hands
it to :func:`upsert_papers` (or, when the caller must commit its own bookkeeping in the
same transaction, :func:`upsert_batch`). Why one path: ``seq`` and ``content_hash`` are
what the incremental builder keys on, so they must be assigned the same way everywhere.

Per batch, in ONE transaction (written whole or not at all):

1. take the database's write lock first (so ``max(seq)`` cannot race another writer),
2. read the existing rows of the batch's ids,
3. merge each record onto its row (``None`` optional fields keep what is stored; an
   older version never overwrites a newer one; a deleted record only sets ``withdrawn``),
4. write only rows that changed, with fresh strictly increasing ``seq`` numbers, through
   one Core ``INSERT .. ON CONFLICT DO UPDATE`` executemany (SQLite or PostgreSQL),
5. keep ``paper_categories`` in sync for rows whose categories changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    column,
    delete,
    false,
    func,
    select,
    table,
    text,
    update,
)

from indexer.db import open_database
from indexer.models import Paper, PaperCategory
from indexer.records import InvalidRecord, PaperRecord

try:  # orjson: ~5x faster JSON text for the authors/categories columns
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()
except ImportError:  # pragma: no cover
    import json

    def _dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

__all__ = [
    "MAX_ERRORS",
    "UpsertCounts",
    "content_hash",
    "database_stats",
    "dialect_insert",
    "open_database",
    "upsert_batch",
    "upsert_papers",
]

MAX_ERRORS = 100  # errors kept in a summary / ingest_runs row; every one is still counted
DEFAULT_BATCH = 2000
# fields compared to decide "unchanged"; seq / ingested_at / content_hash are derived
_FIELDS = (
    "title", "abstract", "authors", "primary_category", "categories", "published", "updated",
    "versions", "doi", "journal_ref", "comments", "license", "datestamp", "withdrawn",
)
_OPTIONAL = ("updated", "doi", "journal_ref", "comments", "license", "datestamp")
_READ_COLUMNS = [Paper.id, Paper.seq, *(getattr(Paper, f) for f in _FIELDS)]


def content_hash(title: str, abstract: str, categories: Iterable[str]) -> str:
    """sha1 of what the index and embeddings see; they redo work only when it changes."""
    return hashlib.sha1(f"{title}\x1f{abstract}\x1f{' '.join(categories)}".encode()).hexdigest()


@dataclass
class UpsertCounts:
    """What an upsert (or a whole ingest) did. ``errors`` holds the first MAX_ERRORS."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    withdrawn: int = 0  # of ``updated``: rows newly marked withdrawn

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.skipped

    @property
    def changed(self) -> int:
        return self.inserted + self.updated

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(reason)

    def add(self, other: UpsertCounts) -> UpsertCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.withdrawn += other.withdrawn
        self.skipped += other.skipped
        room = MAX_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(other.errors[:room])
        return self

    def summary(self) -> str:
        s = f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"
        if self.withdrawn:
            s += f" ({self.withdrawn} withdrawn)"
        return s

    def as_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "skipped": self.skipped, "withdrawn": self.withdrawn, "errors": list(self.errors),
        }


def dialect_insert(conn: Connection, table: Any) -> Any:
    """``INSERT`` construct with ``on_conflict_do_update`` for the connection's dialect."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"upsert is not implemented for {name}")
    return insert(table)


def _lock_for_write(conn: Connection) -> None:
    """Hold the write lock before reading max(seq): no other writer can interleave.

    SQLite: a no-op UPDATE starts the write transaction (RESERVED lock; waits up to the
    busy timeout). PostgreSQL: a transaction-scoped advisory lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7262001)"))
    else:
        conn.execute(update(Paper).where(false()).values(seq=Paper.seq))


def _record_values(rec: PaperRecord) -> dict[str, Any]:
    cats = rec.categories
    return {
        "title": rec.title, "abstract": rec.abstract, "authors": rec.authors,
        "primary_category": cats[0] if cats else "", "categories": cats,
        "published": rec.published, "updated": rec.updated, "versions": int(rec.versions or 1),
        "doi": rec.doi or None, "journal_ref": rec.journal_ref or None, "comments": rec.comments or None,
        "license": rec.license or None, "datestamp": rec.datestamp, "withdrawn": bool(rec.withdrawn),
    }


def _is_stale(rec: PaperRecord, old: dict[str, Any]) -> bool:
    """An older version of what is stored (e.g. a Kaggle snapshot after OAI): ignore it."""
    if rec.versions < old["versions"]:
        return True
    return (
        rec.versions == old["versions"]
        and rec.datestamp is not None
        and old["datestamp"] is not None
        and rec.datestamp < old["datestamp"]
    )


def _merge(rec: PaperRecord, old: dict[str, Any] | None) -> dict[str, Any] | None:
    """The row ``rec`` should leave behind, or None when nothing is to be written."""
    if rec.withdrawn and not rec.title:
        # a deletion notice carries no metadata: keep the row, flag it
        if old is None or old["withdrawn"]:
            return None
        new = dict(old)
        new["withdrawn"] = True
        if rec.datestamp is not None:
            new["datestamp"] = rec.datestamp
        return new
    new = _record_values(rec)
    if old is None:
        return new
    if _is_stale(rec, old):
        return None
    for name in _OPTIONAL:
        if new[name] is None:
            new[name] = old[name]
    return new


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _existing(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in _chunks(ids, 900):  # well under every backend's bind-parameter limit
        for row in conn.execute(select(*_READ_COLUMNS).where(Paper.id.in_(part))):
            out[row.id] = row._asdict()
    return out


def _prepare(records: Iterable[PaperRecord], counts: UpsertCounts, validated: bool) -> list[PaperRecord]:
    if validated:
        return list(records)
    good: list[PaperRecord] = []
    for rec in records:
        try:
            good.append(rec.validate())
        except (InvalidRecord, TypeError, ValueError, AttributeError) as e:
            counts.skip(f"{getattr(rec, 'id', '?')}: {e}")
    return good


def upsert_batch(conn: Connection, records: Iterable[PaperRecord], *, validated: bool = False) -> UpsertCounts:
    """Upsert ``records`` on ``conn`` inside the caller's transaction (see module doc).

    Invalid records are skipped and counted; the caller commits (or rolls back) the lot.
    ``validated=True``: the caller already ran ``PaperRecord.validate()`` on each record
    (the file sources do, to report line numbers), so it is not run twice.
    """
    counts = UpsertCounts()
    recs = _prepare(records, counts, validated)
    if not recs:
        return counts
    _lock_for_write(conn)
    current = _existing(conn, list(dict.fromkeys(r.id for r in recs)))
    seq = int(conn.execute(select(func.coalesce(func.max(Paper.seq), 0))).scalar_one())
    now = datetime.now(UTC).replace(tzinfo=None)
    writes: dict[str, dict[str, Any]] = {}
    inserted_ids: set[str] = set()
    category_changes: dict[str, list[str]] = {}
    for rec in recs:
        old = current.get(rec.id)
        new = _merge(rec, old)
        if new is None or (old is not None and all(new[f] == old[f] for f in _FIELDS)):
            counts.unchanged += 1
            continue
        seq += 1
        new["seq"] = seq
        if old is None:
            counts.inserted += 1
            inserted_ids.add(rec.id)
        else:
            counts.updated += 1
            if new["withdrawn"] and not old["withdrawn"]:
                counts.withdrawn += 1
        if old is None or new["categories"] != old["categories"]:
            category_changes[rec.id] = new["categories"]
        current[rec.id] = new
        row = dict(new, id=rec.id, ingested_at=now)
        row["content_hash"] = content_hash(new["title"], new["abstract"], new["categories"])
        if rec.id in writes:
            del writes[rec.id]  # keep insertion order = seq order
        writes[rec.id] = row
    if writes:
        _write_rows(conn, list(writes.values()))
        _sync_categories(conn, category_changes, inserted_ids)
    return counts


# SQLite fast path. The statements are the same Core constructs (dialect insert with
# ON CONFLICT), compiled once by SQLAlchemy's SQLite compiler to a text with "?" bound
# parameters and run through the driver's executemany with tuples already in SQLite's
# storage format (ISO dates, JSON text, 0/1): the typed columns read these back exactly
# (Date/DateTime parse ISO text, JSON parses JSON text). Why: SQLAlchemy's per-row
# parameter processing was a third of the ingest time. Values are never formatted into
# SQL. PostgreSQL (and anything else) goes through conn.execute(stmt, rows) as usual.
_PAPER_COLUMNS = [c.name for c in Paper.__table__.columns]
_DATE_COLUMNS = ("published", "updated", "datestamp")


def _paper_upsert(conn: Connection, target: Any) -> Any:
    stmt = dialect_insert(conn, target)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={name: stmt.excluded[name] for name in _PAPER_COLUMNS if name != "id"}
    )


def _category_insert(conn: Connection) -> Any:
    return dialect_insert(conn, PaperCategory.__table__).on_conflict_do_nothing()


@lru_cache(maxsize=4)
def _sqlite_statement(kind: str) -> tuple[str, tuple[str, ...]]:
    """(SQL text with ? parameters, parameter names in order) of a compiled Core statement."""
    from sqlalchemy.dialects import sqlite

    class _Sqlite:  # just enough of a Connection for dialect_insert
        dialect = sqlite.dialect()

    if kind == "papers":
        raw = table("papers", *(column(name) for name in _PAPER_COLUMNS))
        stmt, keys = _paper_upsert(_Sqlite, raw), _PAPER_COLUMNS  # type: ignore[arg-type]
    else:
        stmt, keys = _category_insert(_Sqlite), ["paper_id", "category"]  # type: ignore[arg-type]
    compiled = stmt.compile(dialect=_Sqlite.dialect, column_keys=keys)
    return str(compiled), tuple(compiled.positiontup or ())


def _sqlite_values(row: dict[str, Any], stamp: str) -> dict[str, Any]:
    r = dict(row)
    r["authors"] = _dumps(r["authors"])
    r["categories"] = _dumps(r["categories"])
    for name in _DATE_COLUMNS:
        if r[name] is not None:
            r[name] = r[name].isoformat()
    r["withdrawn"] = 1 if r["withdrawn"] else 0
    r["ingested_at"] = stamp
    return r


def _write_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "sqlite":
        conn.execute(_paper_upsert(conn, Paper.__table__), rows)
        return
    sql, names = _sqlite_statement("papers")
    stamp = rows[0]["ingested_at"].isoformat(sep=" ", timespec="microseconds")
    params = []
    for row in rows:
        r = _sqlite_values(row, stamp)
        params.append(tuple(r[name] for name in names))
    conn.exec_driver_sql(sql, params)


def _sync_categories(conn: Connection, changes: dict[str, list[str]], inserted: set[str]) -> None:
    stale = [pid for pid in changes if pid not in inserted]
    for part in _chunks(stale, 900):
        conn.execute(delete(PaperCategory).where(PaperCategory.paper_id.in_(part)))
    pairs = [(pid, cat) for pid, cats in changes.items() for cat in {c[:32]: None for c in cats}]
    if not pairs:
        return
    if conn.dialect.name == "sqlite":
        sql, names = _sqlite_statement("categories")
        order = (0, 1) if names == ("paper_id", "category") else (1, 0)
        conn.exec_driver_sql(sql, [(p[order[0]], p[order[1]]) for p in pairs] if order != (0, 1) else pairs)
    else:
        conn.execute(_category_insert(conn), [{"paper_id": p, "category": c} for p, c in pairs])


def batched(records: Iterable[PaperRecord], batch_size: int) -> Iterator[list[PaperRecord]]:
    batch: list[PaperRecord] = []
    for rec in records:
        batch.append(rec)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def upsert_papers(engine: Engine, records: Iterable[PaperRecord], batch_size: int = DEFAULT_BATCH) -> UpsertCounts:
    """Upsert any iterable of records (streamed), one transaction per ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    total = UpsertCounts()
    for batch in batched(records, batch_size):
        with engine.begin() as conn:
            total.add(upsert_batch(conn, batch))
    return total


def database_stats(engine: Engine) -> dict[str, Any]:
    """Counts for `papers stats` / operators: papers, withdrawn, categories, dates, last run."""
    from indexer.ingest.runs import last_run

    with engine.connect() as conn:
        papers, withdrawn, pmin, pmax, umax, seq = conn.execute(
            select(
                func.count(), func.coalesce(func.sum(Paper.withdrawn.cast(Integer)), 0),
                func.min(Paper.published), func.max(Paper.published), func.max(Paper.updated),
                func.coalesce(func.max(Paper.seq), 0),
            )
        ).one()
        cats = conn.execute(
            select(PaperCategory.category, func.count().label("n"))
            .group_by(PaperCategory.category)
            .order_by(func.count().desc(), PaperCategory.category)
        ).all()
    return {
        "papers": int(papers),
        "withdrawn": int(withdrawn),
        "categories": len(cats),
        "top_categories": [[c, int(n)] for c, n in cats[:20]],
        "published_min": pmin.isoformat() if pmin else None,
        "published_max": pmax.isoformat() if pmax else None,
        "updated_max": umax.isoformat() if umax else None,
        "max_seq": int(seq),
        "last_ingest_run": last_run(engine),
    }
