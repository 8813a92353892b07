"""Our JSONL format (``papers.jsonl.gz`` in shared data, and the bundled sample).

One object per line: ``id, title, abstract, authors (list), categories (list),
published (YYYY-MM-DD), updated (YYYY-MM-DD|null)``; optional ``versions, doi,
journal_ref, comments, license, datestamp, withdrawn`` are read when present.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from indexer.ingest.files import ingest_file
from indexer.ingest.records import InvalidRecord, PaperRecord
from indexer.ingest.runs import IngestReport
from indexer.ingest.store import DEFAULT_BATCH
from indexer.settings import Settings


def _day(value: object) -> date | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"bad date {value!r}")
    return date.fromisoformat(value[:10])


def _str_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list):
        raise InvalidRecord(f"expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def parse_jsonl_object(obj: dict) -> PaperRecord:
    """One decoded JSONL line → PaperRecord (not yet validated)."""
    rid = obj.get("id")
    if not isinstance(rid, str):
        raise InvalidRecord("missing id")
    published = _day(obj.get("published"))
    if published is None:
        raise InvalidRecord(f"{rid}: missing published date")
    authors = obj.get("authors")
    return PaperRecord(
        id=rid,
        title=obj.get("title") or "",
        abstract=obj.get("abstract") or "",
        authors=[a.strip() for a in authors.split(",")] if isinstance(authors, str) else _str_list(authors),
        categories=_str_list(obj.get("categories")),
        published=published,
        updated=_day(obj.get("updated")),
        versions=int(obj.get("versions") or 1),
        doi=obj.get("doi") or None,
        journal_ref=obj.get("journal_ref") or None,
        comments=obj.get("comments") or None,
        license=obj.get("license") or None,
        datestamp=_day(obj.get("datestamp")),
        withdrawn=bool(obj.get("withdrawn", False)),
    )


def ingest_jsonl(
    settings: Settings,
    path: Path | str,
    *,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    db: Engine | None = None,
    limit: int | None = None,
    parallel: bool | None = None,
) -> IngestReport:
    """Stream a JSONL(.gz) file into the database; returns counts (ingest_runs kind 'jsonl')."""
    return ingest_file(
        settings, path, parse_jsonl_object, kind="jsonl", progress=progress,
        batch_size=batch_size, db=db, limit=limit, parallel=parallel,
    )
