"""Text throughput: the tokenizer (vs plain regex + lower) and keyword extraction.

Why per-document calls: that is how the index builder and the service use the
tokenizer, so per-call overhead counts. The baseline is the cheapest tokenizer that
could work (``re.findall(r"\\w+", text.lower())``), measured on the same documents in
the same run, so the ratio survives a busy machine.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ZH = ROOT / "indexer" / "data" / "sample-zh.jsonl.gz"
_BASELINE = re.compile(r"\w+")


def _mb_per_s(fn, docs: list[str]) -> float:
    size = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    t0 = time.perf_counter()
    for d in docs:
        fn(d)
    return round(size / (time.perf_counter() - t0), 2)


def bench_tokenizer(records: list[dict], max_mb: float) -> dict:
    from indexer.text.tokenizer import Tokenizer

    docs, size = [], 0
    for r in records:
        d = f"{r['title']}\n{r['abstract']}"
        docs.append(d)
        size += len(d)
        if size >= max_mb * 1e6:
            break
    tok = Tokenizer()  # fresh: its word cache starts cold, as in a new build process
    out = {"mb": round(size / 1e6, 2), "docs": len(docs)}
    out["ours_mb_s"] = _mb_per_s(tok.tokenize, docs)
    out["ours_warm_mb_s"] = _mb_per_s(tok.tokenize, docs)
    out["baseline_regex_lower_mb_s"] = _mb_per_s(lambda t: _BASELINE.findall(t.lower()), docs)
    out["ratio_vs_baseline"] = round(out["ours_mb_s"] / out["baseline_regex_lower_mb_s"], 3)
    if SAMPLE_ZH.exists():
        with gzip.open(SAMPLE_ZH, "rt", encoding="utf-8") as fh:
            zh = [json.loads(line)["zh"] for line in fh]
        mixed = [f"{zh[i % len(zh)]} {docs[i % len(docs)]}" for i in range(min(len(zh), 3000))]
        tok.tokenize(mixed[0])  # jieba dictionary load is not throughput
        out["mixed_zh_en_mb_s"] = _mb_per_s(tok.tokenize, mixed)
    return out


def bench_keywords(records: list[dict], n: int) -> dict:
    """Abstracts/s of KeywordExtractor (the keywords engineer's bench when present)."""
    try:
        from benchmarks.bench_keywords import run

        r = run(n=n, yake_n=max(50, n // 10))
        return {"source": "benchmarks/bench_keywords.py", **r}
    except ImportError:
        pass
    from indexer.text.keywords import DocFreqs, KeywordExtractor

    ex = KeywordExtractor(DocFreqs.shipped())
    docs = records[:n]
    for r in docs[:50]:
        ex.extract(r["abstract"], k=10, title=r["title"])
    t0 = time.perf_counter()
    for r in docs:
        ex.extract(r["abstract"], k=10, title=r["title"])
    return {"docs": len(docs), "ours_abstracts_per_s": round(len(docs) / (time.perf_counter() - t0), 1)}
