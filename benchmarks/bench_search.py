"""Search latency: our BM25 index vs rank-bm25 on the same tokens, the engine's three
modes, and related-paper lookups.

Why rank-bm25 is the baseline: it is the plain-Python reference implementation of
BM25Okapi (score every document per query), so "×faster than rank-bm25" says what the
inverted index buys. It needs the whole tokenised corpus in memory (~6 GB at 1M), so at
large sizes it runs on a small query sample; the agreement column (mean top-10 overlap)
shows both answer the same question.
"""

from __future__ import annotations

import random
import re
import time

from benchmarks.measure import latency_ms, peak_rss_mb, summarize
from benchmarks.queries import SHAPES


def open_bm25(path):
    from indexer.lexical.bm25 import BM25Index

    try:
        return BM25Index.open(path, readonly=True)
    except TypeError:
        return BM25Index.open(path)


def bench_bm25(index, queries: dict[str, list[str]]) -> dict:
    """The index component alone: parse + search, top 10."""
    from indexer.lexical.query import parse_query

    out = {"docs": index.num_docs}
    for shape in SHAPES:
        out[shape] = latency_ms(lambda q: index.search(parse_query(q), limit=10), queries[shape])
    return out


def ours_top10(index, q: str) -> list[str]:
    from indexer.lexical.query import parse_query

    return [h.id for h in index.search(parse_query(q), limit=10).hits]


def bench_rank_bm25(records: list[dict], queries: dict[str, list[str]], per_shape: dict[str, int], index=None,
                    plain_tokens: bool = False) -> dict:
    """rank-bm25 BM25Okapi over the same records and our tokenizer's terms.

    ``plain_tokens`` (used at 1M, where running our tokenizer over 1.5 GB would dominate
    the run on a shared machine) tokenises with lower-cased regex words minus stop words
    instead. rank-bm25's per-query cost is a Python loop over every document per query
    term, so it barely depends on which tokens it holds; the top-10 agreement is then
    not comparable and is left out.
    """
    import numpy as np
    from rank_bm25 import BM25Okapi

    from indexer.text.tokenizer import ENGLISH_STOP_WORDS, default_tokenizer

    if plain_tokens:
        word = re.compile(r"[a-z0-9]+")

        def tokenize(t: str) -> list[str]:
            return [w for w in word.findall(t.lower()) if w not in ENGLISH_STOP_WORDS]

        index = None
    else:
        tokenize = default_tokenizer().tokenize
    t0 = time.perf_counter()
    corpus = [tokenize(f"{r['title']} {r['abstract']}") for r in records]
    ids = [r["id"] for r in records]
    bm = BM25Okapi(corpus)
    del corpus
    out: dict = {"docs": len(ids), "build_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": peak_rss_mb(),
                 "tokens": "regex+lower-stopwords" if plain_tokens else "ours"}
    for shape in SHAPES:
        qs = queries[shape][: per_shape.get(shape, 5)]
        times, overlaps = [], []
        for q in qs:
            terms = tokenize(q)
            t = time.perf_counter()
            scores = bm.get_scores(terms)
            top = np.argpartition(-scores, 10)[:10] if len(scores) > 10 else np.arange(len(scores))
            top = top[np.argsort(-scores[top])]
            times.append((time.perf_counter() - t) * 1000.0)
            if index is not None:
                theirs = {ids[i] for i in top if scores[i] > 0}
                mine = set(ours_top10(index, q))
                if theirs:
                    overlaps.append(len(theirs & mine) / len(theirs))
        out[shape] = summarize(times)
        if overlaps:
            out[shape]["top10_overlap"] = round(sum(overlaps) / len(overlaps), 3)
    return out


def bench_engine(engine, queries: dict[str, list[str]], modes=("bm25", "dense", "hybrid")) -> dict:
    """SearchEngine.search end to end (parse, retrieve, fuse, fetch rows, highlight), size 10."""
    out: dict = {}
    for mode in modes:
        out[mode] = {}
        for shape in SHAPES:
            out[mode][shape] = latency_ms(lambda q, m=mode: engine.search(q, mode=m, size=10), queries[shape])
    return out


def bench_related(engine, ids: list[str], n: int, seed: int = 11) -> dict:
    rng = random.Random(seed)
    sample = rng.sample(ids, min(n, len(ids)))
    return latency_ms(lambda i: engine.related(i, k=10), sample)
