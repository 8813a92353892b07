"""Embedding throughput for a full-arXiv backfill: is it under 30 minutes on this device?

    python -m benchmarks.bench_gpu_embed --device cuda [--n 50000] [--out DIR]

Why a separate script: issue #7 asks whether one GPU embeds all of arXiv (≈ 2.7M
title+abstract texts) in under 30 minutes, i.e. ≥ 1,500 docs/s sustained. The suite's
`embeddings` bench times 200 texts, which says nothing about a GPU's sustained rate. This
script times all-MiniLM-L6-v2 on ``--n`` real abstracts (the shared 100k papers, else
the bundled sample repeated) at several batch sizes, in float32 and float16, then once
more through the build's own path (``embed_papers`` into an ``EmbeddingStore``, with
its checkpoints), and projects the time for 2.7M papers. The multilingual USE model is
numpy-only (CPU); its rate on this machine's cores is reported beside it, since a full
backfill embeds both spaces.

Writes ``report.json`` (and prints it); exits 0 whether or not the target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ARXIV_PAPERS = 2_700_000
TARGET_S = 30 * 60


def _texts(n: int) -> list[str]:
    from benchmarks.corpus import SAMPLE, SHARED_PAPERS, read_jsonl
    from indexer.pipeline.build import embedding_text

    recs = read_jsonl(SHARED_PAPERS if SHARED_PAPERS.exists() else SAMPLE, limit=n)
    texts = [embedding_text(r["title"], r["abstract"]) for r in recs]
    while len(texts) < n:  # the bundled sample is 8k papers: repeat it
        texts += texts[: n - len(texts)]
    return texts


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _rate(encode, texts: list[str], device: str) -> dict:
    encode(texts[:1024])  # warm-up: kernels, allocator, tokenizer caches
    _sync(device)
    t0 = time.perf_counter()
    encode(texts)
    _sync(device)
    sec = time.perf_counter() - t0
    rate = len(texts) / sec
    return {"docs": len(texts), "seconds": round(sec, 2), "docs_per_s": round(rate, 1),
            "projected_arxiv_min": round(ARXIV_PAPERS / rate / 60, 1), "under_30_min": ARXIV_PAPERS / rate < TARGET_S}


def bench(device: str, n: int, batches: tuple[int, ...]) -> dict:
    from indexer.dense.embeddings import (
        MINILM,
        EmbeddingStore,
        SentenceTransformerEmbedder,
        embed_papers,
        get_embedder,
    )

    texts = _texts(n)
    out: dict = {"device": device, "texts": len(texts), "arxiv_papers": ARXIV_PAPERS, "target_s": TARGET_S,
                 "cpu_count": os.cpu_count()}
    if device.startswith("cuda"):
        import torch

        out["gpu"] = torch.cuda.get_device_name(0)
    emb = SentenceTransformerEmbedder(MINILM, device=device)
    runs: dict = {}
    for half in (False, True) if device.startswith("cuda") else (False,):
        if half:
            emb.model.half()
        for b in batches:
            runs[f"{'fp16' if half else 'fp32'} batch {b}"] = _rate(lambda t, b=b: emb.encode(t, batch_size=b), texts, device)
    out["minilm"] = runs
    best = max(runs, key=lambda k: runs[k]["docs_per_s"])
    out["minilm_best"] = {"setting": best, **runs[best]}

    # the build's path: batches, checkpoint chunks every 1,024 papers, the final save
    fresh = SentenceTransformerEmbedder(MINILM, device=device)
    batch = int(best.rsplit(" ", 1)[1])
    with tempfile.TemporaryDirectory() as d:
        store = EmbeddingStore(Path(d) / "minilm", MINILM)
        items = [(f"x{i}", f"h{i}", t) for i, t in enumerate(texts)]
        t0 = time.perf_counter()
        embed_papers(store, fresh, items, batch_size=batch, progress=False)
        store.save()
        sec = time.perf_counter() - t0
    rate = len(texts) / sec
    out["build_path_fp32"] = {"batch": batch, "seconds": round(sec, 2), "docs_per_s": round(rate, 1),
                              "projected_arxiv_min": round(ARXIV_PAPERS / rate / 60, 1)}

    use = get_embedder("use-multilingual")
    sample = texts[: min(len(texts), 5000)]
    out["use_multilingual_cpu"] = _rate(lambda t: use.encode(t, batch_size=64), sample, "cpu")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:1, cpu")
    ap.add_argument("--n", type=int, default=50_000, help="texts to embed per setting")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (default 128, 256, 512)")
    ap.add_argument("--out", type=Path, default=None, help="directory for report.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = bench(args.device, args.n, tuple(args.batch or (128, 256, 512)))
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
