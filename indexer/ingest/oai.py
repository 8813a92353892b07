"""OAI-PMH ``ListRecords`` harvesting from arXiv (``arXiv`` and ``arXivRaw`` formats).

Resumable by design: each page's records are upserted in the SAME transaction that
stores the page's resumption token, window and cursor in ``harvest_state``. A killed
run therefore left either the whole page and its token, or neither; the next run with
the same window continues from the stored token. ``last_datestamp`` moves forward only
when a window is complete (the nightly job harvests from it minus one day), and
``window_done`` is false from a window's first request until its last page, so a window
that a killed run started (even before its first page) is known to be owed: the nightly
job finishes it before harvesting its own window (:func:`owed_window`).

Protocol points handled here: a resumption token is sent alone (``verb`` +
``resumptionToken``); ``noRecordsMatch`` means nothing new (not a failure);
``badResumptionToken`` is a clear error (a stale stored token is dropped and the window
restarted once); deleted records (``<header status="deleted">``) mark papers withdrawn.
A malformed page is re-requested; if it stays malformed, its readable records are kept,
the rest are skipped and counted, and the harvest continues when the token is readable.
"""

from __future__ import annotations

import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, select

from indexer.errors import InvalidInput, UpstreamError
from indexer.ingest.http import PoliteClient, RetryableBody
from indexer.ingest.records import InvalidRecord, PaperRecord, clean_text
from indexer.ingest.runs import IngestReport, recorded_run
from indexer.ingest.store import dialect_insert, upsert_batch
from indexer.models import HarvestState
from indexer.runs import now
from indexer.settings import Settings

log = logging.getLogger(__name__)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ARXIV_NS = "http://arxiv.org/OAI/arXiv/"
ARXIVRAW_NS = "http://arxiv.org/OAI/arXivRaw/"
METADATA_PREFIXES = ("arXiv", "arXivRaw")
OVERLAP = timedelta(days=1)

_O = f"{{{OAI_NS}}}"
_RECORD_RE = re.compile(rb"<record>.*?</record>", re.S)
_TOKEN_RE = re.compile(rb"<resumptionToken([^>]*)>([^<]*)</resumptionToken>")
_TOKEN_EMPTY_RE = re.compile(rb"<resumptionToken[^>]*/>")
_ATTR_RE = re.compile(rb'(\w+)="([^"]*)"')
_IDENT_RE = re.compile(rb"<identifier>([^<]+)</identifier>")
_AUTHOR_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")


def harvest_source(set_spec: str) -> str:
    """The harvest_state key of an OAI-PMH set (``oai:cs``)."""
    return f"oai:{set_spec}"


# -- parsing ------------------------------------------------------------------------------


@dataclass
class OaiPage:
    """One parsed ListRecords response."""

    records: list[PaperRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<id>: reason" of unusable records
    token: str | None = None
    cursor: int | None = None
    complete_list_size: int | None = None
    error_code: str | None = None
    error_message: str = ""
    salvaged: bool = False  # the XML was malformed; records were recovered one by one


def _text(el: ET.Element | None, path: str, ns: str) -> str:
    if el is None:
        return ""
    found = el.find(f"{{{ns}}}{path}")
    return (found.text or "") if found is not None else ""


def _rfc822_day(value: str) -> date:
    try:
        return parsedate_to_datetime(value.strip()).date()
    except (TypeError, ValueError, IndexError) as e:
        raise InvalidRecord(f"bad version date {value!r}") from e


def _iso_day(value: str) -> date | None:
    value = value.strip()
    return date.fromisoformat(value[:10]) if value else None


def _parse_arxiv(md: ET.Element, ident: str, datestamp: date | None) -> PaperRecord:
    ns = ARXIV_NS
    authors = []
    for a in md.iterfind(f"{{{ns}}}authors/{{{ns}}}author"):
        parts = [_text(a, "forenames", ns), _text(a, "keyname", ns), _text(a, "suffix", ns)]
        authors.append(" ".join(p.strip() for p in parts if p.strip()))
    created = _iso_day(_text(md, "created", ns))
    updated = _iso_day(_text(md, "updated", ns))
    if created is None:
        raise InvalidRecord(f"{ident}: no created date")
    return PaperRecord(
        id=_text(md, "id", ns) or ident,
        title=_text(md, "title", ns),
        abstract=_text(md, "abstract", ns),
        authors=authors,
        categories=_text(md, "categories", ns).split(),
        published=created,
        updated=updated,
        # the arXiv format has no version list: at least 2 when there is an update
        versions=2 if updated and updated != created else 1,
        doi=clean_text(_text(md, "doi", ns)) or None,
        journal_ref=clean_text(_text(md, "journal-ref", ns)) or None,
        comments=clean_text(_text(md, "comments", ns)) or None,
        license=clean_text(_text(md, "license", ns)) or None,
        datestamp=datestamp,
    )


def _parse_arxiv_raw(md: ET.Element, ident: str, datestamp: date | None) -> PaperRecord:
    ns = ARXIVRAW_NS
    dates = [_rfc822_day(_text(v, "date", ns)) for v in md.iterfind(f"{{{ns}}}version")]
    if not dates:
        raise InvalidRecord(f"{ident}: no version dates")
    authors = [a for a in _AUTHOR_SPLIT.split(clean_text(_text(md, "authors", ns))) if a.strip()]
    return PaperRecord(
        id=_text(md, "id", ns) or ident,
        title=_text(md, "title", ns),
        abstract=_text(md, "abstract", ns),
        authors=authors,
        categories=_text(md, "categories", ns).split(),
        published=dates[0],
        updated=dates[-1] if len(dates) > 1 else None,
        versions=len(dates),
        doi=clean_text(_text(md, "doi", ns)) or None,
        journal_ref=clean_text(_text(md, "journal-ref", ns)) or None,
        comments=clean_text(_text(md, "comments", ns)) or None,
        license=clean_text(_text(md, "license", ns)) or None,
        datestamp=datestamp,
    )


def parse_record(rec: ET.Element) -> PaperRecord:
    """One ``<record>`` element → validated PaperRecord (raises InvalidRecord)."""
    header = rec.find(f"{_O}header")
    if header is None:
        raise InvalidRecord("record without header")
    ident = (header.findtext(f"{_O}identifier") or "").strip()
    try:
        datestamp = _iso_day(header.findtext(f"{_O}datestamp") or "")
    except ValueError as e:
        raise InvalidRecord(f"{ident}: bad datestamp") from e
    if header.get("status") == "deleted":
        return PaperRecord(
            id=ident, title="", abstract="", authors=[], categories=[],
            published=datestamp or date(1991, 1, 1), datestamp=datestamp, withdrawn=True,
        ).validate()
    md = rec.find(f"{_O}metadata")
    if md is None or len(md) == 0:
        raise InvalidRecord(f"{ident}: record without metadata")
    body = md[0]
    try:
        if body.tag == f"{{{ARXIV_NS}}}arXiv":
            paper = _parse_arxiv(body, ident, datestamp)
        elif body.tag == f"{{{ARXIVRAW_NS}}}arXivRaw":
            paper = _parse_arxiv_raw(body, ident, datestamp)
        else:
            raise InvalidRecord(f"{ident}: unsupported metadata format {body.tag}")
    except ValueError as e:
        if isinstance(e, InvalidRecord):
            raise
        raise InvalidRecord(f"{ident}: {e}") from e
    return paper.validate()


def _label(rec: ET.Element) -> str:
    ident = rec.findtext(f"{_O}header/{_O}identifier") or "?"
    return ident.strip().removeprefix("oai:arXiv.org:")


def _token_from(el: ET.Element | None, page: OaiPage) -> None:
    if el is None:
        return
    page.token = (el.text or "").strip() or None
    for name, attr in (("cursor", "cursor"), ("complete_list_size", "completeListSize")):
        value = el.get(attr)
        if value and value.isdigit():
            setattr(page, name, int(value))


def parse_page(body: bytes) -> OaiPage:
    """Parse a ListRecords response; raises ET.ParseError when the XML is malformed."""
    root = ET.fromstring(body)
    page = OaiPage()
    err = root.find(f"{_O}error")
    if err is not None:
        page.error_code = err.get("code") or "unknown"
        page.error_message = clean_text(err.text)
        return page
    lr = root.find(f"{_O}ListRecords")
    if lr is None:
        raise ET.ParseError("no ListRecords element")
    for rec in lr.iterfind(f"{_O}record"):
        try:
            page.records.append(parse_record(rec))
        except InvalidRecord as e:
            msg = str(e)
            label = _label(rec)
            page.skipped.append(msg if label in msg else f"{label}: {msg}")
    _token_from(lr.find(f"{_O}resumptionToken"), page)
    return page


def salvage_page(body: bytes) -> OaiPage:
    """Recover what a malformed page still holds: each complete <record>, the token."""
    page = OaiPage(salvaged=True)
    for m in _RECORD_RE.finditer(body):
        chunk = m.group(0)
        try:
            rec = ET.fromstring(b'<OAI-PMH xmlns="' + OAI_NS.encode() + b'">' + chunk + b"</OAI-PMH>")[0]
            page.records.append(parse_record(rec))
        except (ET.ParseError, InvalidRecord, IndexError) as e:
            ident = _IDENT_RE.search(chunk)
            label = ident.group(1).decode("utf-8", "replace").removeprefix("oai:arXiv.org:") if ident else "?"
            page.skipped.append(f"{label}: unreadable record ({type(e).__name__})")
    tail = body
    for m in _RECORD_RE.finditer(body):
        tail = body[m.end() :]
    # a record cut off mid-way (truncated body) is counted too
    cut = tail.find(b"<record>")
    if cut >= 0:
        ident = _IDENT_RE.search(tail[cut:])
        label = ident.group(1).decode("utf-8", "replace").removeprefix("oai:arXiv.org:") if ident else "?"
        page.skipped.append(f"{label}: record cut off in a malformed page")
    tok = _TOKEN_RE.search(tail)
    if tok:
        page.token = tok.group(2).decode("utf-8", "replace").strip() or None
        attrs = dict(_ATTR_RE.findall(tok.group(1)))
        if attrs.get(b"cursor", b"").isdigit():
            page.cursor = int(attrs[b"cursor"])
    return page


def _check_xml(resp: httpx.Response) -> None:
    try:
        ET.fromstring(resp.content)
    except ET.ParseError as e:
        raise RetryableBody(f"malformed XML ({e})") from e


def _page_is_complete(body: bytes) -> bool:
    """Did the malformed page end properly (so 'no token' really means the last page)?"""
    return body.rstrip().endswith(b"</OAI-PMH>") and (
        _TOKEN_RE.search(body) is not None or _TOKEN_EMPTY_RE.search(body) is not None or b"</ListRecords>" in body
    )


# -- harvesting ---------------------------------------------------------------------------


@dataclass
class HarvestReport(IngestReport):
    """What :func:`harvest_oai` did (counts from IngestReport plus the harvest specifics)."""

    set_spec: str = ""
    from_date: date | None = None
    until_date: date | None = None
    metadata_prefix: str = "arXiv"
    pages: int = 0
    resumed: bool = False
    complete: bool = False
    nothing_new: bool = False
    last_datestamp: date | None = None
    requests: int = 0
    retries: int = 0

    def summary(self) -> str:
        window = f"{self.from_date or '…'}..{self.until_date or '…'}"
        state = "complete" if self.complete else "incomplete"
        return (
            f"oai set={self.set_spec or '*'} {window}: {self.records} records in {self.pages} pages "
            f"({state}{', resumed' if self.resumed else ''}); {super(IngestReport, self).summary()}"
        )

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d.update(
            set_spec=self.set_spec, from_date=_iso(self.from_date), until_date=_iso(self.until_date),
            metadata_prefix=self.metadata_prefix, pages=self.pages, resumed=self.resumed,
            complete=self.complete, nothing_new=self.nothing_new, last_datestamp=_iso(self.last_datestamp),
            requests=self.requests, retries=self.retries,
        )
        return d


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def load_state(db: Engine, source: str) -> dict[str, Any] | None:
    with db.connect() as conn:
        row = conn.execute(select(HarvestState).where(HarvestState.source == source)).mappings().first()
    return dict(row) if row else None


def last_datestamp(db: Engine, set_spec: str) -> date | None:
    """The newest datestamp a finished window of ``set_spec`` reached. Reads that one
    column, not the row (:func:`load_state`): a dry run reads it before the first real
    run has migrated an older schema."""
    with db.connect() as conn:
        return conn.execute(
            select(HarvestState.last_datestamp).where(HarvestState.source == harvest_source(set_spec))
        ).scalar_one_or_none()


def save_state(conn: Connection, source: str, **values: Any) -> None:
    """Upsert the harvest_state row of ``source`` (inside the caller's transaction)."""
    values = dict(values, source=source, updated_at=now())
    stmt = dialect_insert(conn, HarvestState.__table__).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[HarvestState.__table__.c.source],
        set_={k: stmt.excluded[k] for k in values if k != "source"},
    )
    conn.execute(stmt)


def owed_window(db: Engine, source: str) -> tuple[date | None, date | None] | None:
    """The window a previous harvest of ``source`` started and did not finish (killed,
    disk full, upstream failure, deadline), or None when every started window is done."""
    state = load_state(db, source)
    if not state or (state.get("window_done", True) and not state.get("resumption_token")):
        return None
    return state.get("window_from"), state.get("window_until")


def harvest_oai(
    settings: Settings,
    db: Engine,
    set_spec: str | None = None,
    from_date: date | None = None,
    until_date: date | None = None,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    metadata_prefix: str = "arXiv",
    max_pages: int | None = None,
    on_page: Callable[[HarvestReport], None] | None = None,
) -> HarvestReport:
    """Harvest ``set_spec`` records with datestamps in [from_date, until_date] into the DB.

    ``set_spec`` None → ``settings.oai_set``; "" → every set. ``from_date`` None → the
    stored ``last_datestamp`` minus one day (everything on a first run). A stored token
    for the same window is resumed. Recorded in ingest_runs (kind ``oai``).
    """
    if metadata_prefix not in METADATA_PREFIXES:
        raise InvalidInput(f"metadata prefix must be one of {', '.join(METADATA_PREFIXES)}")
    if from_date and until_date and from_date > until_date:
        raise InvalidInput(f"--from {from_date} is after --until {until_date}")
    set_spec = settings.oai_set if set_spec is None else set_spec
    source = harvest_source(set_spec)
    state = load_state(db, source) or {}
    if from_date is None and state.get("last_datestamp"):
        from_date = state["last_datestamp"] - OVERLAP
    report = HarvestReport(
        kind="oai", source=f"{source} {_iso(from_date) or '…'}..{_iso(until_date) or '…'}",
        set_spec=set_spec, from_date=from_date, until_date=until_date, metadata_prefix=metadata_prefix,
    )
    t0 = time.perf_counter()
    deadline = settings.harvest_deadline or None
    with PoliteClient(settings, client=client, sleep=sleep, deadline_s=deadline) as http, recorded_run(db, report):
        try:
            _harvest_pages(settings, db, http, report, source, state, max_pages, on_page)
        finally:
            report.requests, report.retries = http.requests, http.retried
            report.seconds = time.perf_counter() - t0
    return report


def _fresh_params(report: HarvestReport) -> dict[str, str]:
    params = {"verb": "ListRecords", "metadataPrefix": report.metadata_prefix}
    if report.from_date:
        params["from"] = report.from_date.isoformat()
    if report.until_date:
        params["until"] = report.until_date.isoformat()
    if report.set_spec:
        params["set"] = report.set_spec
    return params


def _harvest_pages(
    settings: Settings, db: Engine, http: PoliteClient, report: HarvestReport, source: str,
    state: dict[str, Any], max_pages: int | None, on_page: Callable[[HarvestReport], None] | None,
) -> None:
    window = {"window_from": report.from_date, "window_until": report.until_date}
    params = _first_params(db, report, source, state, window)
    from_stored = report.resumed
    newest: date | None = None
    while True:
        page = _fetch_page(settings, db, http, params, report, source, window)
        if page.error_code == "noRecordsMatch":
            report.nothing_new = True
            _complete_window(db, source, report, window, newest)
            return
        if page.error_code == "badResumptionToken" and from_stored:
            log.warning("stored resumption token for %s was rejected; restarting the window", source)
            from_stored = False
            report.resumed = False
            params = _fresh_params(report)
            _start_window(db, source, window)
            continue
        if page.error_code:
            raise UpstreamError(f"OAI-PMH error {page.error_code}: {page.error_message}")
        from_stored = False
        report.pages += 1
        newest = _newest(page.records, newest)
        _commit_page(db, source, report, page, window)
        if on_page is not None:
            on_page(report)
        if not page.token:
            _complete_window(db, source, report, window, newest)
            return
        if max_pages is not None and report.pages >= max_pages:
            return
        params = {"verb": "ListRecords", "resumptionToken": page.token}


def _first_params(db: Engine, report: HarvestReport, source: str, state: dict[str, Any],
                  window: dict[str, Any]) -> dict[str, str]:
    """The first request: the stored token when it belongs to this very window (a killed
    run's), else the window from its start (recorded as started)."""
    stored_token = state.get("resumption_token")
    same_window = state.get("window_from") == report.from_date and state.get("window_until") == report.until_date
    if stored_token and same_window:
        report.resumed = True
        log.info("resuming %s at cursor %s", source, state.get("cursor"))
        return {"verb": "ListRecords", "resumptionToken": stored_token}
    _start_window(db, source, window)
    return _fresh_params(report)


def _fetch_page(settings: Settings, db: Engine, http: PoliteClient, params: dict[str, str],
                report: HarvestReport, source: str, window: dict[str, Any]) -> OaiPage:
    """One page, parsed; a page still malformed after the client's retries is salvaged
    (its readable records kept) and, when its token is unreadable, ends the harvest."""
    resp = http.get(settings.arxiv_oai_url, params, check=_check_xml)
    if resp.status_code != 200:
        raise UpstreamError(f"OAI-PMH answered HTTP {resp.status_code} for {params.get('verb')}")
    body = resp.content
    try:
        return parse_page(body)
    except ET.ParseError:
        page = salvage_page(body)
        if page.token is None and not _page_is_complete(body):
            _commit_page(db, source, report, page, window, keep_token=True)
            raise UpstreamError(
                "OAI-PMH page stayed malformed after retries and its resumption token is unreadable; "
                "its readable records were kept, re-run to continue from the last good page"
            ) from None
        return page


def _newest(records: list[PaperRecord], newest: date | None) -> date | None:
    """The newest datestamp among ``records`` and ``newest``."""
    for rec in records:
        if rec.datestamp and (newest is None or rec.datestamp > newest):
            newest = rec.datestamp
    return newest


def _commit_page(
    db: Engine, source: str, report: HarvestReport, page: OaiPage, window: dict[str, Any],
    *, keep_token: bool = False,
) -> None:
    """Upsert a page's records and store its token in ONE transaction."""
    report.records += len(page.records) + len(page.skipped)
    for reason in page.skipped:
        report.skip(reason)
    with db.begin() as conn:
        report.add(upsert_batch(conn, page.records, validated=True))
        if not keep_token and page.token:
            save_state(conn, source, resumption_token=page.token, cursor=page.cursor or 0, window_done=False, **window)


def _start_window(db: Engine, source: str, window: dict[str, Any]) -> None:
    """Record, before the first request, that this window is owed (a run killed before its
    first page committed leaves no token; the next nightly still finishes the window)."""
    with db.begin() as conn:
        save_state(conn, source, resumption_token=None, cursor=0, window_done=False, **window)


def _complete_window(
    db: Engine, source: str, report: HarvestReport, window: dict[str, Any], newest: date | None
) -> None:
    """The window is done: drop the token, move last_datestamp forward (never back)."""
    state = load_state(db, source) or {}
    candidates = [d for d in (state.get("last_datestamp"), report.until_date or newest) if d]
    last = max(candidates) if candidates else None
    with db.begin() as conn:
        save_state(conn, source, resumption_token=None, cursor=0, last_datestamp=last, window_done=True, **window)
    report.complete = True
    report.last_datestamp = last
