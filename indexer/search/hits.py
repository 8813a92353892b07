"""What a search answers: hits built from paper rows, and the one way a hit becomes JSON.

Why a module of its own: the engine ranks ids; turning ranked ids into what a reader sees
(TeX accents rendered, query words marked) and into the API's JSON is the same for every
ranking (search, daily lists, related, similar, recommend), and for every caller (the API,
the web pages, feeds, ``papers search --json``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from indexer.text.snippets import highlight
from indexer.text.tex_accents import render_tex_accents as shown


@dataclass
class Hit:
    id: str
    title: str
    authors: list[str]
    categories: list[str]
    published: date
    updated: date | None
    score: float
    title_html: str
    snippet_html: str
    abstract: str = ""
    shared_keywords: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON has it (the API's ``HitModel``, ``papers search --json``): the one
        serialiser, with the exact keys and JSON types."""
        return {
            "id": str(self.id),
            "title": str(self.title),
            "authors": [str(a) for a in self.authors or ()],
            "categories": [str(c) for c in self.categories or ()],
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat() if self.updated is not None else None,
            "score": finite(round(float(self.score), 6)),
            "title_html": str(self.title_html),
            "snippet_html": str(self.snippet_html),
            "shared_keywords": [str(k) for k in self.shared_keywords or ()],
        }


def finite(x: float) -> float:
    """``x``, or 0.0 for NaN/inf, which are not JSON numbers."""
    return x if x - x == 0.0 else 0.0


@dataclass
class SearchResponse:
    total: int
    hits: list[Hit]
    took_ms: float
    mode: str
    query: str
    page: int = 1
    size: int = 20
    arxiv_id: str | None = None  # set when the query named one paper (id or URL)
    relaxed: list[str] = field(default_factory=list)  # quoted phrases searched as words (lexical.rank)
    exact_total: int | None = None  # papers holding those phrases, when ``relaxed``
    translated: str = ""  # what the Chinese parts were searched as (indexer.text.zh_en), for the page
    fallback: str | None = None  # why ``mode`` is not the mode asked for (no dense space yet, …)


@dataclass
class DailyList:
    day: date | None
    prev_day: date | None
    next_day: date | None
    total: int
    hits: list[Hit]
    expr: str = ""


def build_hits(rows: Mapping[str, Any], ranked: Sequence[tuple[str, float]], terms: set[str],
               words: str | None = None) -> list[Hit]:
    """Hits of ``ranked`` ids from their paper ``rows`` (:meth:`indexer.search.catalog.Catalog.rows`),
    with highlights of ``terms``; ``words`` (the query or keywords they came from) keeps the
    marks to inflections of those words (indexer.text.snippets). Ids without a row and withdrawn
    papers are left out."""
    hits = []
    for pid, score in ranked:
        r = rows.get(pid)
        if r is None or r.withdrawn:
            continue
        title, abstract = shown(r.title), shown(r.abstract)  # display only: P\'etritis -> Pétritis
        hits.append(
            Hit(
                id=r.id,
                title=title,
                authors=[shown(a) for a in r.authors or []],
                categories=list(r.categories or []),
                published=r.published,
                updated=r.updated,
                score=float(score),
                title_html=highlight(title, terms, max_chars=0, words=words) if terms else html.escape(title),
                snippet_html=highlight(abstract, terms, max_chars=300, words=words),
                abstract=abstract,
            )
        )
    return hits
