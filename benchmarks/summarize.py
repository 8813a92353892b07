"""Side-by-side growth table from several report.json files (one per corpus size).

    python -m benchmarks.summarize data/bench/reports/*/report.json [--merge-out DIR]

Why: docs/performance.md shows how each cost grows with corpus size; this prints that
table from the reports instead of copying numbers by hand. Reports of the same corpus
(e.g. a long 1M run split with ``--only`` into parts) are merged first — later files win
per bench — and their targets re-evaluated; ``--merge-out`` writes each merged report
to DIR/<corpus>/report.{md,json}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.targets import _get

ROWS = [
    ("papers in corpus", ("records",)),
    ("tokenizer MB/s (cold cache)", ("results", "tokenizer", "ours_mb_s")),
    ("tokenizer baseline regex+lower MB/s", ("results", "tokenizer", "baseline_regex_lower_mb_s")),
    ("ingest (papers ingest jsonl) rows/s", ("results", "ingest", "import", "rows_per_s")),
    ("ingest baseline Core INSERT rows/s", ("results", "ingest", "baseline_core_insert", "rows_per_s")),
    ("ingest peak RSS MB", ("results", "ingest", "import", "peak_rss_mb")),
    ("SQLite file MB", ("results", "ingest", "import", "db_mb")),
    ("full build excl. embeddings s", ("results", "build", "full_build_excl_embeddings", "seconds")),
    ("… of which BM25 index s", ("results", "build", "full_build_excl_embeddings", "phases_s", "bm25")),
    ("… of which keywords s", ("results", "build", "full_build_excl_embeddings", "phases_s", "keywords")),
    ("full build CPU s (workers included)", ("results", "build", "full_build_excl_embeddings", "cpu_total_s")),
    ("full build peak RSS MB (main process)", ("results", "build", "full_build_excl_embeddings", "peak_rss_mb")),
    ("index dir MB (BM25 + manifest)", ("results", "build", "full_build_excl_embeddings", "index_mb")),
    ("fake-embedding build s (vectors + graph)", ("results", "build", "fake_embeddings_build", "seconds")),
    ("BM25 1-word p50 ms", ("results", "search", "1w", "p50_ms")),
    ("BM25 3-word p50 ms", ("results", "search", "3w", "p50_ms")),
    ("BM25 3-word p99 ms", ("results", "search", "3w", "p99_ms")),
    ("BM25 10-word p50 ms", ("results", "search", "10w", "p50_ms")),
    ("BM25 60-token p50 ms", ("results", "search", "60t", "p50_ms")),
    ("rank-bm25 3-word p50 ms", ("results", "rank-bm25", "3w", "p50_ms")),
    ("rank-bm25 60-token p50 ms", ("results", "rank-bm25", "60t", "p50_ms")),
    ("rank-bm25 peak RSS MB", ("results", "rank-bm25", "peak_rss_mb")),
    ("engine bm25 3-word p50 ms", ("results", "engine", "bm25", "3w", "p50_ms")),
    ("engine hybrid 3-word p50 ms (real query models at 100k/1M)", ("results", "engine", "hybrid", "3w", "p50_ms")),
    ("related p50 ms", ("results", "related", "p50_ms")),
    ("keywords abstracts/s", ("results", "keywords", "ours_abstracts_per_s")),
    ("embed all-MiniLM-L6-v2 docs/s (CPU)", ("results", "embeddings", "all-MiniLM-L6-v2", "docs_per_s")),
    ("embed all-MiniLM-L6-v2 docs/s, fp32 reference (same run)",
     ("results", "embeddings", "all-MiniLM-L6-v2", "reference_fp32", "docs_per_s")),
    ("embed all-MiniLM-L6-v2 speedup vs fp32 reference", ("results", "embeddings", "all-MiniLM-L6-v2", "speedup_vs_reference")),
    ("embed all-MiniLM-L6-v2 min cosine to fp32 reference",
     ("results", "embeddings", "all-MiniLM-L6-v2", "min_cosine_to_reference")),
    ("embed use-multilingual docs/s (CPU)", ("results", "embeddings", "use-multilingual", "docs_per_s")),
    ("MiniLM query encode p50 ms (sentence-transformers)", ("results", "embeddings", "all-MiniLM-L6-v2", "query_encode", "p50_ms")),
    ("MiniLM query encode p50 ms (service: numpy)",
     ("results", "embeddings", "all-MiniLM-L6-v2", "query_encode_service", "p50_ms")),
    ("HNSW p50 ms (vectors derived from real MiniLM)", ("results", "vectors", "hnsw", "p50_ms")),
    ("exact numpy cosine p50 ms", ("results", "vectors", "exact_numpy", "p50_ms")),
    ("HNSW recall@10", ("results", "vectors", "hnsw_recall_at_10")),
    ("HNSW build s", ("results", "vectors", "hnsw_build_s")),
    ("service RSS idle MB (default workers, summed)", ("results", "service", "rss_idle_after_warmup_mb")),
    ("service PSS idle MB (default workers, summed)", ("results", "service", "pss_idle_after_warmup_mb")),
    ("service 1 worker: RSS idle MB", ("results", "service", "by_workers", "1", "rss_idle_after_warmup_mb")),
    ("service 1 worker: anonymous MB", ("results", "service", "by_workers", "1", "memory_idle_after_warmup", "rss_anon_mb")),
    ("HTTP hybrid p50 ms (8 clients)", ("results", "service", "http_hybrid", "p50_ms")),
    ("HTTP search p50 ms (8 clients)", ("results", "service", "http_search", "p50_ms")),
    ("HTTP search p99 ms (8 clients)", ("results", "service", "http_search", "p99_ms")),
    ("nightly 3k total s", ("results", "nightly", "total_s")),
]


def table(reports: list[dict]) -> str:
    reports = sorted(reports, key=lambda r: r.get("records", 0))
    head = "| figure | " + " | ".join(r["corpus"] for r in reports) + " |"
    lines = [head, "|---" * (len(reports) + 1) + "|"]
    for name, path in ROWS:
        cells = []
        for r in reports:
            v = _get(r, *path)
            cells.append("–" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:,.3g}" if v < 1000 else f"{v:,.0f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge(reports: list[dict]) -> list[dict]:
    from benchmarks.targets import evaluate

    by_corpus: dict[str, dict] = {}
    for r in reports:
        m = by_corpus.get(r["corpus"])
        if m is None:
            by_corpus[r["corpus"]] = {**r, "results": dict(r["results"])}
            continue
        for k, v in r["results"].items():
            old = m["results"].get(k)
            if old is None or "error" in old:
                m["results"][k] = v
            elif "error" not in v:
                m["results"][k] = {**old, **v}  # a partial re-run replaces only what it measured
        m["started"] = min(m["started"], r["started"])
        m["finished"] = max(m["finished"], r["finished"])
        m["quick"] = m.get("quick") or r.get("quick")
    for m in by_corpus.values():
        m["targets"] = evaluate(m)
    return list(by_corpus.values())


def main() -> None:
    args = sys.argv[1:]
    out = None
    if "--merge-out" in args:
        i = args.index("--merge-out")
        out = Path(args[i + 1])
        del args[i : i + 2]
    reports = merge([json.loads(Path(p).read_text()) for p in args])
    if out is not None:
        from benchmarks.harness import write_reports

        for r in reports:
            write_reports(r, out / r["corpus"])
    print(table(reports))


if __name__ == "__main__":
    main()
