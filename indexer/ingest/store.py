"""The one write path for paper metadata: batched, idempotent upserts.

Every source (OAI-PMH, arXiv API, Kaggle, JSONL) produces :class:`PaperRecord` and hands
it to :func:`upsert_papers` (or, when the caller must commit its own bookkeeping in the
same transaction, :func:`upsert_batch`). Why one path: ``seq`` and ``content_hash`` are
what the incremental builder keys on, so they must be assigned the same way everywhere.

A record is first *encoded* (:func:`encode_record`) into a row tuple in the column order
of :data:`ROW_COLUMNS`, in the connection's storage format: for SQLite the driver's own
values (ISO date text, JSON text, 0/1), for any other dialect Python values that the
typed SQLAlchemy columns convert. Bulk file imports encode in a parser process and hand
the rows to :func:`upsert_rows`; everything else goes through :func:`upsert_batch`,
which validates, encodes and calls the same :func:`upsert_rows`.

Per batch, in ONE transaction (written whole or not at all):

1. take the database's write lock first (so ``max(seq)`` cannot race another writer),
2. read the stored rows of the batch's ids in one query per 900 ids, WITHOUT the title
   and abstract: ``content_hash`` stands for those (the full row is read only for the
   rare deletion notice, which keeps the stored metadata),
3. merge each row onto the stored one (``None`` optional fields keep what is stored; an
   older version never overwrites a newer one; a deletion notice only sets ``withdrawn``),
4. write only rows that changed, with fresh strictly increasing ``seq`` numbers, through
   one ``INSERT .. ON CONFLICT DO UPDATE`` executemany (SQLite or PostgreSQL),
5. keep ``paper_categories`` in sync for rows whose categories changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
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
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from indexer.batching import batched
from indexer.db import open_database
from indexer.ingest.records import InvalidRecord, PaperRecord
from indexer.models import Paper, PaperCategory
from indexer.runs import MAX_ERRORS, last_run

try:  # orjson: ~5x faster JSON text for the authors/categories columns
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover
    import json

    def _dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    _loads = json.loads

__all__ = [
    "MAX_ERRORS",
    "ROW_COLUMNS",
    "Row",
    "UpsertCounts",
    "bulk_connection",
    "content_hash",
    "database_stats",
    "dialect_insert",
    "encode_record",
    "open_database",
    "upsert_batch",
    "upsert_papers",
    "upsert_rows",
]

DEFAULT_BATCH = 2000

Row = tuple[Any, ...]
# a row's values, in this order (what encode_record returns and upsert_rows takes)
ROW_COLUMNS = (
    "id", "title", "abstract", "authors", "primary_category", "categories", "published", "updated",
    "versions", "doi", "journal_ref", "comments", "license", "datestamp", "withdrawn", "content_hash",
)
(_ID, _TITLE, _ABSTRACT, _AUTHORS, _PRIMARY, _CATEGORIES, _PUBLISHED, _UPDATED, _VERSIONS, _DOI,
 _JOURNAL_REF, _COMMENTS, _LICENSE, _DATESTAMP, _WITHDRAWN, _HASH) = range(len(ROW_COLUMNS))
_WRITE_COLUMNS = (*ROW_COLUMNS, "seq", "ingested_at")  # what a write sets: every column
# a source without these (None) keeps what is stored
_OPTIONAL = (_UPDATED, _DOI, _JOURNAL_REF, _COMMENTS, _LICENSE, _DATESTAMP)
# "unchanged" = these equal: content_hash stands for title + abstract (+ categories),
# which are therefore not read back to compare
_COMPARED = slice(_AUTHORS, _HASH + 1)
_NOT_READ = ("title", "abstract")

# Bulk writes on SQLite (bulk_connection): a 32 MiB page cache instead of 2 MiB, and a WAL
# checkpoint every 16384 pages (64 MiB) instead of every 1000: a 2000-paper batch is ~4 MB
# of pages, so the default checkpointed (and fsynced) after nearly every commit.
BULK_CACHE_KIB = 32 * 1024
BULK_WAL_AUTOCHECKPOINT = 16384


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
        return sqlite_insert(table)
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import (
            insert as pg_insert,  # heavy: 70 ms, loaded only on PostgreSQL
        )

        return pg_insert(table)
    raise NotImplementedError(f"upsert is not implemented for {name}")  # pragma: no cover


def _lock_for_write(conn: Connection) -> None:
    """Hold the write lock before reading max(seq): no other writer can interleave.

    SQLite: a no-op UPDATE starts the write transaction (RESERVED lock; waits up to the
    busy timeout). PostgreSQL: a transaction-scoped advisory lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7262001)"))
    else:
        conn.execute(update(Paper).where(false()).values(seq=Paper.seq))


# -- encoding ------------------------------------------------------------------------------


def encode_record(rec: PaperRecord, *, sqlite: bool) -> Row:
    """A validated record as a row of :data:`ROW_COLUMNS`, content_hash included.

    ``sqlite=True``: in SQLite's storage format (ISO date text, JSON text, 0/1), exactly
    what the typed columns write and read back, so rows go to the driver as they are.
    ``sqlite=False``: Python values (dates, lists, bool) for SQLAlchemy's typed columns.
    """
    cats = rec.categories
    digest = content_hash(rec.title, rec.abstract, cats)
    if sqlite:
        updated, datestamp = rec.updated, rec.datestamp
        return (
            rec.id, rec.title, rec.abstract, _dumps(rec.authors), cats[0] if cats else "", _dumps(cats),
            rec.published.isoformat(), None if updated is None else updated.isoformat(),
            int(rec.versions or 1), rec.doi or None, rec.journal_ref or None, rec.comments or None,
            rec.license or None, None if datestamp is None else datestamp.isoformat(),
            1 if rec.withdrawn else 0, digest,
        )
    return (
        rec.id, rec.title, rec.abstract, list(rec.authors), cats[0] if cats else "", list(cats),
        rec.published, rec.updated, int(rec.versions or 1), rec.doi or None, rec.journal_ref or None,
        rec.comments or None, rec.license or None, rec.datestamp, bool(rec.withdrawn), digest,
    )


def _categories(value: Any) -> list[str]:
    """A row's categories as a list (SQLite rows hold JSON text)."""
    return _loads(value) if isinstance(value, str) else list(value)


def _is_notice(row: Row) -> bool:
    """A deletion notice: carries no metadata, only "this paper is withdrawn"."""
    return bool(row[_WITHDRAWN]) and not row[_TITLE]


def _is_stale(new: Row, old: Row) -> bool:
    """An older version of what is stored (e.g. a Kaggle snapshot after OAI): ignore it.

    (Dates compare the same as ISO text, so this holds for both row formats.)
    """
    if new[_VERSIONS] < old[_VERSIONS]:
        return True
    return (
        new[_VERSIONS] == old[_VERSIONS]
        and new[_DATESTAMP] is not None
        and old[_DATESTAMP] is not None
        and new[_DATESTAMP] < old[_DATESTAMP]
    )


def _same(new: Row, old: Row, sqlite: bool) -> bool:
    if new[_COMPARED] == old[_COMPARED]:
        return True
    if not sqlite or new[_HASH] != old[_HASH]:
        return False
    # JSON text stored by another serializer (e.g. '["a", "b"]'): compare the values
    return all(
        a == b or (i in (_AUTHORS, _CATEGORIES) and isinstance(b, str) and _loads(a) == _loads(b))
        for i, a, b in zip(range(_AUTHORS, _HASH), new[_AUTHORS:_HASH], old[_AUTHORS:_HASH], strict=True)
    )


def _merge(new: Row, old: Row, sqlite: bool) -> Row | None:
    """The row ``new`` should leave behind over the stored ``old``, or None to leave it."""
    if _is_notice(new):
        # keep the stored metadata (``old`` is a full row here, see _existing), flag it
        if old[_WITHDRAWN]:
            return None
        merged = list(old)
        merged[_WITHDRAWN] = new[_WITHDRAWN]
        if new[_DATESTAMP] is not None:
            merged[_DATESTAMP] = new[_DATESTAMP]
        merged[_HASH] = content_hash(merged[_TITLE], merged[_ABSTRACT], _categories(merged[_CATEGORIES]))
        return tuple(merged)
    if _is_stale(new, old):
        return None
    if any(new[i] is None for i in _OPTIONAL):
        filled = list(new)
        for i in _OPTIONAL:
            if filled[i] is None:
                filled[i] = old[i]
        new = tuple(filled)
    return None if _same(new, old, sqlite) else new


# -- reading the stored rows ---------------------------------------------------------------


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@lru_cache(maxsize=64)
def _sqlite_select(n: int, full: bool) -> str:
    cols = ", ".join("NULL" if name in _NOT_READ and not full else name for name in ROW_COLUMNS)
    # identifiers are the constants above; every value is a bound parameter
    return f"SELECT {cols} FROM papers WHERE id IN ({', '.join('?' * n)})"  # noqa: S608


def _read_rows(conn: Connection, ids: list[str], full: bool, sqlite: bool) -> Iterator[Row]:
    """Stored rows of ``ids`` (title and abstract None unless ``full``), ROW_COLUMNS order."""
    for part in _chunks(ids, 900):  # well under every backend's bind-parameter limit
        if sqlite:
            yield from (tuple(r) for r in conn.exec_driver_sql(_sqlite_select(len(part), full), tuple(part)))
            continue
        names = ROW_COLUMNS if full else tuple(n for n in ROW_COLUMNS if n not in _NOT_READ)
        cols = [Paper.__table__.c[n] for n in names]
        for r in conn.execute(select(*cols).where(Paper.id.in_(part))):
            yield tuple(r) if full else (r[0], None, None, *r[1:])


def _existing(conn: Connection, rows: Sequence[Row], sqlite: bool) -> dict[str, Row]:
    """The stored rows for a batch, one query per 900 ids.

    Title and abstract are not read (content_hash stands for them) except for the ids of
    deletion notices, which rewrite the stored row as it is, withdrawn.
    """
    ids = list(dict.fromkeys(map(itemgetter(_ID), rows)))
    notices: set[str] = set()
    if any(map(itemgetter(_WITHDRAWN), rows)):  # rare: look at each row only then
        notices = {r[_ID] for r in rows if _is_notice(r)}
    if notices:
        full = [i for i in ids if i in notices]
        ids = [i for i in ids if i not in notices]
    out = {r[_ID]: r for r in _read_rows(conn, ids, False, sqlite)}
    if notices:
        out.update((r[_ID], r) for r in _read_rows(conn, full, True, sqlite))
    return out


# -- the upsert ----------------------------------------------------------------------------


def _prepare(records: Iterable[PaperRecord], counts: UpsertCounts, validated: bool, sqlite: bool) -> list[Row]:
    if validated:
        return [encode_record(rec, sqlite=sqlite) for rec in records]
    rows: list[Row] = []
    for rec in records:
        try:
            rows.append(encode_record(rec.validate(), sqlite=sqlite))
        except (InvalidRecord, TypeError, ValueError, AttributeError) as e:
            counts.skip(f"{getattr(rec, 'id', '?')}: {e}")
    return rows


def upsert_batch(conn: Connection, records: Iterable[PaperRecord], *, validated: bool = False) -> UpsertCounts:
    """Upsert ``records`` on ``conn`` inside the caller's transaction (see module doc).

    Invalid records are skipped and counted; the caller commits (or rolls back) the lot.
    ``validated=True``: the caller already ran ``PaperRecord.validate()`` on each record
    (the file sources do, to report line numbers), so it is not run twice.
    """
    counts = UpsertCounts()
    rows = _prepare(records, counts, validated, conn.dialect.name == "sqlite")
    return upsert_rows(conn, rows, counts)


def upsert_rows(conn: Connection, rows: Sequence[Row], counts: UpsertCounts | None = None) -> UpsertCounts:
    """Upsert rows made by :func:`encode_record` (for this connection's dialect) on ``conn``,
    inside the caller's transaction. Rows of one id later in ``rows`` win, as if written later.
    """
    counts = counts if counts is not None else UpsertCounts()
    if not rows:
        return counts
    sqlite = conn.dialect.name == "sqlite"
    if isinstance(rows[0][_AUTHORS], str) != sqlite:
        raise TypeError(f"rows were not encoded for {conn.dialect.name} (encode_record(sqlite=...))")
    _lock_for_write(conn)
    current = _existing(conn, rows, sqlite)
    seq = int(conn.execute(select(func.coalesce(func.max(Paper.seq), 0))).scalar_one())
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp: Any = now.isoformat(sep=" ", timespec="microseconds") if sqlite else now
    writes: dict[str, Row] = {}
    inserted_ids: set[str] = set()
    category_changes: dict[str, Any] = {}
    for new in rows:
        pid = new[_ID]
        old = current.get(pid)
        if old is None:
            if new[_WITHDRAWN] and not new[_TITLE]:  # a deletion notice for a paper we never had
                counts.unchanged += 1
                continue
            counts.inserted += 1
            inserted_ids.add(pid)
            category_changes[pid] = new[_CATEGORIES]
        else:
            merged = _merge(new, old, sqlite)
            if merged is None:
                counts.unchanged += 1
                continue
            new = merged
            counts.updated += 1
            if new[_WITHDRAWN] and not old[_WITHDRAWN]:
                counts.withdrawn += 1
            if new[_CATEGORIES] != old[_CATEGORIES]:
                category_changes[pid] = new[_CATEGORIES]
        seq += 1
        current[pid] = new
        if pid in writes:
            del writes[pid]  # keep insertion order = seq order
        writes[pid] = (*new, seq, stamp)
    if writes:
        _write_rows(conn, list(writes.values()), sqlite)
        _sync_categories(conn, {pid: _categories(c) for pid, c in category_changes.items()}, inserted_ids)
    return counts


# SQLite fast path. The statements are the same Core constructs (dialect insert with
# ON CONFLICT), compiled once by SQLAlchemy's SQLite compiler to a text with "?" bound
# parameters and run through the driver's executemany with the rows as they are (in
# SQLite's storage format, see encode_record): SQLAlchemy's per-row parameter processing
# was a third of the ingest time. Values are never formatted into SQL. PostgreSQL (and
# anything else) goes through conn.execute(stmt, rows) with the typed columns as usual.


def _paper_upsert(conn: Connection, target: Any) -> Any:
    stmt = dialect_insert(conn, target)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={name: stmt.excluded[name] for name in _WRITE_COLUMNS if name != "id"}
    )


def _category_insert(conn: Connection) -> Any:
    return dialect_insert(conn, PaperCategory.__table__).on_conflict_do_nothing()


@lru_cache(maxsize=4)
def _sqlite_statement(kind: str) -> str:
    """SQL text with ? parameters, in _WRITE_COLUMNS (papers) / (paper_id, category) order."""

    class _Sqlite:  # just enough of a Connection for dialect_insert
        dialect = sqlite.dialect()

    keys: tuple[str, ...]
    if kind == "papers":
        raw = table("papers", *(column(name) for name in _WRITE_COLUMNS))
        stmt, keys = _paper_upsert(_Sqlite, raw), _WRITE_COLUMNS  # type: ignore[arg-type]
    else:
        stmt, keys = _category_insert(_Sqlite), ("paper_id", "category")  # type: ignore[arg-type]
    compiled = stmt.compile(dialect=_Sqlite.dialect, column_keys=list(keys))
    if tuple(compiled.positiontup or ()) != tuple(keys):  # pragma: no cover - a SQLAlchemy change
        raise RuntimeError(f"unexpected parameter order in {compiled}")
    return str(compiled)


def _write_rows(conn: Connection, rows: list[Row], sqlite: bool) -> None:
    if sqlite:
        conn.exec_driver_sql(_sqlite_statement("papers"), rows)
    else:
        conn.execute(_paper_upsert(conn, Paper.__table__), [dict(zip(_WRITE_COLUMNS, r, strict=True)) for r in rows])


def _sync_categories(conn: Connection, changes: dict[str, list[str]], inserted: set[str]) -> None:
    stale = [pid for pid in changes if pid not in inserted]
    for part in _chunks(stale, 900):
        conn.execute(delete(PaperCategory).where(PaperCategory.paper_id.in_(part)))
    # a category twice (or two equal once cut to the column's 32) is one pair: DO NOTHING
    pairs = [(pid, cat[:32]) for pid, cats in changes.items() for cat in cats]
    if not pairs:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_sqlite_statement("categories"), pairs)
    else:
        conn.execute(_category_insert(conn), [{"paper_id": p, "category": c} for p, c in pairs])


@contextmanager
def bulk_connection(db: Engine) -> Iterator[Connection]:
    """One connection for a run of batches (each its own ``with conn.begin():``).

    On SQLite, for its lifetime: a bigger page cache and fewer WAL checkpoints (see
    BULK_CACHE_KIB), put back afterwards; memory stays bounded by the cache size.
    """
    with db.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        # PRAGMA names and values cannot be bound parameters: fixed names, int() values
        saved = [(p, raw.execute(f"PRAGMA {p}").fetchone()[0]) for p in ("cache_size", "wal_autocheckpoint")]  # noqa: S608
        raw.execute(f"PRAGMA cache_size=-{int(BULK_CACHE_KIB)}")  # noqa: S608
        raw.execute(f"PRAGMA wal_autocheckpoint={int(BULK_WAL_AUTOCHECKPOINT)}")  # noqa: S608
        try:
            yield conn
        finally:
            try:
                for name, value in saved:
                    raw.execute(f"PRAGMA {name}={int(value)}")  # noqa: S608
            except Exception:  # noqa: BLE001 - a broken connection: do not return it to the pool
                conn.invalidate()


def upsert_papers(db: Engine, records: Iterable[PaperRecord], batch_size: int = DEFAULT_BATCH) -> UpsertCounts:
    """Upsert any iterable of records (streamed), one transaction per ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    total = UpsertCounts()
    with bulk_connection(db) as conn:
        for batch in batched(records, batch_size):
            with conn.begin():
                total.add(upsert_batch(conn, batch))
    return total


def database_stats(db: Engine) -> dict[str, Any]:
    """Counts for `papers stats` / operators: papers, withdrawn, categories, dates, last run."""
    with db.connect() as conn:
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
        "last_ingest_run": last_run(db),
    }
