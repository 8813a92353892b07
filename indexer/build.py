"""Incremental build: database rows → BM25 index, keywords, embeddings → a published version.

Why incremental by ``seq``: every upsert that changes a paper gives it a new, larger
``seq``. The manifest records the highest ``seq`` that the published version contains,
so a build only touches rows with a larger ``seq`` (a nightly increment of a few
thousand papers costs seconds, not a rebuild). Every step is idempotent (upsert by id,
keywords and vectors keyed by content hash), so a build killed at any point is simply
run again; readers keep the previous manifest until the new one is in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select

from indexer.db import open_database
from indexer.manifest import Manifest, read_manifest, read_previous_manifest, write_manifest
from indexer.models import IngestRun, Paper, PaperKeywords
from indexer.settings import Settings

log = logging.getLogger(__name__)

CHUNK = 5000
KEYWORDS_PER_PAPER = 15


@dataclass
class BuildReport:
    version: int = 0
    built_seq: int = 0
    indexed: int = 0
    removed: int = 0
    keywords: int = 0
    embedded: dict[str, int] = field(default_factory=dict)
    docs: int = 0
    seconds: float = 0.0
    published: bool = False

    def summary(self) -> str:
        emb = ", ".join(f"{k}: {v}" for k, v in self.embedded.items()) or "skipped"
        return (
            f"index version {self.version}: {self.indexed} indexed, {self.removed} removed, "
            f"{self.keywords} keyword sets, embedded ({emb}); {self.docs} docs in {self.seconds:.1f}s"
        )


def dense_models(settings: Settings) -> list[str]:
    """Embedding spaces the build maintains: the main model and the multilingual one."""
    names = [settings.embedding_model]
    if settings.multilingual_model and settings.multilingual_model not in names:
        names.append(settings.multilingual_model)
    return [n for n in names if n]


def bm25_path(settings: Settings) -> Path:
    return settings.index_dir / "bm25"


def embeddings_path(settings: Settings, model: str) -> Path:
    safe = model.replace("/", "_").replace(":", "_")
    return settings.index_dir / "embeddings" / safe


def embedding_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}".strip()


def current_manifest(settings: Settings) -> Manifest:
    """The published manifest, falling back to the previous one if it is corrupt."""
    from indexer.errors import IndexUnavailable

    try:
        m = read_manifest(settings.index_dir)
    except IndexUnavailable as e:
        log.error("%s; falling back to the previous version", e)
        m = read_previous_manifest(settings.index_dir)
    return m or Manifest()


def _changed_rows(engine: Engine, after_seq: int) -> Iterator[list]:
    """Rows with seq > after_seq, in seq order, in chunks (constant memory)."""
    cols = (
        Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.categories,
        Paper.published, Paper.updated, Paper.withdrawn, Paper.content_hash, Paper.seq,
    )
    last = after_seq
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(*cols).where(Paper.seq > last).order_by(Paper.seq).limit(CHUNK)
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].seq


def build(
    settings: Settings,
    *,
    embeddings: bool = True,
    progress: bool = True,
    device: str | None = None,
    lock: bool = True,
    full: bool = False,
) -> BuildReport:
    """Bring the published index up to date with the database and publish a version.

    ``lock=False`` is for callers that already hold the run lock (``nightly``).
    ``full=True`` reprocesses every row (after a tokenizer change, say).
    """
    if lock:
        from indexer.locks import run_lock

        with run_lock(settings, "index"):
            return _build(settings, embeddings=embeddings, progress=progress, device=device, full=full)
    return _build(settings, embeddings=embeddings, progress=progress, device=device, full=full)


def _build(settings: Settings, *, embeddings: bool, progress: bool, device: str | None, full: bool) -> BuildReport:
    from indexer.bm25 import BM25Index

    t0 = time.perf_counter()
    engine = open_database(settings)
    prev = current_manifest(settings)
    report = BuildReport()
    run_id = _start_run(engine)

    bm25 = BM25Index.open(bm25_path(settings))
    try:
        return _build_into(settings, engine, bm25, prev, report, run_id, t0,
                           embeddings=embeddings, progress=progress, device=device, full=full)
    except BaseException:
        bm25.rollback()  # release tantivy's writer lock; committed versions stay intact
        _fail_run(engine, run_id)
        raise


def _build_into(settings: Settings, engine: Engine, bm25, prev: Manifest, report: BuildReport, run_id: int,
                t0: float, *, embeddings: bool, progress: bool, device: str | None, full: bool) -> BuildReport:
    from indexer.bm25 import IndexedDoc
    from indexer.errors import IndexUnavailable

    rebuild_bm25 = bm25.stale  # written by another tokenizer/schema version: re-index every row
    if rebuild_bm25:
        full = True
    after = 0 if full else prev.built_seq
    max_seq = after
    changed: list[tuple[str, str, str, str]] = []  # (id, hash, title, abstract) of live papers
    removed: list[str] = []
    for rows in _changed_rows(engine, after):
        docs = []
        for r in rows:
            max_seq = max(max_seq, r.seq)
            if r.withdrawn:
                removed.append(r.id)
                continue
            docs.append(
                IndexedDoc(
                    id=r.id, title=r.title, abstract=r.abstract, authors=list(r.authors or []),
                    categories=list(r.categories or []), published=r.published, updated=r.updated,
                )
            )
            changed.append((r.id, r.content_hash, r.title, r.abstract))
        if docs:
            report.indexed += bm25.upsert(docs)
    if removed:
        report.removed = bm25.delete(removed)
    bm25.commit()
    if rebuild_bm25:
        bm25.mark_current()
    report.docs = bm25.num_docs
    log.info("bm25: %d upserted, %d removed, %d docs", report.indexed, report.removed, report.docs)

    report.keywords = _store_keywords(engine, bm25, changed, removed)

    emb_info = dict(prev.embeddings)
    if embeddings:
        from indexer.embeddings import EmbeddingStore, embed_papers, get_embedder

        for model in dense_models(settings):
            store = EmbeddingStore(embeddings_path(settings, model), model)
            from_scratch = full or not prev.embeddings.get(model)
            try:
                store.load()
            except IndexUnavailable as e:  # truncated or corrupt file: never publish it again
                log.error("%s; re-embedding %s from scratch", e, model)
                store = EmbeddingStore(embeddings_path(settings, model), model)
                from_scratch = True
            if removed:
                store.remove(removed)
            items = _live_items(engine) if from_scratch else changed
            todo = store.missing([(i, h) for i, h, *_ in items])
            todo_set = set(todo)
            work = [(i, h, embedding_text(t, a)) for i, h, t, a in items if i in todo_set]
            embedder = get_embedder(model, device=device or settings.embedding_device)
            n = embed_papers(store, embedder, work, progress=progress) if work else 0
            info = store.save()
            emb_info[model] = {"dir": str(embeddings_path(settings, model).relative_to(settings.index_dir)), **info}
            report.embedded[model] = n
    else:
        for model in list(emb_info):
            if removed:  # keep withdrawn papers out of dense results even without re-embedding
                from indexer.embeddings import EmbeddingStore

                store = EmbeddingStore(embeddings_path(settings, model), model)
                try:
                    store.load(emb_info[model])
                except IndexUnavailable as e:
                    log.error("%s; dropping %s until the next build with embeddings", e, model)
                    del emb_info[model]
                    continue
                store.remove(removed)
                emb_info[model] = {**emb_info[model], **store.save()}

    did_work = report.indexed or report.removed or report.keywords or any(report.embedded.values()) or emb_info != prev.embeddings
    if not did_work and prev.version and not full:
        report.version, report.built_seq, report.docs = prev.version, prev.built_seq, prev.docs
        report.seconds = time.perf_counter() - t0
        _finish_run(engine, run_id, report)
        return report
    manifest = Manifest(
        version=prev.version + 1,
        built_seq=max_seq,
        docs=report.docs,
        embeddings=emb_info,
    )
    write_manifest(settings.index_dir, manifest)
    report.version = manifest.version
    report.built_seq = max_seq
    report.published = True
    report.seconds = time.perf_counter() - t0
    _finish_run(engine, run_id, report)
    return report


def _live_items(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Paper.id, Paper.content_hash, Paper.title, Paper.abstract).where(Paper.withdrawn.is_(False))
        ).all()
    return [(r.id, r.content_hash, r.title, r.abstract) for r in rows]


def _store_keywords(engine: Engine, bm25, changed: list, removed: list[str]) -> int:
    """Compute and store keywords for changed papers (skipping unchanged content hashes)."""
    from indexer.keywords import DocFreqs, KeywordExtractor

    if not changed and not removed:
        return 0
    extractor = KeywordExtractor(DocFreqs.from_index(bm25) if bm25.num_docs else DocFreqs.shipped())
    n = 0
    with engine.begin() as conn:
        if removed:
            conn.execute(delete(PaperKeywords).where(PaperKeywords.paper_id.in_(removed)))
    for start in range(0, len(changed), 2000):
        batch = changed[start : start + 2000]
        ids = [c[0] for c in batch]
        with engine.connect() as conn:
            have = dict(
                conn.execute(
                    select(PaperKeywords.paper_id, PaperKeywords.content_hash).where(PaperKeywords.paper_id.in_(ids))
                ).all()
            )
        rows = []
        for pid, h, title, abstract in batch:
            if have.get(pid) == h:
                continue
            kws = extractor.extract(abstract, k=KEYWORDS_PER_PAPER, title=title)
            rows.append(
                {
                    "paper_id": pid,
                    "content_hash": h,
                    "keywords": [[k.keyword, round(float(k.weight), 4), list(k.terms)] for k in kws],
                }
            )
        if rows:
            with engine.begin() as conn:
                conn.execute(delete(PaperKeywords).where(PaperKeywords.paper_id.in_([r["paper_id"] for r in rows])))
                conn.execute(insert(PaperKeywords), rows)
            n += len(rows)
    return n


def _start_run(engine: Engine) -> int:
    with engine.begin() as conn:
        res = conn.execute(
            insert(IngestRun).values(kind="build", source="", started_at=datetime.now(UTC).replace(tzinfo=None), status="running", errors=[])
        )
        return int(res.inserted_primary_key[0])


def _fail_run(engine: Engine, run_id: int) -> None:
    from sqlalchemy import update

    try:
        with engine.begin() as conn:
            conn.execute(
                update(IngestRun).where(IngestRun.id == run_id)
                .values(finished_at=datetime.now(UTC).replace(tzinfo=None), status="failed")
            )
    except Exception:  # the database itself may be what failed; the run stays "running"
        log.exception("could not record the failed build")


def _finish_run(engine: Engine, run_id: int, report: BuildReport) -> None:
    from sqlalchemy import update

    with engine.begin() as conn:
        conn.execute(
            update(IngestRun)
            .where(IngestRun.id == run_id)
            .values(
                finished_at=datetime.now(UTC).replace(tzinfo=None),
                status="ok",
                inserted=report.indexed,
                updated=report.keywords,
                skipped=report.removed,
                message=report.summary(),
            )
        )


def max_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(Paper.seq), 0))).scalar_one())
