"""Dense side: embedding throughput on CPU, query-encoding latency, and the vector index
at corpus size (exact numpy vs usearch HNSW, recall@10 against exact).

Why a constructed 1M set: embedding 1M abstracts on this 2-core CPU takes about a day.
How an ANN index behaves depends on how the vectors cluster, and isotropic noise around
a few hundred real vectors (the earlier construction) is far harder than real data: it
fills all 384 dimensions, where real embeddings lie near a low-dimensional manifold
(recall@10 0.71 at 1M there). So the index is fed vectors built like the 1M benchmark
corpus itself (benchmarks/corpus.py: every real paper plus variants that interleave
its sentences with those of a same-category donor paper):

1. ``data/vec-cache`` (gitignored) holds real all-MiniLM-L6-v2 embeddings of N real
   papers, a fixed random sample of the 100k (``embed_cache_shard``; documents cut at
   128 tokens to embed twice as many in the time).
2. Calibration (``calibrate``): 300 cached papers get 2 real corpus variants each
   (``corpus.variants``); the variants are embedded and each is fitted as
   ``v ≈ α·source + β·donor + r`` (least squares). The (α, β) pairs and the residuals r
   are kept.
3. Construction (``constructed_vectors``): the N real vectors, then for each synthetic
   row a source paper (round robin), a random donor of the same primary category, an
   (α, β) pair drawn from the calibration, and a residual drawn from N(0, Σ_r) where
   Σ_r is the covariance of the real residuals (a Gaussian combination of them);
   normalised. So a synthetic vector is what embedding a corpus variant gives, within
   the measured error, and it stays on the data's manifold.
4. Queries are *real text*, never in the set: 3-word and 10-word queries and titles
   (``benchmarks.queries``) of held-out papers, encoded with MiniLM.

Exact numpy cosine is the baseline and the ground truth for recall@10. When the cache
is absent (a fresh checkout), the few hundred real vectors of the embeddings bench are
used with the variant model's defaults, and the report says so.

``python -m benchmarks.bench_dense sweep --n 1000000`` runs the parameter sweep behind
the constants in indexer/dense/vectors.py; ``papers bench --only vectors`` measures the chosen
parameters (and the search-time expansion curve) at corpus size.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import summarize

ROOT = Path(__file__).resolve().parents[1]
VEC_CACHE = ROOT / "data" / "vec-cache"
ORDER_SEED = 20261127
HELD_OUT = 2000  # the last papers of the shuffled order are never embedded as documents
CACHE_SEQ_LEN = 128  # tokens; MiniLM was trained at 128, the product embeds up to 256
QUERY_SHAPES = {"3w": 200, "10w": 100, "title": 100}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, items, warmup: int = 2) -> dict:
    """``latency_ms`` plus the CPU time of the calling thread (load inflates wall time,
    not CPU time) and the load average."""
    items = list(items)
    for it in items[:warmup]:
        fn(it)
    wall, cpu = [], []
    for it in items:
        c0, t0 = time.thread_time(), time.perf_counter()
        fn(it)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    out = summarize(wall)
    out["cpu_p50_ms"] = round(float(np.median(cpu)), 3)
    out["load_avg"] = _load()
    return out


# -- embedders -----------------------------------------------------------------------------

def short_queries(records: list[dict], n: int = 30) -> list[str]:
    from benchmarks.queries import make_queries

    return make_queries(records, n)["3w"][:n]


def bench_embedders(records: list[dict], n: int, models=("all-MiniLM-L6-v2", "use-multilingual"),
                    device: str = "cpu") -> tuple[dict, np.ndarray | None]:
    """docs/s per model on ``n`` real title+abstract texts, and query-encode latency on
    short (3-word) queries with the embedder kept loaded, as the engine keeps it;
    returns MiniLM vectors too. ``device`` comes from PAPERS_EMBEDDING_DEVICE."""
    from indexer.dense.embeddings import (
        QUERY_TEXTS,
        batch_threads,
        get_embedder,
        get_query_embedder,
    )

    texts = [f"{r['title']}. {r['abstract']}" for r in records[:n]]
    queries = short_queries(records[n:] or records, 40)
    out: dict = {"docs": len(texts), "device": device, "batch_threads": batch_threads(),
                 "query_threads": 1, "query_max_texts": QUERY_TEXTS}
    base = None
    for name in models:
        try:
            t0 = time.perf_counter()
            emb = get_embedder(name, device=device)
            emb.encode(texts[:8])
            load_s = time.perf_counter() - t0
            c0, t0 = time.process_time(), time.perf_counter()
            vecs = emb.encode(texts, batch_size=32)
            sec, cpu = time.perf_counter() - t0, time.process_time() - c0
            q = _timed(lambda t, e=emb: e.encode([t]), queries, warmup=5)
            out[name] = {"dim": int(vecs.shape[1]), "docs_per_s": round(len(texts) / sec, 1),
                         "cpu_s_per_doc": round(cpu / max(1, len(texts)), 4), "load_s": round(load_s, 2),
                         "query_encode": q, "load_avg": _load()}
            served = get_query_embedder(name, device=device)
            if type(served) is not type(emb):  # the service's own encoder, beside this one as its baseline
                sq = _timed(lambda t, e=served: e.encode([t]), queries, warmup=5)
                agree = float(np.min(np.sum(served.encode(queries) * emb.encode(queries), axis=1)))
                out[name]["query_encode_service"] = {**sq, "encoder": type(served).__name__,
                                                     "min_cosine_to_baseline": round(agree, 6),
                                                     "speedup_p50": round(q["p50_ms"] / sq["p50_ms"], 2) if sq["p50_ms"] else None}
            if hasattr(emb, "bf16"):  # sentence-transformers: today's fp32 path on all cores, same texts, same run
                ref_vecs, ref = _reference(name, device, texts)
                out[name]["precision"] = "bf16" if emb.bf16 else "fp32"
                out[name]["reference_fp32"] = ref
                out[name]["speedup_vs_reference"] = round(out[name]["docs_per_s"] / ref["docs_per_s"], 2)
                out[name]["min_cosine_to_reference"] = round(float(np.min(np.sum(vecs * ref_vecs, axis=1))), 6)
                vecs = ref_vecs
            if base is None and name == "all-MiniLM-L6-v2":
                base = np.asarray(vecs, dtype=np.float32)
        except Exception as e:  # noqa: BLE001 - a missing model is reported, not fatal
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return out, base


def _reference(name: str, device: str, texts: list[str]) -> tuple[np.ndarray, dict]:
    """The document path before bf16 and load-aware threads (fp32, all cores), timed on
    the same texts in the same run: the baseline the faster path is held to."""
    import os

    from indexer.dense.embeddings import SentenceTransformerEmbedder

    ref = SentenceTransformerEmbedder(name, device=device, precision="fp32", threads=os.cpu_count() or 1)
    ref.encode(texts[:8])
    c0, t0 = time.process_time(), time.perf_counter()
    vecs = ref.encode(texts, batch_size=32)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    return vecs, {"docs_per_s": round(len(texts) / sec, 1), "cpu_s_per_doc": round(cpu / max(1, len(texts)), 4),
                  "threads": os.cpu_count() or 1, "load_avg": _load()}


# -- real-embedding cache (data/vec-cache, gitignored) ------------------------------------

def shuffled_papers() -> list[dict]:
    """The 100k real papers in a fixed pseudo-random order (documents from the front,
    held-out query papers from the back)."""
    import random

    from benchmarks.corpus import SHARED_PAPERS, read_jsonl

    recs = read_jsonl(SHARED_PAPERS)
    random.Random(ORDER_SEED).shuffle(recs)
    return recs


def _minilm_for_cache():
    from indexer.dense.embeddings import MINILM, get_embedder

    emb = get_embedder(MINILM)
    emb.model.max_seq_length = CACHE_SEQ_LEN
    return emb


def embed_cache_shard(shard: int, shards: int, n: int) -> None:
    """Embed papers ``shard::shards`` of the first ``n`` shuffled papers with MiniLM into
    ``VEC_CACHE/minilm128-shard<k>`` (checkpointed, resumable; run niced, one per core).

    Documents are cut at ``CACHE_SEQ_LEN`` tokens, half the product's 256, to embed twice
    as many papers in the time; the vectors stay real embeddings of real papers (title and
    the start of the abstract), which is what matters for how they cluster."""
    from indexer.dense.embeddings import MINILM, EmbeddingStore, embed_papers
    from indexer.pipeline.build import embedding_text

    recs = shuffled_papers()[: min(n, 100_000 - HELD_OUT)]
    items = [(r["id"], "v1", embedding_text(r["title"], r["abstract"])) for r in recs[shard::shards]]
    store = EmbeddingStore(VEC_CACHE / f"minilm128-shard{shard}", MINILM, ann_threshold=10**12).load()
    embed_papers(store, _minilm_for_cache(), items, batch_size=32, checkpoint_every=512, progress=True)
    store.save()


def load_cache(recs: list[dict] | None = None) -> tuple[list[dict], np.ndarray] | None:
    """Cached real embeddings in shuffled-paper order: (records, vectors), or None."""
    from indexer.dense.embeddings import MINILM, EmbeddingStore

    dirs = sorted(VEC_CACHE.glob("minilm128-shard*"))
    if not dirs:
        return None
    vec: dict[str, np.ndarray] = {}
    for d in dirs:
        store = EmbeddingStore(d, MINILM, ann_threshold=10**12).load()
        if len(store):
            m = store.matrix
            vec.update(zip(store.ids, m, strict=True))
    if not vec:
        return None
    recs = recs if recs is not None else shuffled_papers()
    kept = [r for r in recs[: 100_000 - HELD_OUT] if r["id"] in vec]
    return kept, np.stack([vec[r["id"]] for r in kept]).astype(np.float32)


# -- the variant model ---------------------------------------------------------------------

def _primary(rec: dict) -> str:
    return (rec.get("categories") or [""])[0]


def _donor(recs: list[dict], by_cat: dict[str, list[int]], j: int, v: int) -> int:
    """The donor paper ``corpus.variants`` picks for variant ``v`` of paper ``j`` (the same draw)."""
    import random

    from benchmarks.corpus import SEED, pick_donor

    rng = random.Random(f"{SEED}:{recs[j]['id']}:{v}")
    return pick_donor(rng, by_cat[_primary(recs[j])], j, len(recs))


def calibrate(recs: list[dict], vecs: np.ndarray, papers: int = 300, per_paper: int = 2) -> dict:
    """Embed real corpus variants of ``papers`` cached papers; fit v ≈ α·a + β·b + r.

    Cached in ``VEC_CACHE/calibration.npz``."""
    path = VEC_CACHE / "calibration.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    from itertools import islice

    from benchmarks.corpus import variants
    from indexer.pipeline.build import embedding_text

    src_cats: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        src_cats.setdefault(_primary(r), []).append(i)
    # variants() yields per_paper variants of paper 0, then of paper 1, ...
    var = list(islice(variants(recs, per_paper), papers * per_paper))
    texts = [embedding_text(v["title"], v["abstract"]) for v in var]
    emb = _minilm_for_cache()
    ve = emb.encode(texts, batch_size=32)
    alphas, betas, resid, cos_fit = [], [], [], []
    for k in range(len(var)):
        src, d = k // per_paper, _donor(recs, src_cats, k // per_paper, k % per_paper)
        A = np.stack([vecs[src], vecs[d]], axis=1)
        coef, *_ = np.linalg.lstsq(A, ve[k], rcond=None)
        fit = A @ coef
        alphas.append(coef[0])
        betas.append(coef[1])
        resid.append(ve[k] - fit)
        cos_fit.append(float(fit @ ve[k] / np.linalg.norm(fit)))
    out = {"alpha": np.array(alphas, np.float32), "beta": np.array(betas, np.float32),
           "resid": np.stack(resid).astype(np.float32), "cos_fit": np.array(cos_fit, np.float32),
           "cos_to_source": np.array([float(ve[k] @ vecs[k // per_paper]) for k in range(len(var))], np.float32)}
    VEC_CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def constructed_vectors(recs: list[dict], base: np.ndarray, n: int, calib: dict | None, seed: int = 5) -> np.ndarray:
    """``n`` unit vectors: the real ``base`` rows first, then variant-model rows (see the
    module docstring). Without a calibration: α=0.6, β=0.4 and isotropic residual of
    norm 0.25 (the fitted model's typical values)."""
    rng = np.random.default_rng(seed)
    dim = base.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    m = min(n, len(base))
    out[:m] = base[:m]
    if n <= m:
        return out
    by_cat: dict[str, list[int]] = {}
    for i, r in enumerate(recs[: len(base)]):
        by_cat.setdefault(_primary(r), []).append(i)
    cat_of = [by_cat[_primary(r)] for r in recs[: len(base)]] if recs else None
    step = 50_000
    for s in range(m, n, step):
        cnt = min(step, n - s)
        src = (np.arange(s, s + cnt) - m) % len(base)
        if cat_of is not None:
            don = np.array([(lambda p: p[rng.integers(len(p))])(cat_of[j]) for j in src])
            same = don == src
            don[same] = (don[same] + 1) % len(base)
        else:
            don = rng.integers(0, len(base), cnt)
        if calib is not None:
            pick = rng.integers(0, len(calib["alpha"]), cnt)
            a, b = calib["alpha"][pick][:, None], calib["beta"][pick][:, None]
            R = calib["resid"]
            noise = (rng.standard_normal((cnt, len(R))).astype(np.float32) @ R) / np.sqrt(len(R))
        else:
            a, b = 0.6, 0.4
            noise = rng.standard_normal((cnt, dim)).astype(np.float32) * (0.25 / np.sqrt(dim))
        v = a * base[src] + b * base[don] + noise
        out[s : s + cnt] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def query_vectors(recs: list[dict]) -> tuple[np.ndarray, list[str]]:
    """Real text queries from held-out papers, MiniLM-encoded (cached)."""
    path = VEC_CACHE / "queries.npz"
    if path.exists():
        z = np.load(path)
        return z["vecs"], [str(s) for s in z["shapes"]]
    from benchmarks.queries import make_queries
    from indexer.dense.embeddings import MINILM, get_embedder

    held = recs[-HELD_OUT:]
    qs = make_queries(held, max(QUERY_SHAPES.values()), seed=11)
    texts, shapes = [], []
    for shape, cnt in QUERY_SHAPES.items():
        got = [r["title"] for r in held[:cnt]] if shape == "title" else qs[shape][:cnt]
        texts += got
        shapes += [shape] * len(got)
    vecs = get_embedder(MINILM).encode(texts, batch_size=64)
    VEC_CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, vecs=vecs, shapes=np.array(shapes), texts=np.array(texts))
    return vecs, shapes


def vector_set(n: int, fallback_base: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(vectors, query vectors, description) for an index bench at ``n`` vectors."""
    recs = shuffled_papers() if (VEC_CACHE / "minilm128-shard0").exists() else None
    cache = load_cache(recs) if recs is not None else None
    if cache is not None and len(cache[1]) >= 1000:
        kept, base = cache
        calib = calibrate(kept, base)
        qv, shapes = query_vectors(recs)
        vecs = constructed_vectors(kept, base, n, calib)
        desc = {"construction": "real MiniLM vectors + variant model (benchmarks/bench_dense.py)",
                "real_vectors": int(min(n, len(base))), "calibration_variants": int(len(calib["alpha"])),
                "variant_fit_cos_p50": round(float(np.median(calib["cos_fit"])), 3),
                "variant_cos_to_source_p50": round(float(np.median(calib["cos_to_source"])), 3),
                "alpha_p50": round(float(np.median(calib["alpha"])), 3), "beta_p50": round(float(np.median(calib["beta"])), 3),
                "queries": {s: shapes.count(s) for s in dict.fromkeys(shapes)}, "_shapes": shapes}
        return vecs, qv, desc
    if fallback_base is None or not len(fallback_base):
        raise RuntimeError("no real vectors: run the embeddings bench or fill data/vec-cache (embed_cache_shard)")
    base = np.asarray(fallback_base, dtype=np.float32)
    qbase = base[: max(1, len(base) // 5)]
    vecs = constructed_vectors([], base[len(qbase):], n, None)
    qv = constructed_vectors([], qbase, 2 * len(qbase), None, seed=99)[len(qbase):]
    return vecs, qv, {"construction": "fallback: variant model with default weights over the embeddings bench's vectors",
                      "real_vectors": int(len(base) - len(qbase))}


# -- the index -----------------------------------------------------------------------------

def exact_truth(vecs: np.ndarray, qv: np.ndarray, k: int = 10) -> np.ndarray:
    out = np.empty((len(qv), k), dtype=np.int64)
    for s in range(0, len(qv), 64):
        scores = qv[s : s + 64] @ vecs.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out[s : s + 64] = part
    return out


def recall_at(found: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]))


def exact_latency(vecs: np.ndarray, qv: np.ndarray, sizes=(100_000, 300_000, 1_000_000), queries: int = 40) -> dict:
    from indexer.dense.vectors import ExactIndex

    out = {}
    for size in sizes:
        if size > len(vecs):
            continue
        idx = ExactIndex(vecs[:size])
        out[str(size)] = _timed(lambda q, i=idx: i.search(q, 10), qv[:queries], warmup=2)
    return out


def bench_index(vecs: np.ndarray, qv: np.ndarray, truth: np.ndarray, connectivity: int, expansion_add: int,
                dtype: str, efs=(32, 48, 64, 96, 128, 192, 256, 384), threads: int = 0, shapes: list[str] | None = None,
                deep: tuple[int, int, np.ndarray] | None = None, graph_dims: int | None = None) -> dict:
    """Build one HNSW graph, then recall@10 and latency for each search expansion; with
    ``deep`` = (expansion, k, exact top-k) also recall@k and latency at depth k (the
    engine asks the dense side for 200 candidates to fuse)."""
    from indexer.dense.vectors import HNSWIndex

    rss0 = _rss_mb()
    c0, t0 = time.process_time(), time.perf_counter()
    ann = HNSWIndex.build(vecs, threads=threads, connectivity=connectivity, expansion_add=expansion_add, dtype=dtype,
                          graph_dims=graph_dims)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"connectivity": connectivity, "expansion_add": expansion_add, "dtype": dtype, "vectors": len(vecs),
           "graph_dims": ann.params["graph_dims"], "rerank": ann.params["rerank"],
           "build_s": round(build_s, 1), "build_cpu_s": round(build_cpu, 1), "build_load_avg": _load(),
           "index_mb": round(ann.index.memory_usage / 1e6, 1), "file_mb": round(ann.index.serialized_length / 1e6, 1),
           "rss_growth_mb": round(_rss_mb() - rss0, 1), "search": {}}
    for ef in efs:
        ann.expansion_search = ef
        ann.index.expansion_search = ef
        found = [[r for r, _ in ann.search(q, 10)] for q in qv]
        lat = _timed(lambda q: ann.search(q, 10), qv[: min(len(qv), 200)], warmup=5)
        out["search"][str(ef)] = {"recall_at_10": round(recall_at(found, truth), 4), **lat}
        if shapes:
            out["search"][str(ef)]["recall_by_query"] = {
                sh: round(recall_at([f for f, x in zip(found, shapes, strict=True) if x == sh],
                                    truth[[i for i, x in enumerate(shapes) if x == sh]]), 4)
                for sh in dict.fromkeys(shapes)}
        if deep and deep[0] == ef:
            _, dk, dtruth = deep
            found = [[r for r, _ in ann.search(q, dk)] for q in qv]
            lat = _timed(lambda q, dk=dk: ann.search(q, dk), qv[: min(len(qv), 200)], warmup=5)
            out[f"at_{dk}"] = {"expansion_search": ef, f"recall_at_{dk}": round(recall_at(found, dtruth), 4), **lat}
    return out


def bench_vectors(base: np.ndarray, n: int, queries: int = 400) -> dict:
    """The vector index at ``n`` vectors with the parameters in indexer/dense/vectors.py:
    exact p50 at 100k/300k/1M, HNSW build time and memory, recall@10 and p50 for a range
    of search expansions (the configured one reported as ``hnsw``)."""
    from indexer.dense import vectors as V

    vecs, qv, desc = vector_set(n, base)
    qv = qv[:queries]
    shapes = desc.pop("_shapes", None)
    shapes = shapes[: len(qv)] if shapes else None
    t0 = time.perf_counter()
    truth = exact_truth(vecs, qv)
    out: dict = {"vectors": n, "dim": int(vecs.shape[1]), "matrix_mb": round(vecs.nbytes / 1e6, 1), **desc,
                 "queries_used": len(qv), "ground_truth_s": round(time.perf_counter() - t0, 1),
                 "ann_threshold": V.ANN_THRESHOLD}
    sizes = tuple(s for s in (10_000, 100_000, 300_000, 1_000_000) if s <= n) or (n,)
    out["exact_by_size"] = exact_latency(vecs, qv, sizes)
    out["exact_numpy"] = out["exact_by_size"][str(max(sizes))]
    projected = 0 < V.HNSW_GRAPH_DIMS < vecs.shape[1]  # the graph holds PCA-projected vectors
    ef = V.HNSW_EXPANSION_SEARCH_PROJECTED if projected else V.HNSW_EXPANSION_SEARCH
    efs = sorted({32, 64, 128, 192, 256, 384, ef})
    deep = (ef, 200, exact_truth(vecs, qv, 200))
    res = bench_index(vecs, qv, truth, V.HNSW_CONNECTIVITY, V.HNSW_EXPANSION_ADD, V.HNSW_DTYPE, efs, shapes=shapes, deep=deep)
    chosen = res["search"][str(ef)]
    out["ann_params"] = {"library": "usearch", "connectivity": V.HNSW_CONNECTIVITY, "expansion_add": V.HNSW_EXPANSION_ADD,
                         "expansion_search": ef, "dtype": V.HNSW_DTYPE,
                         "graph_dims": res["graph_dims"], "rerank": res["rerank"]}
    out["hnsw_build_s"] = res["build_s"]
    out["hnsw_build_cpu_s"] = res["build_cpu_s"]
    out["hnsw_index_mb"] = res["index_mb"]
    out["hnsw_file_mb"] = res["file_mb"]
    out["hnsw_rss_growth_mb"] = res["rss_growth_mb"]
    out["hnsw"] = {k: v for k, v in chosen.items() if k != "recall_at_10"}
    out["hnsw_recall_at_10"] = chosen["recall_at_10"]
    out["hnsw_by_expansion"] = res["search"]
    out["hnsw_200_candidates"] = res.get("at_200")  # the engine's fusion depth
    out["speedup_vs_exact"] = round(out["exact_numpy"]["p50_ms"] / max(out["hnsw"]["p50_ms"], 1e-6), 1)
    out["load_avg"] = _load()
    return out


def sweep(n: int, settings: list[tuple[int, int, str, int]], out_path: Path, queries: int = 400) -> dict:
    """Several graph settings at ``n`` vectors (the run behind the chosen constants)."""
    vecs, qv, desc = vector_set(n)
    qv = qv[:queries]
    shapes = desc.pop("_shapes", None)
    truth = exact_truth(vecs, qv)
    report: dict = {"vectors": n, **desc, "exact_by_size": exact_latency(vecs, qv), "settings": []}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1))
    for m, efc, dt, dims in settings:
        efs = (32, 48, 64, 96, 128, 192, 256, 320, 384, 512)
        report["settings"].append(bench_index(vecs, qv, truth, m, efc, dt, efs, shapes=shapes, graph_dims=dims))
        out_path.write_text(json.dumps(report, indent=1))
        print(json.dumps(report["settings"][-1]), flush=True)
    return report


def validate(ratio: int, setting: tuple[int, int, str], out_path: Path, queries: int = 400) -> dict:
    """Is the construction realistic for an ANN index? At the size of the cache, the same
    graph settings on (a) only real vectors and (b) vectors constructed from 1/``ratio``
    of them: recall@10 per search expansion and how near the neighbours are."""
    recs = shuffled_papers()
    kept, base = load_cache(recs)
    calib = calibrate(kept, base)
    qv, shapes = query_vectors(recs)
    qv, shapes = qv[:queries], shapes[:queries]
    n = len(base)
    sets = {"real": base, f"constructed_1_in_{ratio}_real": constructed_vectors(kept, base[: n // ratio], n, calib)}
    report: dict = {"vectors": n, "setting": setting, "sets": {}}
    for name, vecs in sets.items():
        truth = exact_truth(vecs, qv)
        s = np.sort(qv @ vecs.T, axis=1)[:, ::-1][:, :10]
        res = bench_index(vecs, qv, truth, *setting, shapes=shapes)
        res["query_nn_cos_p50"] = {"1st": round(float(np.median(s[:, 0])), 3), "10th": round(float(np.median(s[:, 9])), 3)}
        report["sets"][name] = res
        out_path.write_text(json.dumps(report, indent=1))
        print(name, json.dumps({k: v["recall_at_10"] for k, v in res["search"].items()}), res["query_nn_cos_p50"], flush=True)
    return report


def dump(n: int, out_dir: Path, queries: int = 400) -> None:
    """Write the n-vector set, queries and exact top-10 as .npy (for ``compare``)."""
    vecs, qv, desc = vector_set(n)
    qv = qv[:queries]
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "vecs.npy", vecs)
    np.save(out_dir / "queries.npy", qv)
    np.save(out_dir / "truth.npy", exact_truth(vecs, qv))


def compare(in_dir: Path, m: int, efc: int, efs=(64, 128, 256, 320), libs=("usearch-i8", "usearch", "faiss", "hnswlib")) -> dict:
    """The same HNSW graph settings in usearch, faiss and hnswlib on a ``dump``: build
    time, memory and recall@10/p50 per search expansion (one thread per query, like the
    service). Needs only numpy and whichever libraries are importable."""
    vecs, qv, truth = (np.load(in_dir / f) for f in ("vecs.npy", "queries.npy", "truth.npy"))
    n, dim = vecs.shape
    threads = os.cpu_count() or 1
    report: dict = {"vectors": n, "connectivity": m, "expansion_add": efc, "libs": {}}
    for lib in libs:
        try:
            rss0 = _rss_mb()
            c0, t0 = time.process_time(), time.perf_counter()
            if lib.startswith("usearch"):
                from usearch.index import Index

                dt = "i8" if "i8" in lib else "f32"
                idx = Index(ndim=dim, metric="ip", dtype=dt, connectivity=m, expansion_add=efc)
                idx.add(np.arange(n, dtype=np.uint64), vecs, threads=threads)

                def set_ef(ef, idx=idx):
                    idx.expansion_search = ef

                if lib.endswith("rerank"):  # what HNSWIndex does: 32 candidates, exact float32 order

                    def one(q, idx=idx):
                        keys = np.asarray(idx.search(q, 32).keys, dtype=np.int64)
                        return keys[np.argsort(-(vecs[keys] @ q))[:10]]
                else:

                    def one(q, idx=idx):
                        return np.asarray(idx.search(q, 10).keys)
            elif lib == "faiss":
                import faiss

                faiss.omp_set_num_threads(threads)
                idx = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
                idx.hnsw.efConstruction = efc
                idx.add(vecs)
                faiss.omp_set_num_threads(1)

                def set_ef(ef, idx=idx):
                    idx.hnsw.efSearch = ef

                def one(q, idx=idx):
                    return idx.search(q[None, :], 10)[1][0]
            else:
                import hnswlib

                idx = hnswlib.Index(space="ip", dim=dim)
                idx.init_index(max_elements=n, ef_construction=efc, M=m)
                idx.set_num_threads(threads)
                idx.add_items(vecs, np.arange(n))
                idx.set_num_threads(1)

                def set_ef(ef, idx=idx):
                    idx.set_ef(ef)

                def one(q, idx=idx):
                    return idx.knn_query(q, k=10)[0][0]
            res = {"build_s": round(time.perf_counter() - t0, 1), "build_cpu_s": round(time.process_time() - c0, 1),
                   "rss_growth_mb": round(_rss_mb() - rss0, 1), "load_avg": _load(), "search": {}}
            for ef in efs:
                set_ef(ef)
                found = [list(map(int, one(q))) for q in qv]
                res["search"][str(ef)] = {"recall_at_10": round(recall_at(found, truth), 4),
                                          **_timed(one, qv[:200], warmup=5)}
            report["libs"][lib] = res
            del idx
        except Exception as e:  # noqa: BLE001 - a missing library is reported
            report["libs"][lib] = {"error": f"{type(e).__name__}: {e}"[:200]}
        print(lib, json.dumps(report["libs"][lib]), flush=True)
    return report


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="dense-index sweep (see module docstring)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="fill data/vec-cache: one shard of the real papers")
    e.add_argument("shard", type=int)
    e.add_argument("shards", type=int)
    e.add_argument("--n", type=int, default=100_000 - HELD_OUT)
    s = sub.add_parser("sweep", help="HNSW settings at n vectors: recall@10 vs exact, latency, build, memory")
    s.add_argument("--n", type=int, default=1_000_000)
    s.add_argument("--setting", action="append", default=[],
                   help="connectivity:expansion_add:dtype[:graph_dims], e.g. 16:128:f16 or 32:128:i8:256 (0: full vectors)")
    s.add_argument("--out", type=Path, default=VEC_CACHE / "sweep.json")
    v = sub.add_parser("validate", help="real-only vs constructed vectors at the cache's size")
    v.add_argument("--ratio", type=int, default=25)
    v.add_argument("--setting", default="16:128:f16")
    v.add_argument("--out", type=Path, default=VEC_CACHE / "validate.json")
    d = sub.add_parser("dump", help="write a vector set + queries + exact top-10 as .npy")
    d.add_argument("--n", type=int, default=300_000)
    d.add_argument("--out", type=Path, default=VEC_CACHE / "dump")
    c = sub.add_parser("compare", help="usearch vs faiss vs hnswlib on a dump (any venv with numpy)")
    c.add_argument("--dir", type=Path, default=VEC_CACHE / "dump")
    c.add_argument("--setting", default="16:128")
    c.add_argument("--out", type=Path, default=VEC_CACHE / "compare.json")
    c.add_argument("--lib", action="append", default=[], help="usearch, usearch-i8, usearch-i8-rerank, faiss, hnswlib")
    a = ap.parse_args(argv)
    if a.cmd == "embed":
        embed_cache_shard(a.shard, a.shards, a.n)
    elif a.cmd == "dump":
        dump(a.n, a.out)
    elif a.cmd == "compare":
        m, efc = a.setting.split(":")
        libs = tuple(a.lib) or ("usearch-i8-rerank", "usearch-i8", "usearch", "faiss", "hnswlib")
        a.out.write_text(json.dumps(compare(a.dir, int(m), int(efc), libs=libs), indent=1))
    elif a.cmd == "validate":
        m, efc, dt = a.setting.split(":")
        validate(a.ratio, (int(m), int(efc), dt), a.out)
    else:
        settings = []
        for st in a.setting or ["16:128:f16"]:
            m, efc, dt, *dims = st.split(":")
            settings.append((int(m), int(efc), dt, int(dims[0]) if dims else 0))
        sweep(a.n, settings, a.out)


if __name__ == "__main__":
    sys.exit(main())
