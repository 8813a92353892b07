"""Related-paper quality judged by citations (``papers eval related DIR``).

Layout (``../shared/data/eval/related_hepth_dev``): ``corpus.jsonl.gz`` in our JSONL import
format, ``queries.tsv`` (``query_id<TAB>title``: each query is a paper of the corpus) and
``qrels.tsv`` (``query_id<TAB>doc_id<TAB>relevance``: the papers it cites or that cite it).

Why through the whole product: the corpus is ingested by :func:`indexer.ingest.jsonl.ingest_jsonl`
into a throw-away data directory, indexed by :func:`indexer.pipeline.build.build`, and asked through
:class:`indexer.search.engine.SearchEngine` — ``related(id)`` (the related-papers page and API) and
``similar_text(title + abstract)`` (``/api/similar``) — so the figures are what users get,
old-style ids (``hep-th/9201001``) included. The query paper itself is never counted.
Metrics as in :mod:`indexer.evaluation.retrieval` (nDCG@10, recall@10, MRR@10; binary gains).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from indexer.errors import InvalidInput, NotFound
from indexer.evaluation.retrieval import Run, mrr_at_k, ndcg_at_k, recall_at_k
from indexer.ingest.jsonl import ingest_jsonl
from indexer.pipeline.build import build
from indexer.search.engine import SearchEngine
from indexer.settings import Settings

K = 10
DENSE_VARIANTS = (0.0, 0.25, 0.5, 1.0, 1.5)  # related's embedding weights compared when dense is built


def _read_tsv(path: Path, columns: int) -> list[list[str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts[0] in ("query_id", "query-id"):
                continue
            if not line.strip():
                continue
            if len(parts) < columns:
                raise InvalidInput(f"{path}:{n}: expected {columns} tab-separated columns")
            rows.append(parts)
    return rows


def load_related(directory: str | Path) -> tuple[Path, list[str], dict[str, dict[str, int]]]:
    """(corpus file, query paper ids, qrels) of a related-papers collection."""
    d = Path(directory)
    corpus = next((p for p in (d / "corpus.jsonl.gz", d / "corpus.jsonl") if p.is_file()), None)
    if corpus is None or not (d / "queries.tsv").is_file() or not (d / "qrels.tsv").is_file():
        raise InvalidInput(f"{d} is not a related-papers directory: it needs corpus.jsonl(.gz), queries.tsv and qrels.tsv")
    queries = [r[0] for r in _read_tsv(d / "queries.tsv", 1)]
    qrels: dict[str, dict[str, int]] = {}
    for q, doc, rel in _read_tsv(d / "qrels.tsv", 3):
        try:
            grade = int(float(rel))
        except ValueError as e:
            raise InvalidInput(f"{d / 'qrels.tsv'}: relevance {rel!r} is not a number") from e
        qrels.setdefault(q, {})[doc] = grade
    if not queries:
        raise InvalidInput(f"{d / 'queries.tsv'} holds no query")
    return corpus, queries, qrels


def score_related(runs: dict[str, Run], queries: list[str], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Means over all queries (a query without answers scores 0)."""
    tot = {"ndcg@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
    for q in queries:
        ranked = [d for d, _ in runs.get(q, [])][:K]
        judged = qrels.get(q, {})
        tot["ndcg@10"] += ndcg_at_k(ranked, judged, K)
        tot["recall@10"] += recall_at_k(ranked, judged, K)
        tot["mrr@10"] += mrr_at_k(ranked, judged, K)
    n = max(1, len(queries))
    return {k: round(v / n, 4) for k, v in tot.items()}


def evaluate_related(directory: str | Path, *, embeddings: bool = True, progress: bool = False,
                     device: str | None = None, work_dir: str | Path | None = None) -> tuple[dict[str, Any], dict[str, Run], dict[str, Run]]:
    """(metrics, related runs, similar-text runs) for a related-papers collection."""

    corpus, queries, qrels = load_related(directory)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="papers-eval-related-", dir=work_dir) as tmp:
        settings = Settings(data_dir=Path(tmp), database_url="")
        t = time.perf_counter()
        report = ingest_jsonl(settings, corpus, progress=progress)
        timings["ingest_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        build(settings, embeddings=embeddings, progress=progress, device=device)
        timings["build_s"] = round(time.perf_counter() - t, 2)
        engine = SearchEngine(settings)
        related: dict[str, Run] = {}
        similar: dict[str, Run] = {}
        missing = 0
        t = time.perf_counter()
        for q in queries:
            try:
                related[q] = [(h.id, h.score) for h in engine.related(q, k=K) if h.id != q][:K]
            except NotFound:
                missing += 1
        timings["related_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        for q in queries:
            try:
                src = engine.paper(q)
            except NotFound:
                continue
            text = f"{src['title']}\n{src['abstract']}"
            similar[q] = [(h.id, h.score) for h in engine.similar_text(text, k=K + 1) if h.id != q][:K]
        timings["similar_s"] = round(time.perf_counter() - t, 2)
        dense = sorted(engine._require().stores)  # what the related ranking fused
        variants: dict[str, dict[str, float]] = {}
        if dense:  # how much the embedding neighbours add, for docs/quality.md
            for w in DENSE_VARIANTS:
                runs = {q: [(h.id, h.score) for h in engine.related(q, k=K, dense_weight=w) if h.id != q][:K]
                        for q in queries if q in related}
                sims = {}
                for q in queries:
                    if q in related:
                        src = engine.paper(q)
                        sims[q] = [(h.id, h.score) for h in engine.similar_text(f"{src['title']}\n{src['abstract']}", k=K + 1,
                                                                                 dense_weight=w) if h.id != q][:K]
                variants[f"dense_weight={w}"] = {"related": score_related(runs, queries, qrels)["ndcg@10"],
                                                 "similar": score_related(sims, queries, qrels)["ndcg@10"]}
        engine.db.dispose()
    metrics: dict[str, Any] = {
        "dataset": Path(directory).name,
        "queries": len(queries),
        "docs": report.inserted + report.updated + report.unchanged,
        "missing_queries": missing,
        "related": score_related(related, queries, qrels),
        "similar": score_related(similar, queries, qrels),
        "dense_models": dense,
        "dense_weight_variants": variants,
        "timings": timings,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return metrics, related, similar
