"""Why tantivy serves our BM25: build time, disk, load time, query latency and incremental
adds, measured in one run on the same tokens against rank-bm25 (BM25Okapi, the reference)
and bm25s. Figures go into docs/bm25-engine.md; ratios, not absolute times, are the point.

    python -m benchmarks.bm25_engines [--docs 100000] [--queries 200] [--json]

Needs ../shared/data/arxiv/papers.jsonl.gz (the 100k corpus); bm25s is optional
(``pip install bm25s``; measurement only, not a dependency of the product).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from indexer.lexical.bm25 import BM25Index, IndexedDoc
from indexer.lexical.query import parse_query
from indexer.text.tokenizer import Tokenizer, tokenize

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv" / "papers.jsonl.gz"
ZH = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv" / "zh_tldr.jsonl.gz"


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


class _Clock:
    """Wall and CPU seconds of a block: on a shared (loaded) machine the CPU time of this
    process is the stable figure; both are reported."""

    def __enter__(self) -> _Clock:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0


def _queries(docs: list[dict], n: int, seed: int = 3) -> list[str]:
    """3 distinct content words from random real titles (surface forms, as a user types)."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        words = [w for w in rng.choice(docs)["title"].split() if w.isalpha() and tokenize(w)]
        words = list(dict.fromkeys(words))
        if len(words) >= 3:
            out.append(" ".join(rng.sample(words, 3)))
    return out


def tokenizer_throughput(limit: int = 20000) -> dict:
    """MB/s of Tokenizer on mixed text: English abstracts interleaved with Chinese summaries."""
    texts = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f, gzip.open(ZH, "rt", encoding="utf-8") as z:
        for _, a, b in zip(range(limit), f, z, strict=False):
            texts.append(json.loads(a)["abstract"])
            texts.append(json.loads(b)["zh"])
    mb = sum(len(t.encode()) for t in texts) / 1e6
    tok = Tokenizer()
    tokenize("预热")  # jieba's dictionary load is a one-off, not throughput
    tok.tokenize("预热")
    with _Clock() as cold:
        tok.tokenize_many(texts)
    with _Clock() as warm:
        tok.tokenize_many(texts)
    return {"mb": round(mb, 1), "cold_mb_s_cpu": round(mb / cold.cpu, 1), "warm_mb_s_cpu": round(mb / warm.cpu, 1),
            "cold_mb_s_wall": round(mb / cold.wall, 1), "warm_mb_s_wall": round(mb / warm.wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--slow-queries", type=int, default=20, help="queries for rank-bm25 (slow)")
    ap.add_argument("--add", type=int, default=3000, help="docs added incrementally at the end")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not CORPUS.exists():
        sys.exit(f"corpus not found: {CORPUS}")
    out: dict = {"docs": args.docs}
    out["tokenizer"] = tokenizer_throughput()

    docs = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for _, line in zip(range(args.docs), f, strict=False):
            docs.append(json.loads(line))
    base, extra = docs[: len(docs) - args.add], docs[len(docs) - args.add :]
    queries = _queries(docs, args.queries)

    def indexed(d: dict) -> IndexedDoc:
        return IndexedDoc(d["id"], d["title"], d["abstract"], d["authors"], d["categories"], date.fromisoformat(d["published"]))

    # -- ours: tantivy over our tokens ------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bm25"
        with _Clock() as build:
            ix = BM25Index.open(path)
            for i in range(0, len(base), 5000):
                ix.upsert(indexed(d) for d in base[i : i + 5000])
            ix.commit()
            ix.close()
        with _Clock() as add:
            ix = BM25Index.open(path)
            ix.upsert(indexed(d) for d in extra)
            ix.commit()
        ix.close()
        disk = _dir_size(path)
        t0 = time.perf_counter()
        reader = BM25Index.open(path, readonly=True)
        reader.search(parse_query("warm up"))
        load = time.perf_counter() - t0
        for q in queries[:20]:
            reader.search(parse_query(q))
        lat, cpu = [], []
        for q in queries:
            with _Clock() as c:
                reader.search(parse_query(q), limit=10)
            lat.append(c.wall)
            cpu.append(c.cpu)
        out["tantivy"] = {"build_s_wall": round(build.wall, 1), "build_s_cpu": round(build.cpu, 1),
                          "add_s_wall": round(add.wall, 2), "add_s_cpu": round(add.cpu, 2), "disk_mb": round(disk / 1e6, 1),
                          "load_ms": round(load * 1000, 1), "p50_ms": round(_p(lat, 50), 2), "p95_ms": round(_p(lat, 95), 2),
                          "p50_ms_cpu": round(_p(cpu, 50), 2), "num_docs": reader.num_docs}

    # -- the same tokens for the in-memory engines ---------------------------------------------
    with _Clock() as tk:
        tokens = [tokenize(d["title"]) + tokenize(d["abstract"]) for d in docs]
    out["tokenize_s_cpu"] = round(tk.cpu, 1)
    qtokens = [tokenize(q) for q in queries]

    from rank_bm25 import BM25Okapi

    with _Clock() as rb_build:
        ref = BM25Okapi(tokens, k1=1.2, b=0.75)
    lat, cpu = [], []
    for q in qtokens[: args.slow_queries]:
        with _Clock() as c:
            np.argpartition(-ref.get_scores(q), 10)[:10]
        lat.append(c.wall)
        cpu.append(c.cpu)
    out["rank_bm25"] = {"build_s_cpu_after_tokenize": round(rb_build.cpu, 1), "p50_ms": round(_p(lat, 50), 1),
                        "p50_ms_cpu": round(_p(cpu, 50), 1), "queries": len(lat)}
    out["speedup_p50_vs_rank_bm25"] = round(out["rank_bm25"]["p50_ms"] / out["tantivy"]["p50_ms"], 1)
    out["speedup_p50_cpu_vs_rank_bm25"] = round(out["rank_bm25"]["p50_ms_cpu"] / out["tantivy"]["p50_ms_cpu"], 1)
    del ref

    try:
        import bm25s
    except ImportError:
        out["bm25s"] = "not installed"
    else:
        with _Clock() as bs_build:
            vocab: dict[str, int] = {}
            ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in tokens]
            retr = bm25s.BM25(k1=1.2, b=0.75)
            retr.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            retr.save(tmp)
            bs_disk = _dir_size(Path(tmp))
        lat, cpu = [], []
        for q in qtokens:
            known = [t for t in q if t in vocab]
            with _Clock() as c:
                if known:  # get_scores + top-k is bm25s' fastest path (retrieve() adds ~10 ms overhead)
                    np.argpartition(-retr.get_scores(known), 10)[:10]
            lat.append(c.wall)
            cpu.append(c.cpu)
        out["bm25s"] = {"build_s_cpu_after_tokenize": round(bs_build.cpu, 1), "disk_mb": round(bs_disk / 1e6, 1),
                        "p50_ms": round(_p(lat, 50), 2), "p95_ms": round(_p(lat, 95), 2), "p50_ms_cpu": round(_p(cpu, 50), 2),
                        "incremental": "no (re-index to add or delete)"}
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
