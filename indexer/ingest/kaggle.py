"""The Kaggle arXiv snapshot (``arxiv-metadata-oai-snapshot.json``, ~2.7M lines).

Each line: ``id, submitter, authors, title, comments, journal-ref, doi, report-no,
categories`` (space-separated), ``license, abstract, versions [{version, created}],
update_date, authors_parsed [[last, first, suffix]]``. Streamed like JSONL (constant
memory, batched, tqdm progress with rate and ETA).
"""

from __future__ import annotations

from datetime import date
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine

from indexer.ingest.files import ingest_file
from indexer.ingest.records import InvalidRecord, PaperRecord
from indexer.ingest.runs import IngestReport
from indexer.ingest.store import DEFAULT_BATCH
from indexer.settings import Settings

_MONTHS = {m: i for i, m in enumerate(("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec").split(), 1)}


@lru_cache(maxsize=1 << 16)
def _gmt_day(day: str, month: str, year: str) -> date:
    """Cached: a snapshot has a few thousand distinct days among millions of versions."""
    return date(int(year), _MONTHS[month], int(day))


def _created(value: str) -> date:
    """'Mon, 2 Apr 2007 19:18:42 GMT' → date (fast path; email.utils for anything else)."""
    parts = value.split(" ", 4)
    if len(parts) >= 4 and parts[0].endswith(","):
        try:
            return _gmt_day(parts[1], parts[2], parts[3])
        except (KeyError, ValueError):
            pass
    try:
        return parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError) as e:
        raise InvalidRecord(f"bad version date {value!r}") from e


def _name(parts: list) -> str:
    """[last, first, suffix] → "first last suffix" (missing or empty parts left out)."""
    last = str(parts[0] or "")
    first = str(parts[1] or "") if len(parts) > 1 else ""
    suffix = str(parts[2] or "") if len(parts) > 2 else ""
    name = f"{first} {last}" if first and last else first or last
    return f"{name} {suffix}" if suffix and name else name or suffix


# complexity 21, a parser: the snapshot's two author shapes (authors_parsed triples, the usual
# one inlined for the hot path, else the free-text string) and their malformed variants
def _authors(obj: dict) -> list[str]:
    parsed = obj.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for parts in parsed:
            if type(parts) is list and len(parts) == 3:
                last, first, suffix = parts
                if type(last) is str and type(first) is str and type(suffix) is str:
                    # the snapshot's usual shape: _name inlined (ingest's hot path)
                    name = f"{first} {last}" if first and last else first or last
                    names.append(f"{name} {suffix}" if suffix and name else name or suffix)
                    continue
            if isinstance(parts, list) and parts:
                names.append(_name(parts))
        if names:
            return names
    raw = obj.get("authors") or ""
    return [a.strip() for a in raw.replace(" and ", ", ").split(",") if a.strip()]


def parse_kaggle_object(obj: dict) -> PaperRecord:
    """One decoded Kaggle line → PaperRecord (not yet validated)."""
    rid = obj.get("id")
    if not isinstance(rid, str):
        raise InvalidRecord("missing id")
    versions = obj.get("versions") or []
    dates = [_created(v["created"]) for v in versions if isinstance(v, dict) and v.get("created")]
    update_date = date.fromisoformat(obj["update_date"][:10]) if obj.get("update_date") else None
    if dates:
        published = dates[0]
        updated = dates[-1] if len(dates) > 1 else None
    elif update_date is not None:
        published, updated = update_date, None
    else:
        raise InvalidRecord(f"{rid}: no version dates")
    return PaperRecord(
        id=rid,
        title=obj.get("title") or "",
        abstract=obj.get("abstract") or "",
        authors=_authors(obj),
        categories=(obj.get("categories") or "").split(),
        published=published,
        updated=updated,
        versions=max(1, len(versions)),
        doi=obj.get("doi") or None,
        journal_ref=obj.get("journal-ref") or None,
        comments=obj.get("comments") or None,
        license=obj.get("license") or None,
        datestamp=update_date,
    )


def ingest_kaggle(
    settings: Settings,
    path: Path | str,
    *,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    db: Engine | None = None,
    limit: int | None = None,
    parallel: bool | None = None,
) -> IngestReport:
    """Stream a Kaggle snapshot (plain or .gz) into the database (ingest_runs kind 'kaggle')."""
    return ingest_file(
        settings, path, parse_kaggle_object, kind="kaggle", progress=progress,
        batch_size=batch_size, db=db, limit=limit, parallel=parallel,
    )
