"""The arXiv API (``/api/query``, Atom) by id: papers the service is asked about but
does not have yet (``papers ingest ids``, on-demand fetch in the web service).

Both Atom dialects are parsed: the current backend (plain ``opensearch:*``) and the
legacy one (``rel="self"`` link, ``title type="html"``, namespaced opensearch elements).
The API's error entry (``/api/errors#...``, e.g. "incorrect id format for abc") becomes
:class:`indexer.errors.InvalidInput`; an empty result is simply no records.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import date

import httpx
from sqlalchemy import Engine

from indexer.errors import InvalidInput, UpstreamError
from indexer.ingest.http import PoliteClient, RetryableBody
from indexer.ingest.records import InvalidRecord, PaperRecord, id_version, normalize_arxiv_id
from indexer.ingest.runs import IngestReport, recorded_run
from indexer.ingest.store import open_database, upsert_papers
from indexer.settings import Settings

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
_CATEGORY_RE = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z][A-Za-z\-]*)?$")  # drops MSC/ACM terms like "35"
MAX_IDS_PER_REQUEST = 100  # the API pages at 100 results per request here


def _day(value: str | None) -> date | None:
    value = (value or "").strip()
    return date.fromisoformat(value[:10]) if value else None


def _is_error(entry: ET.Element) -> bool:
    return "/api/errors" in (entry.findtext(f"{ATOM}id") or "")


# complexity 21, a parser: one optional Atom/arXiv element after another, each with its
# own fallback; read top to bottom it mirrors the entry, split it would hide that
def parse_entry(entry: ET.Element) -> PaperRecord:
    """One Atom ``<entry>`` → validated PaperRecord (raises InvalidRecord)."""
    raw_id = (entry.findtext(f"{ATOM}id") or "").strip()
    if not raw_id:
        raise InvalidRecord("entry without id")
    version = id_version(raw_id) or 1
    published = _day(entry.findtext(f"{ATOM}published"))
    if published is None:
        raise InvalidRecord(f"{raw_id}: no published date")
    updated = _day(entry.findtext(f"{ATOM}updated")) if version > 1 else None
    primary = entry.find(f"{ARXIV}primary_category")
    cats = [primary.get("term", "")] if primary is not None else []
    cats += [c.get("term", "") for c in entry.iterfind(f"{ATOM}category")]
    return PaperRecord(
        id=raw_id,
        title=entry.findtext(f"{ATOM}title") or "",
        abstract=entry.findtext(f"{ATOM}summary") or "",
        authors=[a.findtext(f"{ATOM}name") or "" for a in entry.iterfind(f"{ATOM}author")],
        categories=[c for c in dict.fromkeys(c.strip() for c in cats) if _CATEGORY_RE.match(c)],
        published=published,
        updated=updated,
        versions=version,
        doi=(entry.findtext(f"{ARXIV}doi") or "").strip() or None,
        journal_ref=(entry.findtext(f"{ARXIV}journal_ref") or "").strip() or None,
        comments=(entry.findtext(f"{ARXIV}comment") or "").strip() or None,
    ).validate()


def parse_feed(body: bytes) -> tuple[list[PaperRecord], list[str]]:
    """(records, problems) of an Atom feed; raises InvalidInput for an API error entry."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise UpstreamError(f"arXiv API returned malformed XML ({e})") from e
    records: list[PaperRecord] = []
    problems: list[str] = []
    for entry in root.iterfind(f"{ATOM}entry"):
        if _is_error(entry):
            raise InvalidInput(f"arXiv API: {(entry.findtext(f'{ATOM}summary') or 'error').strip()}")
        if entry.find(f"{ATOM}id") is None:
            continue  # the API's placeholder for an id it does not know (legacy backend)
        try:
            records.append(parse_entry(entry))
        except (InvalidRecord, ValueError) as e:
            problems.append(str(e))
    return records, problems


def _check_feed(resp: httpx.Response) -> None:
    try:
        ET.fromstring(resp.content)
    except ET.ParseError as e:
        raise RetryableBody(f"malformed Atom ({e})") from e


def normalize_ids(ids: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated ids; InvalidInput naming every bad one."""
    good: list[str] = []
    bad: list[str] = []
    for raw in ids:
        try:
            good.append(normalize_arxiv_id(raw))
        except InvalidRecord:
            bad.append(raw)
    if bad:
        raise InvalidInput(f"invalid arXiv id(s): {', '.join(map(repr, bad))}")
    return list(dict.fromkeys(good))


def fetch_by_ids(
    settings: Settings,
    ids: Iterable[str],
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PaperRecord]:
    """Records for ``ids`` from the arXiv API (unknown ids are simply absent).

    Raises InvalidInput for a malformed id, UpstreamError when arXiv fails after retries.
    """
    wanted = normalize_ids(ids)
    out: list[PaperRecord] = []
    with PoliteClient(settings, client=client, sleep=sleep) as http:
        for i in range(0, len(wanted), MAX_IDS_PER_REQUEST):
            chunk = wanted[i : i + MAX_IDS_PER_REQUEST]
            params = {"search_query": "", "id_list": ",".join(chunk), "start": "0", "max_results": "100"}
            resp = http.get(settings.arxiv_api_url, params, check=_check_feed)
            if resp.status_code == 400:
                parse_feed(resp.content)  # raises InvalidInput with the API's message
                raise InvalidInput(f"arXiv API rejected the request for {', '.join(chunk)}")
            if resp.status_code != 200:
                raise UpstreamError(f"arXiv API answered HTTP {resp.status_code}")
            records, _ = parse_feed(resp.content)
            out.extend(r for r in records if r.id in set(chunk))
    return out


def ingest_ids(
    settings: Settings,
    ids: Iterable[str],
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    db: Engine | None = None,
) -> IngestReport:
    """Fetch ``ids`` and upsert them (ingest_runs kind ``api``); bad / unknown ids are skipped."""
    db = db or open_database(settings)
    ids = list(ids)
    report = IngestReport(kind="api", source=" ".join(ids)[:500])
    t0 = time.perf_counter()
    with recorded_run(db, report):
        valid: list[str] = []
        for raw in ids:
            report.records += 1
            try:
                valid.append(normalize_arxiv_id(raw))
            except InvalidRecord as e:
                report.skip(str(e))
        valid = list(dict.fromkeys(valid))
        report.records -= len(ids) - len(valid) - report.skipped  # duplicates are not records
        if valid:
            records = fetch_by_ids(settings, valid, client=client, sleep=sleep)
            found = {r.id for r in records}
            for pid in valid:
                if pid not in found:
                    report.skip(f"{pid}: not found on arXiv")
            report.add(upsert_papers(db, records))
        report.seconds = time.perf_counter() - t0
    return report
