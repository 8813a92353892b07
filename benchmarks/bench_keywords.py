"""Keyword extraction speed: abstracts per second on one core (goal: >= 300/s).

Why a benchmark and not a test: speed depends on the machine and its load, so it is
reported as figures plus a ratio against a baseline measured in the same run (the
``yake`` package on the same abstracts), never asserted in unit tests.

Measured on the bundled real sample (indexer/data/sample-papers.jsonl.gz: 8,000 arXiv
title+abstract pairs) with the shipped corpus statistics; the tokenizer's and jieba's
caches are warmed on other abstracts first, as in a running service. Single-threaded
Python, so "one core". Also reports Chinese summaries (sample-zh) and collection
statistics (DocFreqs.from_texts) throughput.

    python -m benchmarks.bench_keywords [--n 2000] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from indexer.text.keywords import DocFreqs, KeywordExtractor

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = ROOT / "indexer" / "data" / "sample-papers.jsonl.gz"
SAMPLE_ZH = ROOT / "indexer" / "data" / "sample-zh.jsonl.gz"


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _rate(fn, items) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - t0)


def run(n: int = 2000, yake_n: int = 300) -> dict:
    """Figures: docs/s for ours (en, zh), YAKE (en), from_texts; and our/YAKE ratio."""
    papers = _read(SAMPLE)
    zh = _read(SAMPLE_ZH)
    warm, timed = papers[:500], papers[500 : 500 + n]
    extractor = KeywordExtractor(DocFreqs.shipped())

    def ours(p: dict) -> None:
        extractor.extract(p["abstract"], k=10, title=p["title"])

    for p in warm:
        ours(p)
    out: dict = {"docs": len(timed)}
    out["ours_abstracts_per_s"] = round(_rate(ours, timed), 1)
    avg_words = sum(len(p["abstract"].split()) for p in timed) / len(timed)
    out["avg_abstract_words"] = round(avg_words, 1)

    zh_timed = zh[200 : 200 + min(n, len(zh) - 200)]
    for r in zh[:200]:
        extractor.extract(r["zh"], k=10)
    out["ours_zh_summaries_per_s"] = round(_rate(lambda r: extractor.extract(r["zh"], k=10), zh_timed), 1)

    t0 = time.perf_counter()
    DocFreqs.from_texts(f"{p['title']}\n{p['abstract']}" for p in timed)
    out["from_texts_docs_per_s"] = round(len(timed) / (time.perf_counter() - t0), 1)

    long_text = "\n".join(p["abstract"] for p in papers[:400])  # ~70k words, one "paper"
    t0 = time.perf_counter()
    extractor.extract(long_text, k=10)
    out["long_text_words"] = len(long_text.split())
    out["long_text_seconds"] = round(time.perf_counter() - t0, 3)

    try:
        import yake
    except ImportError:
        out["yake_abstracts_per_s"] = None
    else:
        kw = yake.KeywordExtractor(lan="en", n=3, top=10)
        sub = timed[:yake_n]
        out["yake_abstracts_per_s"] = round(_rate(lambda p: kw.extract_keywords(f"{p['title']}\n{p['abstract']}"), sub), 1)
        out["ours_over_yake"] = round(out["ours_abstracts_per_s"] / out["yake_abstracts_per_s"], 2)
    out["goal_300_per_s"] = out["ours_abstracts_per_s"] >= 300
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args.n)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}  {value}")


if __name__ == "__main__":
    main()
