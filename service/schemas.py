"""Pydantic models of the JSON API: they are the OpenAPI schema clients rely on.

Limits live here as constants so the routes, the schema and docs/api.md agree; those of a
search (page size, result window) are the engine's own (:mod:`indexer.search.search_request`).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from indexer.search.search_request import MAX_PAGE_SIZE

MAX_QUERY_CHARS = 1000
MAX_CATEXPR_CHARS = 500
MAX_TEXT_CHARS = 200_000
MAX_IDS = 100
MAX_PREFS_CHARS = 2000
MAX_PREFS = 20
# How many results: `size` everywhere in the API; `k`, its old name on some routes, is still read.
SIZE_ALIASES = AliasChoices("size", "k")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable slug, e.g. `invalid_query`, `not_found`")
    message: str = Field(description="Human-readable explanation")


class ErrorResponse(BaseModel):
    """The one error shape of every non-2xx response."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown paper, page or endpoint"},
    422: {"model": ErrorResponse, "description": "Invalid parameter (bad id, date, mode, limit exceeded…)"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded (when enabled); see Retry-After"},
    503: {"model": ErrorResponse, "description": "No index published yet, storage unavailable, or mode=dense before its embeddings are built"},
}
#: The same errors for a route whose success is not JSON (BibTeX): FastAPI would document
#: them under the route's own media type, but errors are always JSON.
JSON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": r["description"],
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for status, r in ERROR_RESPONSES.items()
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    413: {"model": ErrorResponse, "description": "Request body over 256 KB"},
}


class HitModel(BaseModel):
    id: str = Field(description="arXiv id without version, e.g. `2401.01234` or `hep-th/9901001`")
    title: str
    authors: list[str]
    categories: list[str] = Field(description="Primary category first")
    published: str = Field(description="Date of the first version, YYYY-MM-DD")
    updated: str | None = Field(description="Date of the latest version, YYYY-MM-DD")
    score: float = Field(description="Ranking score (comparable only within one response)")
    title_html: str = Field(description="HTML-escaped title with <mark> around query words")
    snippet_html: str = Field(description="HTML-escaped abstract excerpt with <mark> highlights")
    shared_keywords: list[str] = Field(default_factory=list, description="Keywords this hit shares with the source (related/similar/recommend)")


class SearchResponseModel(BaseModel):
    total: int = Field(description="Matching papers (results beyond the 1000th are never returned)")
    page: int
    size: int
    took_ms: float = Field(description="Time spent in the engine")
    mode: str = Field(description="Retrieval mode actually used (bm25, dense or hybrid)")
    fallback: str | None = Field(None, description="Why `mode` is not the mode asked for, e.g. embeddings still being built")
    query: str
    arxiv_id: str | None = Field(None, description="Set when the query is one arXiv id or URL")
    relaxed: list[str] = Field(default_factory=list, description="Quoted phrases that too few papers contain: "
                               "papers holding them rank first, the closest papers follow, ranked by the phrase's words")
    exact_total: int | None = Field(None, description="Papers containing every quoted phrase, when `relaxed` is not empty")
    translated: str = Field("", description="What the query's Chinese parts were also searched as in English "
                            "(learned term table), e.g. `知识蒸馏 → knowledge distillation`; empty when none")
    hits: list[HitModel]


class PaperModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    title: str
    abstract: str
    authors: list[str]
    primary_category: str
    categories: list[str]
    published: str
    updated: str | None = None
    versions: int = 1
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None
    license: str | None = None
    withdrawn: bool = False
    abs_url: str
    pdf_url: str


class KeywordModel(BaseModel):
    keyword: str
    weight: float = Field(description="Relative importance (higher is more important)")


class KeywordsResponse(BaseModel):
    keywords: list[KeywordModel]


class HitsResponse(BaseModel):
    hits: list[HitModel]


class KeywordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="Any text: English, Chinese or mixed (≤ 200,000 characters)")
    size: int = Field(10, ge=1, le=50, validation_alias=SIZE_ALIASES, strict=True, description="How many keywords (`k` also accepted; an integer: `true` or `10.0` is a 422)")


class SimilarRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="A draft abstract or any text (≤ 200,000 characters)")
    size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, validation_alias=SIZE_ALIASES, strict=True, description="How many papers (`k` also accepted)")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    liked: list[str] = Field(min_length=1, max_length=MAX_IDS, description="arXiv ids the reader liked (1–100)")
    disliked: list[str] = Field(default_factory=list, max_length=MAX_IDS, description="arXiv ids the reader disliked (≤ 100)")
    size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, validation_alias=SIZE_ALIASES, strict=True, description="How many papers (`k` also accepted)")


class DailyResponseModel(BaseModel):
    expr: str = Field(description="The normalised category expression")
    date: str | None = Field(description="The day listed (YYYY-MM-DD); null when nothing matches")
    prev_date: str | None = Field(description="The previous day with papers")
    next_date: str | None = Field(description="The next day with papers")
    total: int
    page: int
    size: int
    hits: list[HitModel]


class CategoryCount(BaseModel):
    category: str
    count: int


class CategoriesResponse(BaseModel):
    categories: list[CategoryCount] = Field(description="Every category with its number of papers, most first")


class NightlyRun(BaseModel):
    model_config = ConfigDict(extra="allow")

    started_at: str
    finished_at: str | None = None
    status: str = Field(description="running, ok, failed…")
    inserted: int = 0
    updated: int = 0
    message: str | None = None


class StatsResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    papers: int = Field(description="Papers in the database (not withdrawn)")
    newest_paper: str | None = Field(description="Latest first-version date")
    index_version: int = Field(description="Published index version (0 = none yet)")
    index_built_at: str | None = None
    indexed_docs: int = 0
    embedding_models: list[str] = Field(default_factory=list)
    embedding_build: dict[str, Any] | None = Field(
        None, description="The last embedding build: state (running, done, interrupted, failed), done/total vectors, "
        "share, docs_per_s, eta_s, per-model progress and a one-line summary")
    last_nightly: NightlyRun | None = Field(None, description="The last nightly run and its outcome")


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    index_version: int
