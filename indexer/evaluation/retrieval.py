"""Retrieval quality on BEIR-layout collections, measured through the product's own parts.

Why a throw-away index: ``papers eval retrieval`` must measure what users get, so the
BM25 side is our serving :class:`indexer.lexical.bm25.BM25Index` (same tokenizer, same query
parser, same title boost), built in a temporary directory so the main database and index
are never touched; the dense side is our :class:`EmbeddingStore`; hybrid is
:func:`indexer.search.fusion.hybrid`, the function the engine calls. Corpus vectors can be
cached (``cache_dir``) keyed by content hash, so repeated evaluations embed nothing.

Metrics (standard, implemented here and unit-tested on hand-computed examples):
nDCG@10 with graded gains and a log2 discount (trec_eval ``ndcg_cut``: gain = grade,
discount = log2(rank + 1)); recall@100 = judged-relevant docs in the top 100 / all
judged-relevant; MRR@10 = 1 / rank of the first relevant doc within the top 10, else 0.
Judgements with grade ≤ 0 count as not relevant. Means are over the queries that have
at least one relevant judgement; a query we answer with nothing scores 0.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.errors import IndexUnavailable, InvalidInput, InvalidQuery

MODES = ("bm25", "dense", "hybrid", "rank-bm25", "bm25s", "fts5")
BASELINES = ("rank-bm25", "bm25s", "fts5")  # measured beside ours, with the same scorer
CANDIDATES = 200  # per retriever before fusion, as in the engine
RUN_DEPTH = 100  # TREC run and recall depth

Run = list[tuple[str, float]]


@dataclass
class BeirData:
    name: str
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]  # only queries with judgements
    qrels: dict[str, dict[str, int]]  # qid -> {doc id: grade}


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise InvalidInput(f"{path}:{n}: not valid JSON ({e})") from e
            if not isinstance(obj, dict):
                raise InvalidInput(f"{path}:{n}: expected a JSON object")
            out.append(obj)
    return out


def load_beir(directory: str | Path, split: str = "test") -> BeirData:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""
    d = Path(directory)
    corpus_p, queries_p, qrels_p = d / "corpus.jsonl", d / "queries.jsonl", d / "qrels" / f"{split}.tsv"
    for p in (corpus_p, queries_p, qrels_p):
        if not p.is_file():
            raise InvalidInput(f"{d} is not a BEIR directory: {p.relative_to(d)} is missing")
    corpus = _read_corpus(corpus_p)
    all_queries = {str(o["_id"]): str(o.get("text") or "") for o in _read_jsonl(queries_p) if "_id" in o}
    qrels = _read_qrels(qrels_p)
    qrels = {q: r for q, r in qrels.items() if q in all_queries and any(g > 0 for g in r.values())}
    queries = {q: all_queries[q] for q in all_queries if q in qrels}
    if not corpus:
        raise InvalidInput(f"{corpus_p} holds no documents")
    if not queries:
        raise InvalidInput(f"{d}: no query has a relevant judgement in {qrels_p.name}")
    return BeirData(d.name, corpus, queries, qrels)


def _read_corpus(corpus_p: Path) -> dict[str, tuple[str, str]]:
    """``corpus.jsonl`` as id -> (title, text); a document without ``_id`` is an error."""
    corpus: dict[str, tuple[str, str]] = {}
    for n, obj in enumerate(_read_jsonl(corpus_p), 1):
        if "_id" not in obj:
            raise InvalidInput(f"{corpus_p}:{n}: document without _id")
        corpus[str(obj["_id"])] = (str(obj.get("title") or ""), str(obj.get("text") or ""))
    return corpus


def _read_qrels(qrels_p: Path) -> dict[str, dict[str, int]]:
    """``qrels/<split>.tsv`` as query id -> {doc id: grade} (header and blank lines skipped;
    a short line or a score that is not a number is an error naming the line)."""
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts[0] == "query-id":
                continue
            if len(parts) < 3 or not line.strip():
                if line.strip():
                    raise InvalidInput(f"{qrels_p}:{n}: expected query-id<TAB>corpus-id<TAB>score")
                continue
            try:
                grade = int(float(parts[2]))
            except ValueError as e:
                raise InvalidInput(f"{qrels_p}:{n}: score {parts[2]!r} is not a number") from e
            qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


# -- metrics ------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    gains = [max(0, judged.get(doc, 0)) for doc in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if judged.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_runs(runs: Mapping[str, Sequence[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, recall@100 and MRR@10 over the judged queries (missing run = 0)."""
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid, judged in qrels.items():
        ranked = [d for d, _ in runs.get(qid, [])]
        totals["ndcg@10"] += ndcg_at_k(ranked, judged, 10)
        totals["recall@100"] += recall_at_k(ranked, judged, 100)
        totals["mrr@10"] += mrr_at_k(ranked, judged, 10)
    n = max(1, len(qrels))
    return {k: round(v / n, 4) for k, v in totals.items()}


def write_trec_run(runs: Mapping[str, Sequence[tuple[str, float]]], path: str | Path, tag: str, depth: int = RUN_DEPTH) -> None:
    """``qid Q0 docid rank score tag``, top ``depth`` per query, ranks from 1."""
    tag = re.sub(r"\s+", "_", tag) or "papers"
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(runs):
            for rank, (doc, score) in enumerate(runs[qid][:depth], 1):
                f.write(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}\n")


# -- retrievers -------------------------------------------------------------------------------


def doc_text(title: str, text: str) -> str:
    """What gets embedded: the same title + abstract text the build embeds."""
    return f"{title}. {text}".strip() if title else text.strip()


def content_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Bm25Runner:
    """Our serving BM25 index over the collection, in a directory that is thrown away."""

    def __init__(self, data: BeirData, directory: Path, *, feedback: bool = True, translate: bool = True):
        from indexer.lexical.bm25 import BM25Index, IndexedDoc

        self.corpus = data.corpus
        self.feedback = feedback
        self.translate = translate

        self.index = BM25Index.open(directory / "bm25")
        batch = []
        for pid, (title, text) in data.corpus.items():
            batch.append(IndexedDoc(id=pid, title=title, abstract=text))
            if len(batch) >= 5000:
                self.index.upsert(batch)
                batch = []
        if batch:
            self.index.upsert(batch)
        self.index.commit()
        self.index.reload()
        self.fallbacks = 0

    def search(self, query: str, limit: int = CANDIDATES) -> tuple[Run, str, float, float]:
        """(BM25 run, text for the dense side, lexical evidence, BM25's fusion weight), exactly as the engine
        parses a query; a query the parser refuses is searched as a bag of its terms."""
        from indexer.lexical import ranking as lexical
        from indexer.lexical.query import parse_query
        from indexer.search import fusion
        from indexer.text import zh_en

        try:
            parsed = parse_query(query)
        except InvalidQuery:
            self.fallbacks += 1
            terms = self.index.tokenizer.tokenize(query)
            run = [(h.id, h.score) for h in self.index.search_tokens(terms, limit=limit)]
            return run, query, fusion.lexical_evidence(terms, self.index.doc_freq, self.index.num_docs), fusion.LEX_WEIGHT
        tr = zh_en.translate(parsed.text) if self.translate else None
        res = lexical.rank(self.index, parsed, texts=self._texts, limit=limit, feedback=self.feedback,
                           translated=tr.units if tr else ())
        evidence = fusion.query_evidence(parsed, self.index.doc_freq, self.index.num_docs,
                                    tr.weights if tr else None, tr.coverage if tr else 0.0)
        return [(h.id, h.score) for h in res.hits], parsed.text, evidence, fusion.lex_weight(bool(tr))

    def _texts(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(title, text) of documents, as the engine reads them from its database."""
        return {i: self.corpus[i] for i in ids if i in self.corpus}

    def close(self) -> None:
        close = getattr(self.index, "close", None)
        if close:
            close()


def corpus_store(
    data: BeirData,
    model: str,
    *,
    cache_dir: str | Path | None,
    work_dir: Path,
    device: str = "cpu",
    progress: bool = False,
    batch_size: int = 32,
    precision: str = "auto",
    threads: int = 0,
):
    """An EmbeddingStore of the collection (ids = doc ids) for ``model``.

    With ``cache_dir``, vectors come from ``cache_dir/<model>`` keyed by the content hash
    of the embedded text; only texts not seen before are embedded, then the cache is saved.
    """
    from indexer.dense.embeddings import EmbeddingStore, embed_papers, get_embedder

    texts = {pid: doc_text(t, x) for pid, (t, x) in data.corpus.items()}
    keys = {pid: content_key(txt) for pid, txt in texts.items()}
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
    cache = EmbeddingStore(Path(cache_dir) / safe if cache_dir else work_dir / f"cache-{safe}", model)
    if cache_dir:
        cache.load()
    need = {keys[p]: texts[p] for p in texts}
    items = [(k, k, t) for k, t in need.items()]
    embedded = 0
    if cache.missing((k, k) for k, _, _ in items):
        embedder = get_embedder(model, device=device, precision=precision, threads=threads)
        embedded = embed_papers(cache, embedder, items, batch_size=batch_size, checkpoint_every=512, progress=progress)
        if cache_dir:
            cache.save()
    store = EmbeddingStore(work_dir / f"store-{safe}", model)
    ids = list(texts)
    import numpy as np

    rows = [cache.vector(keys[p]) for p in ids]
    missing = [p for p, v in zip(ids, rows, strict=True) if v is None]
    if missing:  # every text was embedded above; a gap means a corrupt cache
        raise IndexUnavailable(f"embedding cache for {model} lacks {len(missing)} documents, e.g. {missing[0]}")
    vecs = np.stack([v for v in rows if v is not None]) if ids else None
    if vecs is not None:
        store.add(ids, [keys[p] for p in ids], vecs)
    return store, embedded


def dense_model_for(text: str, model: str, multilingual_model: str | None) -> str:
    """The engine's routing rule: text with CJK characters goes to the multilingual model."""
    from indexer.text.tokenizer import has_cjk

    if multilingual_model and has_cjk(text):
        return multilingual_model
    return model


@dataclass
class RetrievalResult:
    metrics: dict[str, Any]
    runs: dict[str, Run] = field(default_factory=dict)


def rank_bm25_runs(data: BeirData, tokenize: Callable[[str], list[str]] | None = None, depth: int = RUN_DEPTH) -> dict[str, Run]:
    """Baseline: rank-bm25 ``BM25Okapi`` (k1=1.5, b=0.75) over title + text with plain
    lower-cased ``\\w+`` tokens (or ``tokenize``), as in the shared self-check script."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    if tokenize is None:
        word = re.compile(r"\w+")

        def tokenize(s: str) -> list[str]:
            return word.findall(s.lower())

    ids = list(data.corpus)
    bm = BM25Okapi([tokenize(f"{t} {x}") for t, x in (data.corpus[i] for i in ids)])
    out: dict[str, Run] = {}
    for qid, q in data.queries.items():
        scores = bm.get_scores(tokenize(q))
        top = np.argsort(-scores, kind="stable")[:depth]
        out[qid] = [(ids[i], float(scores[i])) for i in top if scores[i] > 0]
    return out


def bm25s_runs(data: BeirData, depth: int = RUN_DEPTH) -> dict[str, Run]:
    """Baseline: ``bm25s`` (k1=1.5, b=0.75, Lucene idf) with PyStemmer English stemming and
    bm25s's English stop words over title + text: the strong plain BM25 of issue #13."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = list(data.corpus)
    corpus_tokens = bm25s.tokenize([f"{t} {x}" for t, x in (data.corpus[i] for i in ids)], stopwords="en",
                                   stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    qids = list(data.queries)
    out: dict[str, Run] = {q: [] for q in qids}
    q_tokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    k = min(depth, len(ids))
    docs, scores = retriever.retrieve(q_tokens, k=k, show_progress=False, n_threads=1)
    for j, q in enumerate(qids):
        out[q] = [(ids[int(i)], float(s)) for i, s in zip(docs[j], scores[j], strict=True) if s > 0]
    return out


def fts5_runs(data: BeirData, depth: int = RUN_DEPTH) -> dict[str, Run]:
    """Baseline: SQLite FTS5 (``porter unicode61`` tokenizer, ``bm25()`` ranking) over title
    + text, each query's words OR-ed (quoted, so no word is read as FTS5 syntax)."""
    import sqlite3

    word = re.compile(r"\w+")
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, body, tokenize='porter unicode61')")
        db.executemany("INSERT INTO docs (id, body) VALUES (?, ?)", ((i, f"{t} {x}") for i, (t, x) in data.corpus.items()))
        out: dict[str, Run] = {}
        for qid, q in data.queries.items():
            words = list(dict.fromkeys(word.findall(q.lower())))
            if not words:
                out[qid] = []
                continue
            match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
            rows = db.execute("SELECT id, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
                              (match, depth)).fetchall()
            out[qid] = [(str(i), -float(s)) for i, s in rows]  # bm25() is lower-is-better
        return out
    finally:
        db.close()


@dataclass(frozen=True)
class _DenseOptions:
    """The dense side's settings of one :func:`evaluate_retrieval` call."""

    model: str
    multilingual_model: str | None
    fusion_method: str | None
    cache_dir: str | Path | None
    device: str
    progress: bool
    precision: str
    threads: int


def evaluate_retrieval(
    directory: str | Path,
    mode: str = "hybrid",
    *,
    model: str = "all-MiniLM-L6-v2",
    multilingual_model: str | None = "use-multilingual",
    fusion_method: str | None = None,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
    split: str = "test",
    precision: str = "auto",
    threads: int = 0,
) -> RetrievalResult:
    """Rank every judged query of a BEIR collection and score the ranking.

    ``fusion_method`` None uses :func:`indexer.search.fusion.hybrid` (the engine's ranking);
    ``rrf``/``zscore``/``minmax`` score plain :func:`indexer.search.fusion.fuse` variants.
    ``precision`` and ``threads``: the embedders' (``PAPERS_EMBED_PRECISION``/``_THREADS``,
    passed by the caller as the build passes them).
    """
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}")
    t0 = time.perf_counter()
    data = load_beir(directory, split)
    timings: dict[str, float] = {}
    extra: dict[str, Any] = {}
    opts = _DenseOptions(model, multilingual_model, fusion_method, cache_dir, device, progress, precision, threads)
    with tempfile.TemporaryDirectory(prefix="papers-eval-") as tmp:
        if mode in BASELINES:
            t = time.perf_counter()
            runs = bm25s_runs(data) if mode == "bm25s" else fts5_runs(data) if mode == "fts5" else rank_bm25_runs(data)
            timings[f"{mode.replace('-', '_')}_s"] = round(time.perf_counter() - t, 2)
        else:
            runs = _product_runs(data, mode, Path(tmp), opts, timings, extra)
    runs = {q: [(str(d), float(s)) for d, s in r[:RUN_DEPTH]] for q, r in runs.items()}
    metrics: dict[str, Any] = {**score_runs(runs, data.qrels), "queries": len(data.queries), "docs": len(data.corpus)}
    metrics.update({"dataset": data.name, "mode": mode, **extra, "timings": timings, "seconds": round(time.perf_counter() - t0, 2)})
    if mode in ("dense", "hybrid"):
        metrics["model"] = model
        metrics["multilingual_model"] = multilingual_model or ""
    return RetrievalResult(metrics, runs)


def _product_runs(data: BeirData, mode: str, work: Path, opts: _DenseOptions,
                  timings: dict[str, float], extra: dict[str, Any]) -> dict[str, Run]:
    """The runs of our own ``bm25``, ``dense`` or ``hybrid`` ranking (index and vectors
    under ``work``); ``timings`` and ``extra`` receive what the report shows beside them."""
    t = time.perf_counter()
    bm25 = Bm25Runner(data, work, feedback=mode == "bm25")  # hybrid's BM25 run has no feedback, as in the engine
    timings["bm25_index_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    lexical = {qid: bm25.search(q) for qid, q in data.queries.items()}
    timings["bm25_search_s"] = round(time.perf_counter() - t, 2)
    extra["query_fallbacks"] = bm25.fallbacks
    if mode == "bm25":
        runs = {qid: run for qid, (run, _, _, _) in lexical.items()}
    else:
        runs = _dense_or_hybrid_runs(data, mode, lexical, work, opts, timings, extra)
    bm25.close()
    return runs


def _dense_or_hybrid_runs(data: BeirData, mode: str, lexical: Mapping[str, tuple[Run, str, float, float]], work: Path,
                          opts: _DenseOptions, timings: dict[str, float], extra: dict[str, Any]) -> dict[str, Run]:
    """The dense runs (``mode`` dense) or their fusion with the ``lexical`` ones (hybrid)."""
    multilingual_model = opts.multilingual_model
    dense_text = {qid: (txt or data.queries[qid]) for qid, (_, txt, _, _) in lexical.items()}
    route = {qid: dense_model_for(txt, opts.model, multilingual_model) for qid, txt in dense_text.items()}
    # the engine's auxiliary run: the multilingual space beside MiniLM on
    # English queries (hybrid only)
    aux_qids = [q for q, m in route.items() if multilingual_model and m != multilingual_model] if mode == "hybrid" and not opts.fusion_method else []
    dense, aux, embedded = _dense_search(data, route, dense_text, aux_qids, work, opts, timings)
    extra["dense_models"] = {m: sum(1 for v in route.values() if v == m) for m in sorted(set(route.values()))}
    extra["aux_queries"] = len(aux_qids)
    extra["embedded_docs"] = embedded
    if mode == "dense":
        return dense
    from indexer.search import fusion

    runs: dict[str, Run] = {}
    for qid in data.queries:
        lex = lexical[qid][0]
        if opts.fusion_method:
            runs[qid] = [(str(d), sc) for d, sc in fusion.fuse([lex, dense.get(qid, [])], method=opts.fusion_method)]
        else:
            runs[qid] = [(str(d), sc) for d, sc in fusion.hybrid(lex, dense.get(qid, []), query=dense_text[qid],
                                      evidence=lexical[qid][2], dense_model=route[qid],
                                      aux=aux.get(qid, []), aux_model=multilingual_model,
                                      lex_weight=lexical[qid][3])]
    extra["fusion"] = opts.fusion_method or "hybrid"
    return runs


def _dense_search(data: BeirData, route: Mapping[str, str], dense_text: Mapping[str, str], aux_qids: list[str],
                  work: Path, opts: _DenseOptions, timings: dict[str, float]) -> tuple[dict[str, Run], dict[str, Run], dict[str, int]]:
    """``(dense runs, auxiliary runs, docs embedded per model)``: the corpus embedded in each
    space a query is routed to (and the multilingual one for ``aux_qids``), each query
    searched in its space."""
    multilingual_model = opts.multilingual_model
    dense: dict[str, Run] = {}
    aux: dict[str, Run] = {}
    embedded: dict[str, int] = {}
    spaces = set(route.values()) | ({multilingual_model} if aux_qids and multilingual_model else set())
    for m in sorted(spaces):
        t = time.perf_counter()
        store, n = corpus_store(data, m, cache_dir=opts.cache_dir, work_dir=work, device=opts.device, progress=opts.progress,
                                precision=opts.precision, threads=opts.threads)
        embedded[m] = n
        timings[f"embed_corpus_s[{m}]"] = round(time.perf_counter() - t, 2)
        qids = [q for q in route if route[q] == m]
        # queries go through the encoder the service uses (numpy BERT on CPU)
        from indexer.dense.embeddings import get_query_embedder

        t = time.perf_counter()
        if qids:
            qv = get_query_embedder(m, device=opts.device, precision=opts.precision, threads=opts.threads).encode([dense_text[q] for q in qids], batch_size=64)
            for qid, hits in zip(qids, store.search_many(qv, CANDIDATES), strict=True):
                dense[qid] = hits
        if m == multilingual_model and aux_qids:
            qv = get_query_embedder(m, device=opts.device, precision=opts.precision, threads=opts.threads).encode([dense_text[q] for q in aux_qids], batch_size=64)
            for qid, hits in zip(aux_qids, store.search_many(qv, CANDIDATES), strict=True):
                aux[qid] = hits
        timings[f"dense_search_s[{m}]"] = round(time.perf_counter() - t, 2)
    return dense, aux, embedded
