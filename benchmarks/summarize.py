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
    ("papers in corpus", ("records",), False),
    ("tokenizer MB/s (cold cache)", ("results", "tokenizer", "ours_mb_s"), False),
    ("tokenizer baseline regex+lower MB/s", ("results", "tokenizer", "baseline_regex_lower_mb_s"), False),
    ("ingest upsert_papers rows/s", ("results", "ingest", "upsert_papers", "rows_per_s"), False),
    ("ingest baseline Core INSERT rows/s", ("results", "ingest", "baseline_core_insert", "rows_per_s"), False),
    ("ingest peak RSS MB", ("results", "ingest", "upsert_papers", "peak_rss_mb"), False),
    ("SQLite file MB", ("results", "ingest", "upsert_papers", "db_mb"), False),
    ("BM25 build s", ("results", "build", "bm25_only", "seconds"), True),
    ("BM25 build peak RSS MB", ("results", "build", "bm25_only", "peak_rss_mb"), True),
    ("BM25 index MB", ("results", "build", "bm25_only", "index_mb"), True),
    ("full build excl. embeddings s", ("results", "build", "full_build_excl_embeddings", "seconds"), False),
    ("full build peak RSS MB", ("results", "build", "full_build_excl_embeddings", "peak_rss_mb"), False),
    ("BM25 1-word p50 ms", ("results", "search", "1w", "p50_ms"), False),
    ("BM25 3-word p50 ms", ("results", "search", "3w", "p50_ms"), False),
    ("BM25 3-word p99 ms", ("results", "search", "3w", "p99_ms"), False),
    ("BM25 10-word p50 ms", ("results", "search", "10w", "p50_ms"), False),
    ("BM25 60-token p50 ms", ("results", "search", "60t", "p50_ms"), False),
    ("rank-bm25 3-word p50 ms", ("results", "rank-bm25", "3w", "p50_ms"), False),
    ("rank-bm25 60-token p50 ms", ("results", "rank-bm25", "60t", "p50_ms"), False),
    ("rank-bm25 peak RSS MB", ("results", "rank-bm25", "peak_rss_mb"), False),
    ("engine bm25 3-word p50 ms", ("results", "engine", "bm25", "3w", "p50_ms"), False),
    ("engine hybrid 3-word p50 ms (fake embedder)", ("results", "engine", "hybrid", "3w", "p50_ms"), False),
    ("related p50 ms", ("results", "related", "p50_ms"), False),
    ("keywords abstracts/s", ("results", "keywords", "ours_abstracts_per_s"), False),
    ("embed all-MiniLM-L6-v2 docs/s (CPU)", ("results", "embeddings", "all-MiniLM-L6-v2", "docs_per_s"), False),
    ("embed use-multilingual docs/s (CPU)", ("results", "embeddings", "use-multilingual", "docs_per_s"), False),
    ("MiniLM query encode p50 ms", ("results", "embeddings", "all-MiniLM-L6-v2", "query_encode", "p50_ms"), False),
    ("HNSW p50 ms (synthetic vectors)", ("results", "vectors", "hnsw", "p50_ms"), False),
    ("exact numpy cosine p50 ms", ("results", "vectors", "exact_numpy", "p50_ms"), False),
    ("HNSW recall@10", ("results", "vectors", "hnsw_recall_at_10"), False),
    ("HNSW build s", ("results", "vectors", "hnsw_build_s"), False),
    ("service RSS idle MB", ("results", "service", "rss_idle_after_warmup_mb"), False),
    ("HTTP search p50 ms (8 clients)", ("results", "service", "http_search", "p50_ms"), False),
    ("HTTP search p99 ms (8 clients)", ("results", "service", "http_search", "p99_ms"), False),
    ("nightly 3k total s", ("results", "nightly", "total_s"), False),
]


def table(reports: list[dict]) -> str:
    reports = sorted(reports, key=lambda r: r.get("records", 0))
    head = "| figure | " + " | ".join(r["corpus"] for r in reports) + " |"
    lines = [head, "|---" * (len(reports) + 1) + "|"]
    for name, path, alt_1m in ROWS:
        cells = []
        for r in reports:
            v = _get(r, *path)
            if v is None and alt_1m and r.get("corpus") == "1m":
                v = _get(r, "results", "build", "bm25_published", path[-1])
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
