"""The parameters of one search, and their limits, stated once.

The engine, the JSON API (whose OpenAPI schema states the limits) and the web page
(which reads them leniently and explains instead of answering 422) all take the modes,
sorts, page size and result window from here, and the engine checks a request with
:meth:`SearchRequest.check`: one place for the rules and for their error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from indexer.errors import InvalidQuery

ModeName = Literal["bm25", "dense", "hybrid"]
SortName = Literal["relevance", "date", "prefs"]
DailySortName = Literal["default", "prefs"]  # a daily list: by id, or ❤-ordered
MODES: tuple[str, ...] = get_args(ModeName)
SORTS: tuple[str, ...] = get_args(SortName)
DAILY_SORTS: tuple[str, ...] = get_args(DailySortName)
DEFAULT_MODE: ModeName = "hybrid"
DEFAULT_SORT: SortName = "relevance"
DEFAULT_PAGE_SIZE = 20
DAILY_PAGE_SIZE = 25  # a daily list's page
MAX_PAGE_SIZE = 100
RESULT_WINDOW = 1000  # like Cool Papers: no result beyond the 1000th


def check_page(page: int, size: int) -> None:
    """A page of a list: 1-based, 1–100 items."""
    if page < 1 or size < 1 or size > MAX_PAGE_SIZE:
        raise InvalidQuery(f"page must be ≥ 1 and size between 1 and {MAX_PAGE_SIZE}")


def check_window(page: int, size: int) -> None:
    """No result beyond the :data:`RESULT_WINDOW`-th."""
    if page * size > RESULT_WINDOW:
        raise InvalidQuery(f"results are capped at {RESULT_WINDOW}: page × size must be ≤ {RESULT_WINDOW}")


@dataclass(frozen=True)
class SearchRequest:
    """What :meth:`indexer.search.engine.SearchEngine.search` is asked: the query, how to rank it,
    the filters and the page. ``prefs``: the reader's preference keywords for ``sort="prefs"``."""

    q: str = ""
    mode: str = DEFAULT_MODE
    cat: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    prefs: Sequence[str] | None = None

    def check(self) -> None:
        """Raise :class:`InvalidQuery` for a request outside the limits (the parsing of the
        query and the category expression is the engine's)."""
        if self.mode not in MODES:
            raise InvalidQuery(f"mode must be one of {', '.join(MODES)}")
        if self.sort not in SORTS:
            raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}")
        check_page(self.page, self.size)
        check_window(self.page, self.size)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidQuery("'from' date is after 'to' date")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def filtered(self) -> bool:
        """Whether a category or date filter narrows the results."""
        return bool(self.cat or self.date_from or self.date_to)
