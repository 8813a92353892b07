"""The speed and memory targets of issues #3, #4, #5 and #7, checked against a report.

Why here and not in tests: the figures depend on the machine and its load, so they are
reported as pass/fail lines in the benchmark report, never asserted by unit tests.
A target whose figure is missing (component absent, bench skipped) reads "n/a".
"""

from __future__ import annotations

from typing import Any


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _line(name: str, value: float | None, op: str, limit: float, unit: str, how: str = "measured") -> dict:
    if value is None:
        ok = None
    else:
        ok = value <= limit if op == "<=" else value >= limit
    return {"target": name, "value": None if value is None else round(float(value), 3), "op": op, "limit": limit,
            "unit": unit, "pass": ok, "how": how}


def evaluate(report: dict) -> list[dict]:
    r = report.get("results", {})
    corpus = report.get("corpus")
    lines: list[dict] = []
    bm25_3w = _get(r, "search", "3w", "p50_ms")
    ref_3w = _get(r, "rank-bm25", "3w", "p50_ms")
    speedup = ref_3w / bm25_3w if bm25_3w and ref_3w else None
    related = _get(r, "related", "p50_ms")
    hybrid, hybrid_how = _hybrid(r)
    build_s = _get(r, "build", "full_build_excl_embeddings", "seconds")
    build_how = "measured (papers build, embeddings off: BM25 + keywords)"
    nightly = _get(r, "nightly", "total_s")
    rss, rss_how = _service_memory(r)

    if corpus == "1m":
        lines += [
            _line("1M: 3-word BM25 search p50", bm25_3w, "<=", 20, "ms"),
            _line("1M: BM25 ×faster than rank-bm25 (3 words)", speedup, ">=", 100, "×"),
            _line("1M: hybrid search p50", hybrid, "<=", 60, "ms", hybrid_how),
            _line("1M: related lookup p50", related, "<=", 20, "ms"),  # issue #13: ranking by text + co-authors + embeddings, still ≤ 20 ms
            _line("1M: service resident memory, one worker (idle, warmed)", *_one_worker_memory(r)),
            _line(f"1M: service resident memory, {_get(r, 'service', 'serve_default_workers') or 2} workers "
                  "(the default on this machine)", rss, "<=", 2048, "MB", rss_how),
            _line("1M: full index build excl. embeddings", build_s, "<=", 600, "s", build_how),
            _line("1M: nightly increment of 3k papers (no network, no embeddings)", nightly, "<=", 120, "s"),
        ]
    elif corpus == "100k":
        lines += [
            _line("100k: 3-word BM25 search p50", bm25_3w, "<=", 5, "ms"),
            _line("100k: BM25 ×faster than rank-bm25 (3 words)", speedup, ">=", 100, "×"),
            _line("100k: related lookup p50", related, "<=", 50, "ms"),
            _line("100k: HTTP search p50, 8 clients", _http(r, "p50_ms"), "<=", 20, "ms", _http_how(r)),
            _line("100k: HTTP search p99, 8 clients", _http(r, "p99_ms"), "<=", 100, "ms", _http_how(r)),
            _line("100k: hybrid search p50", hybrid, "<=", 60, "ms", hybrid_how),
            _line("100k: full index build excl. embeddings", build_s, "<=", 600, "s", build_how),
            _line("100k: nightly increment of 3k papers", nightly, "<=", 120, "s"),
            _line("100k: service resident memory", rss, "<=", 2048, "MB", rss_how),
        ]
    lines += [
        _line("#4: tokenizer throughput (English, cold cache)", _get(r, "tokenizer", "ours_mb_s"), ">=", 8, "MB/s"),
        _line("#4: tokenizer throughput (mixed Chinese + English)", _get(r, "tokenizer", "mixed_zh_en_mb_s"), ">=", 8, "MB/s"),
        _line("#4: keyword extraction", _get(r, "keywords", "ours_abstracts_per_s"), ">=", 300, "docs/s"),
        *_ingest_lines(r),
        _line("#5: first page load", _get(r, "service", "page_load", "total_bytes"), "<=", 300_000, "bytes"),
    ]
    return lines


def _service_memory(r: dict) -> tuple[float | None, str]:
    """The server's resident memory: PSS summed over its processes where measured.

    Why PSS: the workers map the same index files (BM25 segments, vectors, HNSW graphs)
    and those pages sit once in memory; summing RSS counts them once per worker. PSS
    charges each shared page to its sharers in equal parts, so the sum is what the
    service holds. The RSS sum is given beside it."""
    pss = _get(r, "service", "pss_idle_after_warmup_mb")
    rss = _get(r, "service", "rss_idle_after_warmup_mb")
    workers = _get(r, "service", "serve_default_workers")
    if pss is None:
        return rss, "measured (RSS)"
    return pss, f"measured: PSS summed over the server's {workers} workers + supervisor (RSS summed: {rss:,.0f} MB)"


def _one_worker_memory(r: dict) -> tuple[float | None, str, float, str, str]:
    """The memory target for the 2 GB machine: `papers serve --workers 1`. Each further
    worker adds its own anonymous memory (models, id tables) and shares the mapped files,
    so the default of one worker per core is a throughput choice for bigger machines."""
    one = _get(r, "service", "by_workers", "1") or {}
    pss, rss = one.get("pss_idle_after_warmup_mb"), one.get("rss_idle_after_warmup_mb")
    value = pss if pss is not None else rss
    anon = _get(one, "memory_idle_after_warmup", "rss_anon_mb")
    file_ = _get(one, "memory_idle_after_warmup", "rss_file_mb")
    how = "measured: PSS of `papers serve --workers 1`"
    if anon is not None and file_ is not None:
        how += f" ({anon:,.0f} MB anonymous, {file_:,.0f} MB mapped files: graphs, index, libraries)"
    return value, "<=", 2048, "MB", how


def _hybrid(r: dict) -> tuple[float | None, str]:
    """Hybrid p50 as a user pays it: the engine's hybrid search over the built vector store
    (fake embedder, so no model time; HNSW from 300k papers) plus the real models' query
    encoding (MiniLM, and USE for the multilingual run the shipped hybrid adds) plus, where
    the vectors bench ran, one more graph search for that second space."""
    engine = _get(r, "engine", "hybrid", "3w", "p50_ms")
    if engine is None:
        return None, "measured"
    models = _get(r, "engine", "query_models") or ["fake"]
    if models[0] != "fake":
        return engine, f"measured end to end: SearchEngine hybrid with the real query models ({' + '.join(m for m in models if m)})"
    total, parts = engine, ["engine hybrid p50 (fake embedder, vector store built)"]
    for model, label in (("all-MiniLM-L6-v2", "MiniLM"), ("use-multilingual", "USE")):
        # the encoder the service runs (numpy for MiniLM on CPU) when the bench timed it
        enc = _get(r, "embeddings", model, "query_encode_service", "p50_ms")
        if enc is None:
            enc = _get(r, "embeddings", model, "query_encode", "p50_ms")
        if enc is not None:
            total += enc
            parts.append(f"{label} query encode p50")
    ann = _get(r, "vectors", "hnsw", "p50_ms") if _get(r, "embeddings", "use-multilingual") else None
    if ann is not None:
        total += ann
        parts.append("HNSW p50 (the multilingual run's graph search)")
    return total, " + ".join(parts)


def _ingest_lines(r: dict) -> list[dict]:
    """Issue #3's import goal: the file import as users run it (`papers ingest jsonl|kaggle`,
    parser process + writer; the ingest-files bench) when it ran, else the in-process
    upsert of the ingest bench."""
    files = _get(r, "ingest-files")
    if isinstance(files, dict) and "jsonl" in files:
        return [
            _line("#3: JSONL import into SQLite", _get(files, "jsonl", "rows_per_s"), ">=", 20000, "rows/s"),
            _line("#3: Kaggle import into SQLite", _get(files, "kaggle", "rows_per_s"), ">=", 20000, "rows/s"),
            _line("#3: import peak memory (writer + parser)",
                  max(_get(files, k, "peak_rss_total_mb") or 0 for k in ("jsonl", "kaggle")), "<=", 500, "MB"),
        ]
    how = "papers ingest jsonl (the ingest bench)"
    return [
        _line("#3: JSONL import into SQLite", _get(r, "ingest", "import", "rows_per_s"), ">=", 20000, "rows/s", how),
        _line("#3: import peak memory (writer + parser)", _get(r, "ingest", "import", "peak_rss_mb"), "<=", 500, "MB", how),
    ]


def _http(r: dict, figure: str) -> float | None:
    """An HTTP latency figure, or None (FAIL) when any request failed: fast errors are not speed."""
    http = _get(r, "service", "http_search")
    if not isinstance(http, dict) or http.get("errors"):
        return None
    return http.get(figure)


def _http_how(r: dict) -> str:
    http = _get(r, "service", "http_search")
    if isinstance(http, dict) and http.get("errors"):
        return f"{http['errors']} of {http.get('n')} requests failed"
    return "measured"
