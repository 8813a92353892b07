"""Incremental build: database rows → BM25 index, keywords, embeddings → a published version.

Why incremental by ``seq``: every upsert that changes a paper gives it a new, larger
``seq``. The manifest records the highest ``seq`` that the published version contains,
so a build only touches rows with a larger ``seq`` (a nightly increment of a few
thousand papers costs seconds, not a rebuild). Every step is idempotent (upsert by id,
keywords and vectors keyed by content hash), so a build killed at any point is simply
run again; readers keep the previous manifest until the new one is in place.

Why two process pools in a large build: tokenising every paper and extracting its
keywords are pure Python (~0.15 and ~0.4 ms a paper), so at 1M papers they are the
build; run as tasks over seq ranges in forked workers they use both cores, while the
parent only feeds tantivy (whose own threads index) and writes SQLite. Keywords need the
finished document frequencies, so they are a second pass.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import re
import resource
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from indexer.db import make_engine, open_database

# dense.get_embedder is looked up at each call: `papers bench` swaps in a synthetic embedder
from indexer.dense import embeddings as dense
from indexer.dense.embedding_seeds import apply_seeds
from indexer.dense.embeddings import EmbeddingStore, embed_papers, get_query_embedder
from indexer.embed_progress import ProgressWriter
from indexer.errors import IndexUnavailable, StorageError
from indexer.ingest.store import UpsertCounts
from indexer.lexical.bm25 import BM25Index, IndexedDoc, prepare_document
from indexer.manifest import MANIFEST_NAME, PREVIOUS_NAME, Manifest, write_manifest
from indexer.models import IngestRun, Paper, PaperKeywords
from indexer.paths import bm25_path, current_manifest, dense_models, embeddings_path
from indexer.pipeline.locks import run_lock
from indexer.pipeline.verify import verify_published
from indexer.runs import finish_run, start_run
from indexer.settings import Settings
from indexer.text.keywords import DocFreqs, KeywordExtractor
from indexer.text.tokenizer import default_tokenizer

log = logging.getLogger(__name__)

KEYWORDS_PER_PAPER = 15
INDEX_TASK = 2000  # rows per tokenising task (one seq range)
KEYWORD_TASK = 1000  # rows per keyword task
POOL_MIN = 20_000  # from this many changed rows on, tokenising and keywords run in a process pool
WORKERS = 2
EMBED_FETCH = 500  # papers whose texts are read per query while embedding (one SQLite IN list)


@dataclass
class BuildReport:
    version: int = 0
    built_seq: int = 0
    indexed: int = 0
    removed: int = 0
    keywords: int = 0
    embedded: dict[str, int] = field(default_factory=dict)
    seeded: dict[str, int] = field(default_factory=dict)  # vectors taken from the bundled seeds
    docs: int = 0
    seconds: float = 0.0
    published: bool = False
    # wall seconds per phase ("bm25", "keywords", "embed <model>"): where a build's time goes
    phases: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        emb = ", ".join(f"{k}: {v}" + (f" (+{self.seeded[k]} seeded)" if self.seeded.get(k) else "")
                        for k, v in self.embedded.items()) or "skipped"
        return (
            f"index version {self.version}: {self.indexed} indexed, {self.removed} removed, "
            f"{self.keywords} keyword sets, embedded ({emb}); {self.docs} docs in {self.seconds:.1f}s"
        )


def embedding_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}".strip()


def _changed_seqs(db: Engine, after_seq: int) -> list[int]:
    """The seq of every row changed since ``after_seq``, ascending (8 bytes a paper)."""
    with db.connect() as conn:
        return list(conn.execute(select(Paper.seq).where(Paper.seq > after_seq).order_by(Paper.seq)).scalars())


def _spans(seqs: list[int], after: int, size: int) -> list[tuple[int, int]]:
    """Consecutive half-open seq ranges ``(lo, hi]`` of ``size`` rows each, covering ``seqs``."""
    spans = []
    lo = after
    for i in range(size - 1, len(seqs) + size - 1, size):
        hi = seqs[min(i, len(seqs) - 1)]
        spans.append((lo, hi))
        lo = hi
    return spans


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
    ``full=True`` reprocesses every row (after a tokenizer change, say) and rebuilds the
    embedding stores' ANN graphs (after a change of graph parameters); vectors whose text
    did not change are kept, never re-embedded.
    """
    if lock:
        with run_lock(settings, "index"):
            return _build(settings, embeddings=embeddings, progress=progress, device=device, full=full)
    return _build(settings, embeddings=embeddings, progress=progress, device=device, full=full)


def _build(settings: Settings, *, embeddings: bool, progress: bool, device: str | None, full: bool) -> BuildReport:
    t0 = time.perf_counter()
    db = open_database(settings)
    before = verify_published(settings)
    prev = current_manifest(settings)
    republish = before.manifest_broken  # never leave a corrupt manifest as the published one
    if before.manifest_broken:
        # the new version is numbered above every version readers may have seen
        seen = _salvaged_version(settings.index_dir, db)
        if prev.version == 0:  # no readable manifest at all: nothing says what the index holds
            prev, full = Manifest(version=seen), True
        else:
            prev.version = max(prev.version, seen)
    report = BuildReport()
    run_id = _start_run(db)
    try:
        bm25, rebuilt = _open_bm25_for_build(settings, prev)
    except BaseException:
        _fail_run(db, run_id)
        raise
    try:
        report = _build_into(settings, db, bm25, prev, report, run_id, t0, embeddings=embeddings,
                             progress=progress, device=device, full=full or rebuilt, republish=republish)
    except BaseException:
        bm25.rollback()  # release tantivy's writer lock; committed versions stay intact
        _fail_run(db, run_id)
        raise
    bm25.close()
    after = verify_published(settings)
    if not after.ok:
        raise IndexUnavailable(f"the published index version {report.version} does not verify: {after.summary()}")
    return report


def _salvaged_version(index_dir: Path, db: Engine) -> int:
    """The highest version number published so far, as far as it can still be read: in the
    broken manifests, and in the log rows of successful builds ("index version N: ...")."""
    with db.connect() as conn:
        messages = conn.execute(
            select(IngestRun.message).where(IngestRun.kind == "build", IngestRun.status == "ok")
        ).scalars()
        found = [int(m.group(1)) for msg in messages if msg and (m := re.match(r"index version (\d+)", msg))]
    found.append(0)
    for name in (MANIFEST_NAME, PREVIOUS_NAME):
        try:
            text = (index_dir / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found += [int(v) for v in re.findall(r'"version"\s*:\s*(\d{1,9})', text)]
    return max(found)


def _open_bm25_for_build(settings: Settings, prev: Manifest):
    """The BM25 index to build into, and whether it must be rebuilt from every row.

    A directory that cannot be opened (a truncated or corrupt segment) is moved aside to
    ``<its name>.broken`` (the last one is kept for a post-mortem) and a fresh index is built; a
    missing or emptied index under a published version that had papers is rebuilt too.
    Errors of the disk itself (permissions, disk full) are not "corrupt": they propagate.
    """
    path = bm25_path(settings)
    try:
        bm25 = BM25Index.open(path)
    except StorageError as e:
        if not isinstance(e.__cause__, ValueError) or "Permission" in str(e.__cause__):
            raise
        aside = path.with_name(path.name + ".broken")
        log.error("%s; moving it to %s and rebuilding the BM25 index from the database", e.message, aside)
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(path, aside)
        return BM25Index.open(path), True
    if prev.docs and bm25.num_docs == 0:
        log.error("the BM25 index is empty but version %d has %d papers: rebuilding it from the database",
                  prev.version, prev.docs)
        return bm25, True
    return bm25, False


@dataclass
class _Changes:
    """The rows a build works on: those with ``after < seq <= max_seq`` (``seqs``, freed
    once the keyword phase has cut them into tasks), the withdrawn ones among them, and
    the term document counts of a fresh index (None when the index was updated in place)."""

    after: int
    max_seq: int
    seqs: list[int]
    removed: list[str] = field(default_factory=list)
    terms: Counter | None = None


def _build_into(settings: Settings, db: Engine, bm25, prev: Manifest, report: BuildReport, run_id: int,
                t0: float, *, embeddings: bool, progress: bool, device: str | None, full: bool,
                republish: bool = False) -> BuildReport:
    """The build's phases in order (BM25, keywords, embeddings), then :func:`_publish`."""
    rebuild_bm25 = bm25.stale  # written by another tokenizer/schema version: re-index every row
    if rebuild_bm25:
        full = True
    changes = _index_phase(db, bm25, prev, report, full=full, rebuild=rebuild_bm25)
    _keyword_phase(db, bm25, changes, report)
    emb_info = _embedding_phase(settings, db, prev, report, changes, embeddings=embeddings, progress=progress,
                                device=device, full=full)
    return _publish(settings, db, prev, report, run_id, t0, changes.max_seq, emb_info, full=full,
                    republish=republish)


def _index_phase(db: Engine, bm25, prev: Manifest, report: BuildReport, *, full: bool,
                 rebuild: bool) -> _Changes:
    """Tokenise the changed rows into the BM25 index (in a pool for a large build) and
    commit it; ``rebuild``: the index was stale, stamp it current once rebuilt."""
    after = 0 if full else prev.built_seq
    # a full build, or the first one: every live row goes into an empty (or cleared) index,
    # so papers are added without a delete by id each, by a bulk writer, and their terms
    # are counted on the way (the keyword step's document frequencies, exact)
    fresh = full or bm25.num_docs == 0
    seqs = _changed_seqs(db, after)
    changes = _Changes(after=after, max_seq=seqs[-1] if seqs else after, seqs=seqs,
                       terms=Counter() if fresh else None)
    t_bm25, c_bm25 = time.perf_counter(), _cpu_seconds()
    workers = _workers(len(seqs))
    spans = _spans(seqs, after, INDEX_TASK)
    with _task_pool(workers, _index_worker_init, (_db_url(db), fresh)) as pool:
        if fresh:  # after the fork: the workers never hold a copy of a live tantivy writer
            bm25.begin_bulk(clear=bm25.num_docs > 0)
        if pool is None:
            tasks = _IndexTasks(db, count_terms=fresh)
            results: Iterable = (tasks.run(span) for span in spans)
        else:
            results = pool.imap(_index_worker_run, spans)
        for i, (docs, gone, counts) in enumerate(results, 1):
            if docs:
                report.indexed += bm25.add_prepared(docs, replace=not fresh)
            changes.removed += gone
            if changes.terms is not None and counts:
                changes.terms.update(counts)
            if i % 100 == 0:
                log.info("bm25: %d papers %s", report.indexed, "added" if fresh else "upserted")
    if changes.removed:
        report.removed = bm25.delete(changes.removed)
    bm25.commit()
    if rebuild:
        bm25.mark_current()
    report.docs = bm25.num_docs
    report.phases["bm25"] = round(time.perf_counter() - t_bm25, 2)
    log.info("bm25: %d %s, %d removed, %d docs in %.1fs (%.1f CPU s, workers included)", report.indexed,
             "added" if fresh else "upserted", report.removed, report.docs, time.perf_counter() - t_bm25,
             _cpu_seconds() - c_bm25)
    return changes


def _keyword_phase(db: Engine, bm25, changes: _Changes, report: BuildReport) -> None:
    """Keywords for the changed rows (document frequencies from the phase before)."""
    t_kw, c_kw = time.perf_counter(), _cpu_seconds()
    report.keywords = _store_keywords(db, bm25, _spans(changes.seqs, changes.after, KEYWORD_TASK),
                                      changes.removed, live=report.indexed, terms=changes.terms)
    changes.seqs = []  # 8 bytes a paper, no longer needed
    report.phases["keywords"] = round(time.perf_counter() - t_kw, 2)
    log.info("keywords: %d papers in %.1fs (%.1f CPU s, workers included)", report.keywords,
             time.perf_counter() - t_kw, _cpu_seconds() - c_kw)


def _embedding_phase(settings: Settings, db: Engine, prev: Manifest, report: BuildReport, changes: _Changes, *,
                     embeddings: bool, progress: bool, device: str | None, full: bool) -> dict[str, dict[str, Any]]:
    """Bring the dense spaces up to date (or, with ``embeddings=False``, only take the
    withdrawn papers out of the published ones); the manifest's embedding entries."""
    emb_info = dict(prev.embeddings)
    if embeddings:
        tracker = ProgressWriter(settings.index_dir, dense_models(settings))
        try:
            _embed_models(settings, db, prev, report, emb_info, changes.removed, changes.after, changes.max_seq,
                          progress=progress, device=device, full=full, tracker=tracker)
        except BaseException as e:
            tracker.fail(f"{type(e).__name__}: {e}")
            raise
        tracker.close()
    elif changes.removed:  # keep withdrawn papers out of dense results even without re-embedding
        _remove_from_stores(settings, emb_info, changes.removed)
    return emb_info


def _remove_from_stores(settings: Settings, emb_info: dict[str, dict[str, Any]], removed: list[str]) -> None:
    """Drop ``removed`` from every published store (a store that no longer loads is left
    out of the manifest until the next build with embeddings)."""
    for model in list(emb_info):
        store = EmbeddingStore(embeddings_path(settings, model), model)
        try:
            store.load(emb_info[model])
        except IndexUnavailable as e:
            log.error("%s; dropping %s until the next build with embeddings", e, model)
            del emb_info[model]
            continue
        store.remove(removed)
        emb_info[model] = {**emb_info[model], **store.save()}


def _publish(settings: Settings, db: Engine, prev: Manifest, report: BuildReport, run_id: int, t0: float,
             max_seq: int, emb_info: dict[str, dict[str, Any]], *, full: bool, republish: bool) -> BuildReport:
    """Write the new manifest (the version readers switch to) unless nothing changed, and
    close the build's run row."""
    did_work = report.indexed or report.removed or report.keywords or any(report.embedded.values()) or emb_info != prev.embeddings
    if not did_work and prev.version and not full and not republish:
        report.version, report.built_seq, report.docs = prev.version, prev.built_seq, prev.docs
        report.seconds = time.perf_counter() - t0
        _finish_run(db, run_id, report)
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
    _finish_run(db, run_id, report)
    return report


def _embed_models(settings: Settings, db: Engine, prev: Manifest, report: BuildReport, emb_info: dict,
                  removed: list[str], after: int, max_seq: int, *, progress: bool, device: str | None, full: bool,
                  tracker) -> None:
    """Bring every dense space up to date: vectors for new or changed papers, taken from
    the bundled seeds (:mod:`indexer.dense.embedding_seeds`) where their content hash matches,
    embedded otherwise; ``tracker`` (:class:`indexer.embed_progress.ProgressWriter`)
    records how far it is for the service to show. Fills ``emb_info`` for the manifest."""
    for model in dense_models(settings):
        t_emb = time.perf_counter()
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
        pairs = _live_hashes(db) if from_scratch else _live_hashes(db, after=after, upto=max_seq)
        todo = store.missing(pairs)
        wanted = len(todo)
        dev = device or settings.embedding_device
        if todo:  # checked with the query encoder: for MiniLM no torch to import when all are seeded
            query_embedder = functools.partial(get_query_embedder, model, device=dev,
                                               precision=settings.embed_precision, threads=settings.embed_threads)
            todo = apply_seeds(store, query_embedder, todo, dict(pairs), functools.partial(_embedding_items, db))
        del pairs
        embedder = dense.get_embedder(model, device=dev, precision=settings.embed_precision,
                                      threads=settings.embed_threads) if todo else None
        tracker.start_model(model, wanted, seeded=wanted - len(todo))
        advance = functools.partial(tracker.advance, model)
        n = embed_papers(store, embedder, _embedding_items(db, todo), total=len(todo), progress=progress,
                         on_progress=advance) if todo and embedder else 0
        if full and store.rebuild_index():  # the graph too, with the current parameters
            log.info("%s: ANN graph rebuilt over %d vectors", model, len(store))
        info = store.save()
        tracker.finish_model(model)
        emb_info[model] = {"dir": str(embeddings_path(settings, model).relative_to(settings.index_dir)), **info}
        report.embedded[model] = n
        report.seeded[model] = wanted - len(todo)
        report.phases[f"embed {model}"] = round(time.perf_counter() - t_emb, 2)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (keyword workers):
    on a shared machine, the work a step did rather than how long it waited."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _live_hashes(db: Engine, after: int = 0, upto: int | None = None) -> list[tuple[str, str]]:
    """(id, content hash) of the live papers (in a seq range): what the embedding stores
    compare against, without the texts (at 1M the texts alone are ~1.5 GB of strings)."""
    q = select(Paper.id, Paper.content_hash).where(Paper.withdrawn.is_(False))
    if after:
        q = q.where(Paper.seq > after)
    if upto is not None:
        q = q.where(Paper.seq <= upto)
    with db.connect() as conn:
        return [(r.id, r.content_hash) for r in conn.execute(q)]


def _embedding_items(db: Engine, ids: Sequence[str], batch: int = EMBED_FETCH) -> Iterator[tuple[str, str, str]]:
    """(id, content hash, embedding text) of ``ids``, read ``batch`` papers at a time, so a
    from-scratch embedding build holds one batch of texts instead of every paper's."""
    for start in range(0, len(ids), batch):
        part = list(ids[start : start + batch])
        q = select(Paper.id, Paper.content_hash, Paper.title, Paper.abstract).where(Paper.id.in_(part))
        with db.connect() as conn:
            found = {r.id: r for r in conn.execute(q)}
        for pid in part:
            r = found.get(pid)
            if r is not None:  # deleted since the hashes were read: nothing to embed
                yield r.id, r.content_hash, embedding_text(r.title, r.abstract)


# -- worker processes ------------------------------------------------------------------------
# The two costly steps of a large build are pure Python: tokenising every paper for the
# index (~150 µs a paper) and extracting its keywords (~300 µs). Both run as independent
# tasks over seq ranges of the changed rows: a task reads its rows itself and returns
# plain values (tokenised fields; keyword rows as JSON text). Large builds run the tasks
# in a pool of forked processes, so the parent only feeds tantivy and writes SQLite;
# small (nightly) builds run them inline.


def _workers(n_rows: int) -> int:
    """Processes for a step over ``n_rows`` rows; 0 = inline. A pool needs ``fork`` (Linux):
    ``spawn`` would re-import the caller's ``__main__``, which a script without a main guard
    turns into one more build per worker."""
    cpus = os.cpu_count() or 1
    if n_rows < POOL_MIN or cpus < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(WORKERS, cpus)


@contextmanager
def _task_pool(workers: int, initializer, initargs: tuple):
    """A fork pool of ``workers`` processes (None when 0). Fork: workers inherit what the
    parent holds (the frequency table) without a copy; the caller makes sure no tantivy
    writer is mid-commit and workers never use the parent's database connections."""
    if not workers:
        yield None
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=initializer, initargs=initargs) as pool:
        yield pool


def _db_url(db: Engine) -> str:
    return db.url.render_as_string(hide_password=False)


class _IndexTasks:
    """Tokenise the rows of a seq range for the index."""

    def __init__(self, db: Engine, *, count_terms: bool):
        self.db = db
        self.count_terms = count_terms
        self.tokenizer = default_tokenizer()

    def run(self, span: tuple[int, int]) -> tuple[list, list[str], Counter | None]:
        """``(prepared docs, ids of withdrawn rows, term document counts or None)`` for the
        rows with ``lo < seq <= hi``, in seq order."""
        lo, hi = span
        cols = (Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.categories, Paper.published, Paper.withdrawn)
        with self.db.connect() as conn:
            rows = conn.execute(select(*cols).where(Paper.seq > lo, Paper.seq <= hi).order_by(Paper.seq)).all()
        counts: Counter | None = Counter() if self.count_terms else None
        docs, removed = [], []
        tok = self.tokenizer
        for r in rows:
            if r.withdrawn:
                removed.append(r.id)
                continue
            d = IndexedDoc(id=r.id, title=r.title, abstract=r.abstract, authors=list(r.authors or []),
                           categories=list(r.categories or []), published=r.published)
            docs.append(prepare_document(d, tok, counts))
        return docs, removed, counts


class _CountedTerms:
    """Term document frequencies counted while a full build indexed every paper: the same
    numbers the fresh index's ``doc_freq`` gives, as a dict (no index query per term)."""

    def __init__(self, num_docs: int, counts: Mapping[str, int]):
        self.num_docs = num_docs
        self.counts = counts

    def doc_freq(self, term: str) -> int:
        return self.counts.get(term, 0)


class _KeywordTasks:
    """Keywords for the changed rows of a seq range."""

    def __init__(self, db: Engine, extractor):
        self.db = db
        self.extractor = extractor

    def run(self, span: tuple[int, int]) -> list[tuple[str, str, str]]:
        """Rows ``(paper_id, content_hash, keywords_json)`` for the live papers with
        ``lo < seq <= hi`` whose stored keywords are missing or were computed for other content."""
        lo, hi = span
        q = (
            select(Paper.id, Paper.content_hash, Paper.title, Paper.abstract, PaperKeywords.content_hash.label("kw_hash"))
            .select_from(Paper)
            .outerjoin(PaperKeywords, PaperKeywords.paper_id == Paper.id)
            .where(Paper.seq > lo, Paper.seq <= hi, Paper.withdrawn.is_(False))
            .order_by(Paper.seq)
        )
        with self.db.connect() as conn:
            rows = conn.execute(q).all()
        extract = self.extractor.extract
        dumps = json.dumps
        out = []
        for pid, h, title, abstract, kw_hash in rows:
            if kw_hash == h:
                continue
            kws = extract(abstract, k=KEYWORDS_PER_PAPER, title=title)
            out.append((pid, h, dumps([k.to_stored() for k in kws])))
        return out


_worker_tasks: _IndexTasks | _KeywordTasks | None = None


def _index_worker_init(db_url: str, count_terms: bool) -> None:
    """Pool initializer: its own database engine (never the parent's pooled connections)."""
    global _worker_tasks
    _worker_tasks = _IndexTasks(make_engine(db_url), count_terms=count_terms)


def _index_worker_run(span: tuple[int, int]):
    assert isinstance(_worker_tasks, _IndexTasks)
    return _worker_tasks.run(span)


def _keyword_worker_init(db_url: str, num_docs: int, counts: Mapping[str, int] | None, bm25_dir: str | None) -> None:
    """Pool initializer: its own database engine and extractor. Document frequencies come
    from the parent once: the table counted by a full build (inherited by the fork), or
    else the committed index, opened read-only here."""
    global _worker_tasks
    if counts is not None:
        dfs = DocFreqs.from_index(_CountedTerms(num_docs, counts))
    else:
        assert bm25_dir is not None, "the pool gets either counted terms or the index path"
        dfs = DocFreqs.from_index(BM25Index.open(bm25_dir, readonly=True))
    _worker_tasks = _KeywordTasks(make_engine(db_url), KeywordExtractor(dfs))


def _keyword_worker_run(span: tuple[int, int]) -> list[tuple[str, str, str]]:
    assert isinstance(_worker_tasks, _KeywordTasks)
    return _worker_tasks.run(span)


def _store_keywords(db: Engine, bm25, spans: list[tuple[int, int]], removed: list[str], *,
                    live: int, terms: Counter | None = None) -> int:
    """Compute and store keywords for the changed papers in ``spans`` (seq ranges),
    skipping those whose stored keywords match their content hash. ``terms``: the term
    counts of a fresh index (else its frequencies are read from ``bm25``)."""
    if not spans and not removed:
        return 0
    with db.begin() as conn:
        for start in range(0, len(removed), 900):
            conn.execute(delete(PaperKeywords).where(PaperKeywords.paper_id.in_(removed[start : start + 900])))
        empty = conn.execute(select(PaperKeywords.paper_id).limit(1)).first() is None
    if not spans or not live:
        return 0
    n = 0
    pending: list[tuple[str, str, str]] = []
    workers = _workers(live)
    initargs = (_db_url(db), bm25.num_docs, terms, None if terms is not None else str(bm25.path))
    with _task_pool(workers, _keyword_worker_init, initargs) as pool:
        if pool is None:
            if terms is not None and bm25.num_docs:
                dfs = DocFreqs.from_index(_CountedTerms(bm25.num_docs, terms))
            else:
                dfs = DocFreqs.from_index(bm25) if bm25.num_docs else DocFreqs.shipped()
            tasks = _KeywordTasks(db, KeywordExtractor(dfs))
            results: Iterable = (tasks.run(span) for span in spans)
        else:
            results = pool.imap(_keyword_worker_run, spans)
        for rows in results:
            pending += rows
            if len(pending) >= 5000:
                _write_keywords(db, pending, replace=not empty)
                n += len(pending)
                pending = []
                if n % 100_000 < 5000:
                    log.info("keywords: %d papers", n)
    if pending:
        _write_keywords(db, pending, replace=not empty)
        n += len(pending)
    return n


def _write_keywords(db: Engine, rows: list[tuple[str, str, str]], *, replace: bool) -> None:
    """Insert keyword rows (keywords already JSON text) in one transaction; ``replace``
    first deletes the papers' old rows (not needed when the table started empty)."""
    with db.begin() as conn:
        if replace:
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), 900):
                conn.execute(delete(PaperKeywords).where(PaperKeywords.paper_id.in_(ids[start : start + 900])))
        if conn.dialect.name == "sqlite":  # the JSON column stores exactly this text
            conn.exec_driver_sql("INSERT INTO paper_keywords (paper_id, content_hash, keywords) VALUES (?, ?, ?)", rows)
        else:
            conn.execute(insert(PaperKeywords), [{"paper_id": p, "content_hash": h, "keywords": json.loads(k)} for p, h, k in rows])


def _start_run(db: Engine) -> int:
    return start_run(db, "build", "")


def _fail_run(db: Engine, run_id: int) -> None:
    finish_run(db, run_id, UpsertCounts(), "failed", best_effort=True)


def _finish_run(db: Engine, run_id: int, report: BuildReport) -> None:
    """A build's row: ``inserted`` = papers indexed, ``updated`` = keyword sets written,
    ``skipped`` = papers removed (the columns an ingest run fills with its counts)."""
    counts = UpsertCounts(inserted=report.indexed, updated=report.keywords, skipped=report.removed)
    finish_run(db, run_id, counts, "ok", report.summary())


def max_seq(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(Paper.seq), 0))).scalar_one())
