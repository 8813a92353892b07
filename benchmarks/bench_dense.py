"""Dense side: embedding throughput on CPU, query-encoding latency, and the vector index
at corpus size.

Why synthetic vectors for the index: embedding 1M abstracts on this 2-core CPU takes
about a day. Vector-index speed and recall depend on how vectors cluster, not on what
they mean, so the index is fed *realistic* synthetic vectors: real all-MiniLM-L6-v2
embeddings of a few hundred real papers, each repeated with Gaussian noise
(σ = 0.03 per dimension, about cos 0.85 to its base, like near-duplicate topics) and
re-normalised. Queries are other noisy copies. Exact numpy cosine is the baseline and
the ground truth for recall@10.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.measure import latency_ms, summarize


def bench_embedders(records: list[dict], n: int, models=("all-MiniLM-L6-v2", "use-multilingual"),
                    device: str = "cpu") -> tuple[dict, np.ndarray | None]:
    """docs/s per model on ``n`` real title+abstract texts; returns MiniLM vectors too.

    ``device`` comes from PAPERS_EMBEDDING_DEVICE (``cuda`` on a GPU host)."""
    from indexer.embeddings import get_embedder

    texts = [f"{r['title']}. {r['abstract']}" for r in records[:n]]
    out: dict = {"docs": len(texts), "device": device}
    base = None
    for name in models:
        try:
            emb = get_embedder(name, device=device)
            emb.encode(texts[:8])
            t0 = time.perf_counter()
            vecs = emb.encode(texts, batch_size=32)
            sec = time.perf_counter() - t0
            q = latency_ms(lambda t, e=emb: e.encode([t]), [r["title"] for r in records[n : n + 30]])
            out[name] = {"dim": int(vecs.shape[1]), "docs_per_s": round(len(texts) / sec, 1), "query_encode": q}
            if base is None and name == "all-MiniLM-L6-v2":
                base = np.asarray(vecs, dtype=np.float32)
        except Exception as e:  # noqa: BLE001 - a missing model is reported, not fatal
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return out, base


def synthetic_vectors(base: np.ndarray, n: int, sigma: float = 0.03, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        v = base[np.arange(s, s + m) % len(base)] + rng.normal(0, sigma, (m, base.shape[1])).astype(np.float32)
        out[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def bench_vectors(base: np.ndarray, n: int, queries: int = 200) -> dict:
    """usearch HNSW (what EmbeddingStore uses above its ANN threshold) vs exact numpy."""
    from usearch.index import Index

    vecs = synthetic_vectors(base, n)
    qv = synthetic_vectors(base, queries, seed=99)
    out: dict = {"vectors": n, "dim": int(base.shape[1]), "base_real_embeddings": int(len(base)), "matrix_mb": round(vecs.nbytes / 1e6, 1)}
    t0 = time.perf_counter()
    idx = Index(ndim=base.shape[1], metric="cos", dtype="f16", connectivity=16, expansion_add=64, expansion_search=64)
    idx.add(np.arange(n, dtype=np.uint64), vecs, threads=2)
    out["hnsw_build_s"] = round(time.perf_counter() - t0, 1)
    exact_top: list[np.ndarray] = []

    def exact(i: int) -> None:
        s = vecs @ qv[i]
        top = np.argpartition(-s, 10)[:10]
        exact_top.append(top)

    out["exact_numpy"] = latency_ms(exact, range(min(queries, 50)), warmup=0)
    found: list[np.ndarray] = []
    t_ann: list[float] = []
    for i in range(queries):
        t = time.perf_counter()
        m = idx.search(qv[i], 10)
        t_ann.append((time.perf_counter() - t) * 1000.0)
        found.append(np.asarray(m.keys))
    out["hnsw"] = summarize(t_ann)
    rec = [len(set(found[i].tolist()) & set(exact_top[i].tolist())) / 10 for i in range(len(exact_top))]
    out["hnsw_recall_at_10"] = round(float(np.mean(rec)), 3)
    out["speedup_vs_exact"] = round(out["exact_numpy"]["p50_ms"] / max(out["hnsw"]["p50_ms"], 1e-6), 1)
    return out
