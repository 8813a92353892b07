"""SQLAlchemy 2 models. Schema changes go through new Alembic migrations only.

``tests/test_migrations.py`` fails when these models and ``migrations/`` disagree.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Paper(Base):
    """One arXiv paper, keyed by its id without version."""

    __tablename__ = "papers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    abstract: Mapped[str] = mapped_column(Text, nullable=False, default="")
    authors: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    primary_category: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    categories: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    published: Mapped[date] = mapped_column(Date, nullable=False)
    updated: Mapped[date | None] = mapped_column(Date, nullable=True)
    versions: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    doi: Mapped[str | None] = mapped_column(String(255), nullable=True)
    journal_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    comments: Mapped[str | None] = mapped_column(Text, nullable=True)
    license: Mapped[str | None] = mapped_column(String(255), nullable=True)
    datestamp: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # sha1 of title+abstract+categories; the index and embeddings key their work on it
    content_hash: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    # bumped on every change; `papers build` processes rows with seq > last built seq
    seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ingested_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (
        Index("ix_papers_published", "published"),
        Index("ix_papers_primary_category", "primary_category"),
        Index("ix_papers_seq", "seq"),
    )


class PaperCategory(Base):
    """(paper, category) pairs so every category, not only the primary, is queryable."""

    __tablename__ = "paper_categories"

    paper_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (Index("ix_paper_categories_category", "category"),)


class PaperKeywords(Base):
    """Keywords computed at build time for each paper (list of [keyword, weight])."""

    __tablename__ = "paper_keywords"

    paper_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    content_hash: Mapped[str] = mapped_column(String(40), nullable=False)
    keywords: Mapped[list] = mapped_column(JSON, nullable=False, default=list)


class HarvestState(Base):
    """Where each source (e.g. ``oai:cs``) stopped: resumable harvesting."""

    __tablename__ = "harvest_state"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_datestamp: Mapped[date | None] = mapped_column(Date, nullable=True)
    resumption_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    window_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    window_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # False from the first request of a window until its last page: a window a killed run
    # left unfinished, even before it stored a token, is owed by the next nightly run
    window_done: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())


class IngestRun(Base):
    """One ingest / build / nightly run, for operators and `/api/stats`."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    inserted: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
