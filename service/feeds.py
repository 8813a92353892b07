"""Atom feeds: a category expression's daily list and a saved search, for feed readers.

Built with ElementTree (it escapes text); characters XML 1.0 forbids (control
characters that arXiv metadata or a hostile query may contain) are dropped first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from service.deps import EngineDep
from service.schemas import ERROR_RESPONSES, MAX_CATEXPR_CHARS, MAX_QUERY_CHARS

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _INVALID_XML.sub("", str(text or ""))


def _stamp(d: Any) -> str:
    if isinstance(d, datetime):
        dt = d if d.tzinfo else d.replace(tzinfo=UTC)
    elif isinstance(d, date):
        dt = datetime.combine(d, time(0, 0), tzinfo=UTC)
    elif d:
        try:
            dt = datetime.combine(date.fromisoformat(str(d)[:10]), time(0, 0), tzinfo=UTC)
        except ValueError:
            dt = datetime(1970, 1, 1, tzinfo=UTC)
    else:
        dt = datetime(1970, 1, 1, tzinfo=UTC)
    return dt.isoformat().replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _clean(text)
    return el


def atom_feed(*, title: str, feed_id: str, self_url: str, alt_url: str, base_url: str, hits: Iterable[Any]) -> bytes:
    """One Atom document; each hit is an entry linking to our paper page and arXiv."""
    hits = list(hits)
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(feed, "title", title)
    _sub(feed, "id", feed_id)
    _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _sub(feed, "link", rel="alternate", href=alt_url, type="text/html")
    newest = max((h.updated or h.published for h in hits), default=None)
    _sub(feed, "updated", _stamp(newest or datetime.now(UTC)))
    _sub(feed, "generator", "papers")
    for h in hits:
        entry = _sub(feed, "entry")
        _sub(entry, "title", h.title)
        _sub(entry, "id", f"https://arxiv.org/abs/{h.id}")
        _sub(entry, "link", rel="alternate", href=f"{base_url}/paper/{h.id}", type="text/html")
        _sub(entry, "link", rel="related", href=f"https://arxiv.org/abs/{h.id}", title="arXiv")
        _sub(entry, "link", rel="related", href=f"https://arxiv.org/pdf/{h.id}", title="pdf", type="application/pdf")
        _sub(entry, "published", _stamp(h.published))
        _sub(entry, "updated", _stamp(h.updated or h.published))
        for name in h.authors[:50]:
            author = _sub(entry, "author")
            _sub(author, "name", name)
        for cat in h.categories:
            _sub(entry, "category", term=cat)
        summary = getattr(h, "abstract", "") or ""
        _sub(entry, "summary", summary)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)


# -- routes ------------------------------------------------------------------------------

router = APIRouter(tags=["feeds"])
FEED_SIZE = 50
_ATOM_200: dict[int | str, dict[str, Any]] = {200: {"content": {"application/atom+xml": {"schema": {"type": "string"}}}, "description": "An Atom 1.0 feed"}}


def _base(request: Request) -> str:
    """The service's public base URL: ``PAPERS_PUBLIC_URL`` when set, so that a client's
    ``Host`` header never ends up in the links of a feed others read (a cache or a feed
    reader shares it); else the request's own base URL."""
    configured = request.app.state.settings.public_url.strip().rstrip("/")
    return configured or str(request.base_url).rstrip("/")


def _url(request: Request, path: str | None = None) -> str:
    """This request's URL rebuilt from parsed parameters (raw bytes may not be UTF-8)."""
    base = _base(request)
    query = urlencode(list(request.query_params.multi_items()))
    return f"{base}{path or request.scope.get('path', '')}" + (f"?{query}" if query else "")


def _atom(body: bytes) -> Response:
    return Response(body, media_type=ATOM_MEDIA_TYPE, headers={"Cache-Control": "public, max-age=600"})


@router.get("/feeds/search.atom", summary="Atom feed of a search (newest first by default)", response_class=Response, responses={**_ATOM_200, **ERROR_RESPONSES})
def search_feed(
    request: Request,
    engine: EngineDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="Search query (same syntax as /api/search)")],
    cat: Annotated[str | None, Query(max_length=MAX_CATEXPR_CHARS, description="Category expression")] = None,
    sort: Annotated[Literal["date", "relevance"], Query(description="Entry order")] = "date",
) -> Response:
    res = engine.search(q, mode="bm25", cat=cat or None, sort=sort, page=1, size=FEED_SIZE)
    base = _base(request)
    self_url = _url(request)
    return _atom(atom_feed(title=f"papers: {q}", feed_id=self_url, self_url=self_url, alt_url=_url(request, "/search"), base_url=base, hits=res.hits))


@router.get("/feeds/{catexpr}.atom", summary="Atom feed of a category expression's daily list", response_class=Response, responses={**_ATOM_200, **ERROR_RESPONSES})
def daily_feed(
    request: Request,
    engine: EngineDep,
    catexpr: Annotated[str, Path(max_length=MAX_CATEXPR_CHARS, description="Category expression, e.g. `cs.AI+cs.LG-cs.CY`")],
    day: Annotated[date | None, Query(alias="date", description="The day, YYYY-MM-DD (default: the latest)")] = None,
) -> Response:
    lst = engine.daily(catexpr, day=day, page=1, size=100)
    base = _base(request)
    expr = getattr(lst, "expr", "") or catexpr
    title = f"papers: {expr}" + (f" — {lst.day.isoformat()}" if lst.day else "")
    return _atom(atom_feed(title=title, feed_id=f"{base}/feeds/{expr}.atom", self_url=_url(request), alt_url=f"{base}/daily/{expr}", base_url=base, hits=lst.hits))
