"""Incremental build: database rows → BM25 index, keywords, embeddings → a published version.

Why incremental by ``seq``: every upsert that changes a paper gives it a new, larger
``seq``. The manifest records the highest ``seq`` that the published version contains,
so a build only touches rows with a larger ``seq`` (a nightly increment of a few
thousand papers costs seconds, not a rebuild). Every step is idempotent (upsert by id,
keywords and vectors keyed by content hash), so a build killed at any point is simply
run again; readers keep the previous manifest until the new one is in place.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
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
KEYWORD_TASK = 1000  # papers per keyword task (one seq range)
KEYWORD_POOL_MIN = 20_000  # from this many changed papers on, keywords come from a process pool
KEYWORD_WORKERS = 2


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
    # a full build, or the first one: every live row goes into an empty (or cleared) index,
    # so papers are added without a delete by id each, by a bulk writer, and their terms
    # are counted on the way (the keyword step's document frequencies, exact)
    fresh = full or bm25.num_docs == 0
    terms: Counter | None = None
    if fresh:
        terms = Counter()
        bm25.begin_bulk(clear=bm25.num_docs > 0)
    max_seq = after
    changed: list[tuple[str, str, str, str]] = []  # (id, hash, title, abstract) of live papers (incremental)
    tasks: list[tuple[int, int]] = []  # seq ranges of the changed rows, for the keyword step
    n_live = 0
    removed: list[str] = []
    t_bm25, c_bm25 = time.perf_counter(), _cpu_seconds()
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
            if not fresh:
                changed.append((r.id, r.content_hash, r.title, r.abstract))
        n_live += len(docs)
        for i in range(0, len(rows), KEYWORD_TASK):
            tasks.append((rows[i].seq, rows[min(i + KEYWORD_TASK, len(rows)) - 1].seq))
        if docs:
            report.indexed += bm25.add_new(docs, terms) if fresh else bm25.upsert(docs)
        if fresh and len(tasks) % 100 == 0:
            log.info("bm25: %d papers added", report.indexed)
    if removed:
        report.removed = bm25.delete(removed)
    bm25.commit()
    if rebuild_bm25:
        bm25.mark_current()
    report.docs = bm25.num_docs
    log.info("bm25: %d %s, %d removed, %d docs in %.1fs (%.1f CPU s)", report.indexed, "added" if fresh else "upserted",
             report.removed, report.docs, time.perf_counter() - t_bm25, _cpu_seconds() - c_bm25)

    t_kw, c_kw = time.perf_counter(), _cpu_seconds()
    report.keywords = _store_keywords(settings, engine, bm25, tasks, removed, live=n_live, terms=terms)
    log.info("keywords: %d papers in %.1fs (%.1f CPU s, workers included)", report.keywords,
             time.perf_counter() - t_kw, _cpu_seconds() - c_kw)

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
            if from_scratch:
                items = _live_items(engine)
            elif fresh:  # the changed rows were not kept in memory
                items = _live_items(engine, after=after, upto=max_seq)
            else:
                items = changed
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


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (keyword workers):
    on a shared machine, the work a step did rather than how long it waited."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _live_items(engine: Engine, after: int = 0, upto: int | None = None) -> list[tuple[str, str, str, str]]:
    q = select(Paper.id, Paper.content_hash, Paper.title, Paper.abstract).where(Paper.withdrawn.is_(False))
    if after:
        q = q.where(Paper.seq > after)
    if upto is not None:
        q = q.where(Paper.seq <= upto)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [(r.id, r.content_hash, r.title, r.abstract) for r in rows]


# -- keywords -------------------------------------------------------------------------------
# Every changed paper's top keywords go to paper_keywords (the related/recommend queries
# read them). This is the costly part of a full build (pure Python, ~3k papers/s per core),
# so it runs as independent tasks, each a seq range of changed rows: a task reads its rows
# (and their stored content hashes) itself, extracts keywords for the rows whose content
# changed and returns ready-to-insert rows (keywords as JSON text). Large builds run the
# tasks in a pool of processes, each given the document-frequency table once; the parent
# only writes. Small (nightly) builds run them inline.


class _CountedTerms:
    """Term document frequencies counted while a full build indexed every paper: the same
    numbers the fresh index's ``doc_freq`` gives, as a dict (no index query per term)."""

    def __init__(self, num_docs: int, counts: Mapping[str, int]):
        self.num_docs = num_docs
        self.counts = counts

    def doc_freq(self, term: str) -> int:
        return self.counts.get(term, 0)


class _KeywordTasks:
    def __init__(self, engine: Engine, extractor):
        self.engine = engine
        self.extractor = extractor

    def run(self, span: tuple[int, int]) -> list[tuple[str, str, str]]:
        """Rows ``(paper_id, content_hash, keywords_json)`` for the live papers with seq in
        ``span`` whose stored keywords are missing or were computed for other content."""
        lo, hi = span
        q = (
            select(Paper.id, Paper.content_hash, Paper.title, Paper.abstract, PaperKeywords.content_hash.label("kw_hash"))
            .select_from(Paper)
            .outerjoin(PaperKeywords, PaperKeywords.paper_id == Paper.id)
            .where(Paper.seq >= lo, Paper.seq <= hi, Paper.withdrawn.is_(False))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        extract = self.extractor.extract
        dumps = json.dumps
        out = []
        for pid, h, title, abstract, kw_hash in rows:
            if kw_hash == h:
                continue
            kws = extract(abstract, k=KEYWORDS_PER_PAPER, title=title)
            out.append((pid, h, dumps([[k.keyword, round(float(k.weight), 4), list(k.terms)] for k in kws])))
        return out


_worker_tasks: _KeywordTasks | None = None


def _keyword_worker_init(db_url: str, num_docs: int, counts: Mapping[str, int] | None, bm25_dir: str | None) -> None:
    """Pool initializer (a forked process): its own database engine (never the parent's
    pooled connections) and extractor. Document frequencies come from the parent once: the
    table counted by a full build (inherited by the fork, no copy), or else the committed
    index, opened read-only here."""
    global _worker_tasks
    from indexer.db import make_engine
    from indexer.keywords import DocFreqs, KeywordExtractor

    if counts is not None:
        dfs = DocFreqs.from_index(_CountedTerms(num_docs, counts))
    else:
        from indexer.bm25 import BM25Index

        dfs = DocFreqs.from_index(BM25Index.open(bm25_dir, readonly=True))
    _worker_tasks = _KeywordTasks(make_engine(db_url), KeywordExtractor(dfs))


def _keyword_worker_run(span: tuple[int, int]) -> list[tuple[str, str, str]]:
    assert _worker_tasks is not None
    return _worker_tasks.run(span)


def _keyword_workers(n_papers: int) -> int:
    """Processes for the keyword step: 0 = inline. A pool needs ``fork`` (Linux): ``spawn``
    would re-import the caller's ``__main__``, which a script without a main guard turns
    into a build per worker."""
    import multiprocessing

    cpus = os.cpu_count() or 1
    if n_papers < KEYWORD_POOL_MIN or cpus < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(KEYWORD_WORKERS, cpus)


def _store_keywords(settings: Settings, engine: Engine, bm25, tasks: list[tuple[int, int]], removed: list[str], *,
                    live: int, terms: Counter | None = None) -> int:
    """Compute and store keywords for the changed papers in ``tasks`` (seq ranges),
    skipping those whose stored keywords match their content hash."""
    from indexer.keywords import DocFreqs, KeywordExtractor

    if not tasks and not removed:
        return 0
    with engine.begin() as conn:
        if removed:
            for start in range(0, len(removed), 900):
                conn.execute(delete(PaperKeywords).where(PaperKeywords.paper_id.in_(removed[start : start + 900])))
        empty = conn.execute(select(PaperKeywords.paper_id).limit(1)).first() is None
    if not tasks or not live:
        return 0
    counts = terms
    workers = _keyword_workers(live)
    n = 0
    pending: list[tuple[str, str, str]] = []

    def consume(results: Iterable[list[tuple[str, str, str]]]) -> None:
        nonlocal n, pending
        for rows in results:
            pending.extend(rows)
            if len(pending) >= 5000:
                _write_keywords(engine, pending, replace=not empty)
                n += len(pending)
                pending = []
                log.info("keywords: %d papers", n)
        if pending:
            _write_keywords(engine, pending, replace=not empty)
            n += len(pending)
            pending = []

    if workers:
        import multiprocessing

        # fork: the workers inherit the frequency table without a copy. The index writer is
        # committed and closed by now (no tantivy indexing threads); workers open their own
        # database engine.
        ctx = multiprocessing.get_context("fork")
        db_url = engine.url.render_as_string(hide_password=False)
        with ctx.Pool(workers, initializer=_keyword_worker_init,
                      initargs=(db_url, bm25.num_docs, counts, None if counts is not None else str(bm25.path))) as pool:
            consume(pool.imap(_keyword_worker_run, tasks))
    else:
        if counts is not None and bm25.num_docs:
            dfs = DocFreqs.from_index(_CountedTerms(bm25.num_docs, counts))
        else:
            dfs = DocFreqs.from_index(bm25) if bm25.num_docs else DocFreqs.shipped()
        job = _KeywordTasks(engine, KeywordExtractor(dfs))
        consume(job.run(span) for span in tasks)
    return n


def _write_keywords(engine: Engine, rows: list[tuple[str, str, str]], *, replace: bool) -> None:
    """Insert keyword rows (keywords already JSON text) in one transaction; ``replace``
    first deletes the papers' old rows (not needed when the table started empty)."""
    with engine.begin() as conn:
        if replace:
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), 900):
                conn.execute(delete(PaperKeywords).where(PaperKeywords.paper_id.in_(ids[start : start + 900])))
        if conn.dialect.name == "sqlite":  # the JSON column stores exactly this text
            conn.exec_driver_sql("INSERT INTO paper_keywords (paper_id, content_hash, keywords) VALUES (?, ?, ?)", rows)
        else:
            conn.execute(insert(PaperKeywords), [{"paper_id": p, "content_hash": h, "keywords": json.loads(k)} for p, h, k in rows])


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
