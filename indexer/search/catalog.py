"""Catalog: the SQL reads of the read path, returning rows and plain values, never hits.

Why apart from the engine: what a paper *is* (its row, its stored keywords, the days it was
listed on, the category counts) is read the same way whatever ranks it, and these reads
are the part of the read path that knows the schema (:mod:`indexer.models`). The
engine ranks ids and builds hits from the rows read here (:mod:`indexer.search.hits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, exists, func, not_, or_, select

from indexer.errors import NotFound
from indexer.lexical.catexpr import CategoryExpr
from indexer.models import IngestRun, Paper, PaperCategory, PaperKeywords
from indexer.text.keywords import Keyword

#: The rows behind hits, built once: an expanding IN takes the ids at execution, so a page
#: of hits does not pay for building and caching a new statement (half of rows()' time).
_ROWS_SELECT = select(
    Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.categories, Paper.published, Paper.updated, Paper.withdrawn
).where(Paper.id.in_(bindparam("ids", expanding=True)))


class Catalog:
    """Reads of the papers database (``db``: a SQLAlchemy engine)."""

    # A daily list without a date opens on the latest *real batch*: a listing day brings a busy
    # category tens to hundreds of papers, while one late cross-list or replacement can put a
    # single paper on a later day (cs.AI in the sample: 1 paper on 2026-07-09, 128 on 07-01).
    # Real = at least BATCH_FRACTION of the busiest day in the BATCH_WINDOW_DAYS before the
    # newest one; a sparse category (a paper every few days) opens on its newest day as before.
    BATCH_WINDOW_DAYS = 30
    BATCH_FRACTION = 0.1

    def __init__(self, db: Engine):
        self.db = db

    # -- papers -------------------------------------------------------------------------
    def rows(self, ids: Sequence[str]) -> dict[str, Any]:
        """The rows behind hits (id, title, abstract, authors, categories, dates, withdrawn), by id."""
        if not ids:
            return {}
        out: dict[str, Any] = {}
        with self.db.connect() as conn:
            for start in range(0, len(ids), 900):
                for r in conn.execute(_ROWS_SELECT, {"ids": list(ids[start : start + 900])}):
                    out[r.id] = r
        return out

    def texts(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(title, abstract) of papers: the text pseudo-relevance feedback reads."""
        return {i: (r.title or "", r.abstract or "") for i, r in self.rows(ids).items()}

    def paper(self, pid: str) -> Any:
        """Every column of one paper (``pid`` normalised); NotFound when it is not there."""
        with self.db.connect() as conn:
            row = conn.execute(select(*Paper.__table__.columns).where(Paper.id == pid)).first()
        if row is None:
            raise NotFound(f"paper {pid} is not in the index")
        return row

    def source(self, pid: str) -> Any:
        """``(id, title, abstract, authors, keywords)`` of a paper, its stored keywords joined in
        (raw, as :meth:`Keyword.to_stored` lists): one query where related() used to make
        three (paper row twice, keywords once). NotFound as :meth:`paper`."""
        with self.db.connect() as conn:
            row = conn.execute(
                select(Paper.id, Paper.title, Paper.abstract, Paper.authors, PaperKeywords.keywords)
                .outerjoin(PaperKeywords, PaperKeywords.paper_id == Paper.id)
                .where(Paper.id == pid)
            ).first()
        if row is None:
            raise NotFound(f"paper {pid} is not in the index")
        return row

    def stored_keywords(self, ids: Sequence[str]) -> dict[str, list[Keyword]]:
        """The keywords a build stored for each paper (strongest first); papers without any are left out."""
        if not ids:
            return {}
        with self.db.connect() as conn:
            rows = conn.execute(select(PaperKeywords.paper_id, PaperKeywords.keywords).where(PaperKeywords.paper_id.in_(list(ids)))).all()
        return {r.paper_id: [Keyword.from_stored(kw) for kw in r.keywords or []] for r in rows}

    # -- lists ------------------------------------------------------------------------------
    @staticmethod
    def _cat_clause(expr: CategoryExpr) -> Any:
        def one(c: str):
            return or_(PaperCategory.category == c, PaperCategory.category.like(c + ".%"))

        clauses: list[Any] = []
        if expr.include:
            clauses.append(exists().where(and_(PaperCategory.paper_id == Paper.id, or_(*[one(c) for c in expr.include]))))
        if expr.exclude:
            clauses.append(not_(exists().where(and_(PaperCategory.paper_id == Paper.id, or_(*[one(c) for c in expr.exclude])))))
        return and_(*clauses) if clauses else None

    def _latest_batch_day(self, conn, where) -> date | None:
        latest = conn.execute(select(func.max(Paper.published)).where(*where)).scalar()
        if latest is None:
            return None
        since = latest - timedelta(days=self.BATCH_WINDOW_DAYS)
        counts = conn.execute(
            select(Paper.published, func.count()).where(*where, Paper.published > since)
            .group_by(Paper.published).order_by(Paper.published.desc())
        ).all()
        busiest = max(n for _, n in counts)
        return next(d for d, n in counts if n >= self.BATCH_FRACTION * busiest)

    def day_listing(self, expr: CategoryExpr, day: date | None) -> tuple[date | None, date | None, date | None, list[str]]:
        """``(day, previous day, next day, ids)`` of the live papers of ``expr`` first published
        on ``day`` (None: the latest real batch, above), ids in order; all None and no ids
        when nothing matches."""
        where = [Paper.withdrawn.is_(False)]
        clause = self._cat_clause(expr)
        if clause is not None:
            where.append(clause)
        with self.db.connect() as conn:
            if day is None:
                day = self._latest_batch_day(conn, where)
            if day is None:
                return None, None, None, []
            prev_day = conn.execute(select(func.max(Paper.published)).where(*where, Paper.published < day)).scalar()
            next_day = conn.execute(select(func.min(Paper.published)).where(*where, Paper.published > day)).scalar()
            ids = [r[0] for r in conn.execute(select(Paper.id).where(*where, Paper.published == day).order_by(Paper.id))]
        return day, prev_day, next_day, ids

    def category_counts(self) -> list[tuple[str, int]]:
        """Every category with its number of live papers, most first."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(PaperCategory.category, func.count())
                .join(Paper, Paper.id == PaperCategory.paper_id)
                .where(Paper.withdrawn.is_(False))
                .group_by(PaperCategory.category)
                .order_by(func.count().desc(), PaperCategory.category)
            ).all()
        return [(r[0], int(r[1])) for r in rows]

    def corpus_stats(self) -> tuple[int, date | None, Any]:
        """``(live papers, newest first-version date, the last nightly run's row or None)``."""
        with self.db.connect() as conn:
            papers = conn.execute(select(func.count()).select_from(Paper).where(Paper.withdrawn.is_(False))).scalar_one()
            newest = conn.execute(select(func.max(Paper.published))).scalar()
            run = conn.execute(select(*IngestRun.__table__.columns).where(IngestRun.kind == "nightly").order_by(IngestRun.id.desc()).limit(1)).first()
        return int(papers), newest, run
