"""Rebuild the bundled sample, indexer/data/sample-papers.jsonl.gz, from the shared corpus.

The sample is every paper first listed between 2026-06-22 and 2026-07-01 (so daily lists
have full days to show) plus the papers with the smallest sha1(id) until 8,000 in all
(a deterministic, category-representative spread). Chinese one-line summaries of the
sampled papers go to sample-zh.jsonl.gz for Chinese-query tests.

    python -m benchmarks.make_sample [SHARED_ARXIV_DIR]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

TOTAL = 8000
RECENT = ("2026-06-22", "2026-07-01")


def main(src: Path, out: Path) -> None:
    rows = [json.loads(line) for line in gzip.open(src / "papers.jsonl.gz", "rt", encoding="utf-8")]
    recent = [r for r in rows if RECENT[0] <= r["published"] <= RECENT[1]]
    chosen = {r["id"] for r in recent}
    rest = sorted((r for r in rows if r["id"] not in chosen), key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
    chosen |= {r["id"] for r in rest[: TOTAL - len(chosen)]}
    sample = [r for r in rows if r["id"] in chosen]
    with gzip.GzipFile(out / "sample-papers.jsonl.gz", "wb", mtime=0) as f:
        for r in sample:
            f.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
    with gzip.GzipFile(out / "sample-zh.jsonl.gz", "wb", mtime=0) as f:
        for line in gzip.open(src / "zh_tldr.jsonl.gz", "rt", encoding="utf-8"):
            if json.loads(line)["id"] in chosen:
                f.write(line.encode())
    print(f"{len(sample)} papers ({len(recent)} recent)")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "shared" / "data" / "arxiv"
    main(src, here / "indexer" / "data")
