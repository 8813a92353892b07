"""JSON API routes (``/api/*``, ``/healthz``, ``/readyz``): thin wrappers over the engine.

Parameters are validated here against the limits in :mod:`service.schemas` (so the
OpenAPI schema states them); ranking and errors about meaning (a bad category
expression, an unknown paper) come from :class:`indexer.search.engine.SearchEngine`.
Routes are plain ``def``: the engine is synchronous, FastAPI runs them in a threadpool.

Routes that return hits (search, daily, related, similar, recommend) answer with JSON
serialised here by orjson (:func:`json_ok`) from dicts shaped exactly like their
``response_model`` (a hit by :meth:`indexer.search.hits.Hit.to_dict`, the one hit serialiser),
which still documents them in the OpenAPI schema: validating and
serialising a page of hits through pydantic, in one more threadpool round trip, cost
more than the rest of the request's Python.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from indexer.errors import InvalidQuery
from indexer.search.hits import finite
from indexer.search.search_request import (
    DAILY_PAGE_SIZE,
    DEFAULT_MODE,
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    MAX_PAGE_SIZE,
    RESULT_WINDOW,
    DailySortName,
    ModeName,
    SearchRequest,
    SortName,
    check_window,
)
from indexer.text.tex_accents import paper_for_display
from service.bibtex import bibtex_entry
from service.deps import EngineDep, get_settings
from service.errors import json_error, public_message
from service.ondemand import paper_or_fetch
from service.schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    JSON_ERROR_RESPONSES,
    MAX_CATEXPR_CHARS,
    MAX_PREFS,
    MAX_PREFS_CHARS,
    MAX_QUERY_CHARS,
    CategoriesResponse,
    DailyResponseModel,
    ErrorResponse,
    HealthResponse,
    HitModel,
    HitsResponse,
    KeywordsRequest,
    KeywordsResponse,
    PaperModel,
    ReadyResponse,
    RecommendRequest,
    SearchResponseModel,
    SimilarRequest,
    StatsResponse,
)

try:  # orjson: several times faster than json for a page of hits
    import orjson

    def _dumps(payload: Any) -> bytes:
        return orjson.dumps(payload)
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    def _dumps(payload: Any) -> bytes:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()

router = APIRouter()

Q = Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Query: words, \"phrases\", -exclude, OR, fields ti: au: abs: cat: id:; an arXiv id or URL finds that paper (≤ 1000 characters)")]
Mode = Annotated[ModeName, Query(description="Retrieval: BM25, embeddings, or both fused")]
Cat = Annotated[str | None, Query(max_length=MAX_CATEXPR_CHARS, description="Category expression: `cs.AI+cs.LG-cs.CY` = cs.AI or cs.LG, not cs.CY; an archive like `cs` covers its subcategories")]
DateFrom = Annotated[date | None, Query(alias="from", description="Earliest first-version date, YYYY-MM-DD")]
DateTo = Annotated[date | None, Query(alias="to", description="Latest first-version date, YYYY-MM-DD")]
Sort = Annotated[SortName, Query(description="relevance, date (newest first) or prefs (❤: re-ranked by BM25 against `prefs`)")]
Prefs = Annotated[str, Query(max_length=MAX_PREFS_CHARS, description="Comma-separated preference keywords for sort=prefs (first 20 used)")]
Page = Annotated[int, Query(ge=1, le=RESULT_WINDOW, description="1-based page; page × size ≤ 1000")]
Size = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Results per page (1–100)")]
PaperId = Annotated[str, Path(description="arXiv id, with or without version (`2401.01234`, `2401.01234v2`, `hep-th/9901001`)", max_length=200)]


def parse_prefs(prefs: str | None) -> list[str]:
    """``"graph neural, transformer"`` → ``["graph neural", "transformer"]`` (at most 20)."""
    words = [w.strip() for w in (prefs or "").split(",")]
    seen: list[str] = []
    for w in words:
        if w and w.lower() not in (s.lower() for s in seen):
            seen.append(w[:100])
    return seen[:MAX_PREFS]


def json_ok(payload: dict[str, Any]) -> Response:
    """A 200 JSON response serialised by orjson, bypassing response-model validation.

    Only for payloads built to match the route's ``response_model`` field for field
    (tests/test_schemathesis.py checks responses against the published schema)."""
    return Response(_dumps(payload), media_type="application/json")


def _iso(d: Any) -> str | None:
    return d.isoformat() if d is not None else None


# -- health ---------------------------------------------------------------------------


@router.get("/healthz", response_model=HealthResponse, summary="Liveness: the process is up", tags=["health"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness: an index is loaded (503 otherwise)",
    tags=["health"],
    responses={503: {"model": ErrorResponse, "description": "No index loaded yet"}},
)
def readyz(request: Request) -> Any:
    try:
        engine = request.app.state.engines.get()
    except Exception as e:  # noqa: BLE001 - any failure to open means "not ready"
        return json_error(503, getattr(e, "code", "unavailable"), public_message(e), {"Retry-After": "30"})
    if not engine.ready:
        return json_error(503, "index_unavailable", "no index has been published yet: run `papers build`", {"Retry-After": "30"})
    problem = engine.index_problem()  # the published version opens but cannot answer
    if problem:
        return json_error(503, "index_unavailable", f"{problem}: run `papers build`", {"Retry-After": "30"})
    return {"status": "ready", "index_version": int(engine.version)}


# -- search ---------------------------------------------------------------------------


@router.get(
    "/api/search",
    response_model=SearchResponseModel,
    summary="Search papers",
    description="BM25, dense or hybrid search over titles and abstracts, with category and date filters, "
    "date or ❤-preference ordering, and paging. At most 1000 results are reachable (page × size ≤ 1000). "
    "An empty `q` lists papers matching the filters (needs `cat` or a date).",
    tags=["search"],
    responses=ERROR_RESPONSES,
)
def search(
    engine: EngineDep,
    q: Q = "",
    mode: Mode = DEFAULT_MODE,
    cat: Cat = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    sort: Sort = DEFAULT_SORT,
    prefs: Prefs = "",
    page: Page = 1,
    size: Size = DEFAULT_PAGE_SIZE,
) -> Response:
    check_window(page, size)
    res = engine.search(SearchRequest(
        q,
        mode=mode,
        cat=cat or None,
        date_from=date_from,
        date_to=date_to,
        sort=sort,
        page=page,
        size=size,
        prefs=parse_prefs(prefs) if sort == "prefs" else None,
    ))
    arxiv_id = getattr(res, "arxiv_id", None)
    return json_ok({
        "total": int(res.total),
        "page": page,
        "size": size,
        "took_ms": finite(float(res.took_ms)),
        "mode": str(res.mode),
        "fallback": getattr(res, "fallback", None),
        "query": str(res.query),
        "arxiv_id": None if arxiv_id is None else str(arxiv_id),
        "relaxed": [str(p) for p in getattr(res, "relaxed", [])],
        "exact_total": getattr(res, "exact_total", None),
        "translated": str(getattr(res, "translated", "") or ""),
        "hits": [h.to_dict() for h in res.hits],
    })


# -- papers (most specific routes first: ids may contain '/') --------------------------


@router.get(
    "/api/papers/{paper_id:path}/related",
    response_model=HitsResponse,
    summary="Related papers",
    description="Papers related to this one (its top keywords as a BM25 query, fused with embedding "
    "neighbours), each with the keywords it shares with it.",
    tags=["papers"],
    responses=ERROR_RESPONSES,
)
def related(
    engine: EngineDep,
    paper_id: PaperId,
    size: Annotated[int | None, Query(ge=1, le=50, description="How many papers (1–50, default 10)")] = None,
    k: Annotated[int | None, Query(ge=1, le=50, description="Old name of `size`", deprecated=True)] = None,
) -> Response:
    n = size if size is not None else k if k is not None else 10
    return json_ok({"hits": [h.to_dict() for h in engine.related(paper_id, k=n)]})


@router.get(
    "/api/papers/{paper_id:path}/keywords",
    response_model=KeywordsResponse,
    summary="Keywords of a paper",
    tags=["papers"],
    responses=ERROR_RESPONSES,
)
def paper_keywords(engine: EngineDep, paper_id: PaperId) -> dict[str, Any]:
    return {"keywords": [kw.to_dict() for kw in engine.paper_keywords(paper_id)]}


@router.get(
    "/api/papers/{paper_id:path}.bib",
    summary="BibTeX entry of a paper",
    tags=["papers"],
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/x-bibtex": {"schema": {"type": "string"}}}, "description": "A BibTeX @misc entry"},
        **JSON_ERROR_RESPONSES,
    },
)
def paper_bib(engine: EngineDep, paper_id: PaperId, request: Request) -> PlainTextResponse:
    paper = paper_or_fetch(engine, get_settings(request), paper_id)
    return PlainTextResponse(bibtex_entry(paper), media_type="text/x-bibtex; charset=utf-8")


@router.get(
    "/api/papers/{paper_id:path}",
    response_model=PaperModel,
    summary="One paper's metadata",
    description="An unknown but valid arXiv id is fetched from arXiv on demand when the server runs with "
    "online fetching (PAPERS_ONLINE_FETCH=true); otherwise it is a 404. An invalid id is a 422.",
    tags=["papers"],
    responses={**ERROR_RESPONSES, 502: {"model": ErrorResponse, "description": "arXiv failed during an on-demand fetch"}},
)
def paper(engine: EngineDep, paper_id: PaperId, request: Request) -> dict[str, Any]:
    return paper_for_display(paper_or_fetch(engine, get_settings(request), paper_id))


# -- text tools -------------------------------------------------------------------------


@router.post(
    "/api/keywords",
    response_model=KeywordsResponse,
    summary="Keywords of any text",
    description="Weighted keywords of English, Chinese or mixed text (≤ 200,000 characters, body ≤ 256 KB).",
    tags=["tools"],
    responses=BODY_ERRORS,
)
def keywords(engine: EngineDep, body: KeywordsRequest) -> dict[str, Any]:
    if not body.text.strip():
        raise InvalidQuery("text is empty")
    return {"keywords": engine.keywords(body.text, k=body.size)}


@router.post(
    "/api/similar",
    response_model=HitsResponse,
    summary="Papers similar to a text",
    description="Related work for a draft: the papers closest to the text, each with the keywords it shares.",
    tags=["tools"],
    responses=BODY_ERRORS,
)
def similar(engine: EngineDep, body: SimilarRequest) -> Response:
    if not body.text.strip():
        raise InvalidQuery("text is empty")
    return json_ok({"hits": [h.to_dict() for h in engine.similar_text(body.text, k=body.size)]})


@router.post(
    "/api/recommend",
    response_model=HitsResponse,
    summary="Recommendations from liked and disliked papers",
    description="Ranked papers like the liked ones and unlike the disliked ones (≤ 100 ids each).",
    tags=["tools"],
    responses=BODY_ERRORS,
)
def recommend(engine: EngineDep, body: RecommendRequest) -> Response:
    hits = engine.recommend(body.liked, disliked=body.disliked, k=body.size)
    return json_ok({"hits": [h.to_dict() for h in hits]})


# -- lists ---------------------------------------------------------------------------------


@router.get(
    "/api/daily/{catexpr}",
    response_model=DailyResponseModel,
    summary="A day's new papers for a category expression",
    description="Like Cool Papers' daily pages: `cs.AI+cs.LG-cs.CY`; without `date`, the latest day holding a real batch (a stray cross-list on a later day is skipped).",
    tags=["lists"],
    responses=ERROR_RESPONSES,
)
def daily(
    engine: EngineDep,
    catexpr: Annotated[str, Path(max_length=MAX_CATEXPR_CHARS, description="Category expression, e.g. `cs.CL` or `cs.AI+cs.LG-cs.CY`")],
    day: Annotated[date | None, Query(alias="date", description="The day, YYYY-MM-DD (default: the latest)")] = None,
    sort: Annotated[DailySortName, Query(description="default (by id) or prefs (❤)")] = "default",
    prefs: Prefs = "",
    page: Page = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Papers per page (1–100)")] = DAILY_PAGE_SIZE,
) -> Response:
    check_window(page, size)
    lst = engine.daily(catexpr, day=day, page=page, size=size, prefs=parse_prefs(prefs) if sort == "prefs" else None)
    return json_ok({
        "expr": str(getattr(lst, "expr", "") or catexpr),
        "date": _iso(lst.day),
        "prev_date": _iso(lst.prev_day),
        "next_date": _iso(lst.next_day),
        "total": int(lst.total),
        "page": page,
        "size": size,
        "hits": [h.to_dict() for h in lst.hits],
    })


@router.get("/api/categories", response_model=CategoriesResponse, summary="Categories with paper counts", tags=["lists"], responses=ERROR_RESPONSES)
def categories(engine: EngineDep) -> dict[str, Any]:
    return {"categories": [{"category": c, "count": n} for c, n in engine.categories()]}


@router.get(
    "/api/stats",
    response_model=StatsResponse,
    summary="Corpus and index status",
    description="Papers, newest paper, published index version, and the last nightly run with its outcome.",
    tags=["health"],
    responses=ERROR_RESPONSES,
)
def stats(engine: EngineDep) -> Any:
    return JSONResponse(engine.stats())


__all__ = ["router", "parse_prefs", "json_ok", "HitModel"]
