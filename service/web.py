"""Server-rendered web pages (Jinja2): search, paper, daily lists, keyword and similar tools,
interests. Plain HTML forms and links carry every state in the URL, so pages are shareable
and work without JavaScript; static/app.js only adds the browser-side extras (❤ interests,
copy buttons, TeX rendering).

Escaping: Jinja autoescape is on for every template; the only values marked ``|safe``
are the engine's ``title_html``/``snippet_html``, which it escapes before adding <mark>.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from indexer.errors import DenseUnavailable, IndexUnavailable, InvalidInput, NotFound, PapersError
from indexer.search.hits import SearchResponse
from indexer.search.search_request import (
    DAILY_PAGE_SIZE,
    DAILY_SORTS,
    DEFAULT_MODE,
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    MAX_PAGE_SIZE,
    MODES,
    RESULT_WINDOW,
    SORTS,
    SearchRequest,
)
from indexer.text.keywords import Keyword, interest_profile
from indexer.text.tex_accents import paper_for_display
from service.api import parse_prefs
from service.bibtex import bibtex_entry
from service.deps import EngineDep, get_settings
from service.ondemand import paper_or_fetch
from service.schemas import MAX_CATEXPR_CHARS, MAX_PREFS_CHARS, MAX_QUERY_CHARS, MAX_TEXT_CHARS

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
PAGE_SIZES = (10, 20, 50, 100)
HOME_LISTS = 3  # categories with a "latest day" list on the home page
HOME_LIST_SIZE = 5

router = APIRouter(include_in_schema=False)


def _static_version() -> str:
    """Cache-busting token: changes whenever a CSS/JS file changes."""
    h = hashlib.sha1()
    for name in ("style.css", "app.js"):
        p = STATIC_DIR / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:10]


def _qs(params: dict[str, Any], **changes: Any) -> str:
    """Query string of ``params`` with ``changes`` applied; empty values dropped."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True, default_for_string=True))
env.globals["qs"] = _qs
env.globals["static_version"] = _static_version()


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("q", "")
    ctx.setdefault("nav", "")
    html = env.get_template(name).render(request=request, **ctx)
    return HTMLResponse(html, status_code=status)


def render_error(request: Request, status: int, code: str, message: str) -> Response:
    """Error page for browsers (installed by service.app as the HTML side of service.errors)."""
    titles = {404: "Not found", 422: "That did not work", 429: "Slow down", 503: "Not ready yet"}
    return render(request, "error.html", status=status, status_code=status, code=code, message=message, title=titles.get(status, "Something went wrong"))


# -- forms --------------------------------------------------------------------------------


@dataclass
class SearchForm:
    """Search parameters as the web page reads them: lenient, with messages instead of 422s."""

    q: str = ""
    mode: str = DEFAULT_MODE
    cat: str = ""
    date_from: date | None = None
    date_to: date | None = None
    sort: str = DEFAULT_SORT
    prefs: str = ""
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Any) -> SearchForm:
        f = cls()
        f.q = (params.get("q") or "").strip()
        f.cat = (params.get("cat") or "").strip()
        f.prefs = params.get("prefs") or ""
        if len(f.q) > MAX_QUERY_CHARS:
            f.errors.append(f"The query is over {MAX_QUERY_CHARS} characters.")
            f.q = f.q[:MAX_QUERY_CHARS]
        if len(f.cat) > MAX_CATEXPR_CHARS:
            f.errors.append(f"The category expression is over {MAX_CATEXPR_CHARS} characters.")
            f.cat = ""
        if len(f.prefs) > MAX_PREFS_CHARS:
            f.prefs = f.prefs[:MAX_PREFS_CHARS]
        f.mode = _choice(params, "mode", _default_first(MODES, DEFAULT_MODE), f.errors)
        f.sort = _choice(params, "sort", _default_first(SORTS, DEFAULT_SORT), f.errors)
        for attr, key in (("date_from", "from"), ("date_to", "to")):
            raw = (params.get(key) or "").strip()
            if raw:
                try:
                    setattr(f, attr, date.fromisoformat(raw))
                except ValueError:
                    f.errors.append(f"'{key}' must be a date like 2024-05-31.")
        f.page = _int(params.get("page"), 1, 1, RESULT_WINDOW)
        f.size = _int(params.get("size"), DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        if f.page * f.size > RESULT_WINDOW:
            f.errors.append(f"Only the first {RESULT_WINDOW} results can be shown.")
            f.page = max(1, RESULT_WINDOW // f.size)
        return f

    @property
    def params(self) -> dict[str, Any]:
        """The URL parameters (the same names as the API)."""
        return {
            "q": self.q,
            "cat": self.cat,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "mode": self.mode if self.mode != DEFAULT_MODE else "",
            "sort": self.sort if self.sort != DEFAULT_SORT else "",
            "prefs": self.prefs if self.sort == "prefs" else "",
            "size": self.size if self.size != DEFAULT_PAGE_SIZE else "",
        }

    def request(self, mode: str | None = None) -> SearchRequest:
        """The engine's request for this form (in ``mode`` instead of the form's when given)."""
        return SearchRequest(
            self.q,
            mode=mode or self.mode,
            cat=self.cat or None,
            date_from=self.date_from,
            date_to=self.date_to,
            sort=self.sort,
            page=self.page,
            size=self.size,
            prefs=parse_prefs(self.prefs) if self.sort == "prefs" else None,
        )

    @property
    def has_filters(self) -> bool:
        return bool(self.cat or self.date_from or self.date_to)


def _default_first(allowed: tuple[str, ...], default: str) -> tuple[str, ...]:
    """``allowed`` with ``default`` first (what :func:`_choice` takes)."""
    return (default, *(a for a in allowed if a != default))


def _choice(params: Any, name: str, allowed: tuple[str, ...], errors: list[str]) -> str:
    """The parameter if it is one of ``allowed`` (the first is the default); an unknown value
    is reported (the page answers 422, as the API does) and the default used."""
    value = params.get(name) or allowed[0]
    if value in allowed:
        return value
    errors.append(f"'{name}' must be one of {', '.join(allowed)} (not {value[:40]!r}); showing {allowed[0]}.")
    return allowed[0]


def _int(raw: Any, default: int, lo: int, hi: int) -> int:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return default
    return min(max(value, lo), hi)


def _pager(page: int, size: int, total: int) -> dict[str, Any]:
    last = max(1, min((total + size - 1) // size, RESULT_WINDOW // size))
    window = range(max(1, page - 2), min(last, page + 2) + 1)
    return {"page": page, "last": last, "pages": list(window), "prev": page - 1 if page > 1 else None, "next": page + 1 if page < last else None}


# -- pages ----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    categories: list[tuple[str, int]] = []
    lists: list[tuple[str, Any]] = []
    stats: dict[str, Any] = {}
    problem = ""
    try:
        engine = request.app.state.engines.get()
        if not engine.ready:
            raise IndexUnavailable("no index has been built yet: run `papers build`")
        categories = engine.categories()
        stats = engine.stats()
        for cat, _count in categories[:HOME_LISTS]:
            lst = engine.daily(cat, page=1, size=HOME_LIST_SIZE)
            if lst.hits:
                lists.append((cat, lst))
    except PapersError as e:
        problem = e.message
    return render(request, "home.html", nav="home", categories=categories, lists=lists, stats=stats, problem=problem)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, engine: EngineDep) -> Response:
    form = SearchForm.from_params(request.query_params)
    res: SearchResponse | None = None
    status = 200
    errors = list(form.errors)
    build = None
    if not errors and (form.q or form.has_filters):
        try:
            try:
                res = engine.search(form.request())
            except DenseUnavailable as e:  # the page shows keyword results and says why
                res = engine.search(form.request("bm25"))
                res.fallback = e.message
        except InvalidInput as e:
            errors.append(e.message)
        if res is not None and getattr(res, "fallback", None):
            build = engine.embedding_build()  # its progress bar beside the explanation
        if res is not None and getattr(res, "arxiv_id", None):
            return RedirectResponse(f"/paper/{res.arxiv_id}", status_code=303)
    if errors:
        status = 422
    pager = _pager(form.page, form.size, res.total) if res is not None else None
    return render(
        request,
        "search.html",
        status=status,
        nav="search",
        q=form.q,
        form=form,
        res=res,
        errors=errors,
        pager=pager,
        build=build,
        page_sizes=PAGE_SIZES,
        title=f"{form.q} — search" if form.q else "Search",
    )


@router.get("/paper/{paper_id:path}", response_class=HTMLResponse)
def paper_page(request: Request, paper_id: str, engine: EngineDep) -> Response:
    paper = paper_or_fetch(engine, get_settings(request), paper_id)
    if paper["id"] != paper_id:  # canonical URL: no version, no "arXiv:" prefix
        return RedirectResponse(f"/paper/{paper['id']}", status_code=301)
    keywords: list[Keyword] = []
    related: list[Any] = []
    related_problem = ""
    try:
        keywords = engine.paper_keywords(paper["id"])
        related = engine.related(paper["id"], k=10)
    except PapersError as e:
        related_problem = e.message
    interest = interest_profile(keywords[:10])  # one entry per term, with its key (app.js merges by it)
    shown = paper_for_display(paper)  # P\'etritis -> Pétritis; BibTeX keeps the TeX
    return render(
        request,
        "paper.html",
        nav="paper",
        paper=shown,
        keywords=keywords,
        interest=interest,
        related=related,
        related_problem=related_problem,
        bibtex=bibtex_entry(paper),
        title=shown["title"],
    )


@router.get("/arxiv/{target:path}")
def arxiv_alias(request: Request, target: str, engine: EngineDep) -> Response:
    """Cool Papers' URLs: ``/arxiv/<id>`` is a paper, ``/arxiv/<category expression>`` a daily list."""
    raw = urlencode(list(request.query_params.multi_items()))
    query = f"?{raw}" if raw else ""
    try:
        pid = engine.normalize_id(target)
    except InvalidInput:
        return RedirectResponse(f"/daily/{target}{query}", status_code=301)
    return RedirectResponse(f"/paper/{pid}", status_code=301)


@router.get("/daily", response_class=HTMLResponse)
def daily_index(request: Request) -> Response:
    return RedirectResponse("/#categories", status_code=302)


@router.get("/daily/{catexpr}", response_class=HTMLResponse)
def daily_page(request: Request, catexpr: str, engine: EngineDep) -> Response:
    params = request.query_params
    errors: list[str] = []
    day = None
    raw_day = (params.get("date") or "").strip()
    if raw_day:
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            errors.append("'date' must be a date like 2024-05-31; showing the latest day.")
    sort = _choice(params, "sort", DAILY_SORTS, errors)
    prefs = (params.get("prefs") or "")[:MAX_PREFS_CHARS]
    size = _int(params.get("size"), DAILY_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page = _int(params.get("page"), 1, 1, max(1, RESULT_WINDOW // size))
    if len(catexpr) > MAX_CATEXPR_CHARS:
        raise InvalidInput(f"the category expression is over {MAX_CATEXPR_CHARS} characters")
    lst = engine.daily(catexpr, day=day, page=page, size=size, prefs=parse_prefs(prefs) if sort == "prefs" else None)
    expr = getattr(lst, "expr", "") or catexpr
    base = {"date": lst.day.isoformat() if lst.day else "", "sort": sort if sort == "prefs" else "", "prefs": prefs if sort == "prefs" else "", "size": size if size != DAILY_PAGE_SIZE else ""}
    return render(
        request,
        "daily.html",
        status=422 if errors else 200,
        nav="daily",
        expr=expr,
        lst=lst,
        errors=errors,
        sort=sort,
        base=base,
        pager=_pager(page, size, lst.total),
        title=f"{expr} — {lst.day.isoformat()}" if lst.day else expr,
    )


async def _form_text(request: Request) -> tuple[str, int, list[str]]:
    form = await request.form()
    text = str(form.get("text") or "")
    errors = []
    if len(text) > MAX_TEXT_CHARS:
        errors.append(f"The text is over {MAX_TEXT_CHARS:,} characters.")
        text = text[:MAX_TEXT_CHARS]
    if not text.strip():
        errors.append("Paste some text first.")
    k = _int(form.get("k"), 0, 0, 50)
    return text, k, errors


@router.get("/keywords", response_class=HTMLResponse)
def keywords_page(request: Request) -> Response:
    return render(request, "keywords.html", nav="keywords", text="", k=15, result=None, errors=[], title="Keyword extractor")


@router.post("/keywords", response_class=HTMLResponse)
async def keywords_submit(request: Request, engine: EngineDep) -> Response:
    text, k, errors = await _form_text(request)
    k = k or 15
    result = None
    if not errors:
        try:
            result = await run_in_threadpool(engine.keywords, text, k)
        except InvalidInput as e:
            errors.append(e.message)
    max_w = max((float(r["weight"]) for r in result or []), default=1.0) or 1.0
    return render(request, "keywords.html", status=422 if errors else 200, nav="keywords", text=text, k=k, result=result, max_w=max_w, errors=errors, title="Keyword extractor")


@router.get("/similar", response_class=HTMLResponse)
def similar_page(request: Request) -> Response:
    return render(request, "similar.html", nav="similar", text="", hits=None, errors=[], title="Similar papers")


@router.post("/similar", response_class=HTMLResponse)
async def similar_submit(request: Request, engine: EngineDep) -> Response:
    text, k, errors = await _form_text(request)
    hits = None
    if not errors:
        try:
            hits = await run_in_threadpool(engine.similar_text, text, k or 20)
        except InvalidInput as e:
            errors.append(e.message)
    return render(request, "similar.html", status=422 if errors else 200, nav="similar", text=text, hits=hits, errors=errors, title="Similar papers")


@router.get("/interests", response_class=HTMLResponse)
def interests_page(request: Request) -> Response:
    return render(request, "interests.html", nav="interests", title="Your interests")


@router.get("/help", response_class=HTMLResponse)
def help_page(request: Request) -> Response:
    return render(request, "help.html", nav="help", title="How to search")


__all__ = ["router", "render_error", "NotFound"]
