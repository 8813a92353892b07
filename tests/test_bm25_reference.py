"""Our tantivy-served BM25 agrees with the rank-bm25 reference (BM25Okapi) on real data.

Setup: the bundled 8k real arXiv sample; the title folded into the abstract (so ``text_t``
holds exactly title + abstract, with no title repetition), so both
engines score exactly the same token lists from :mod:`indexer.text.tokenizer`. rank-bm25 runs
with tantivy's k1=1.2, b=0.75.

Queries: 30 sets of 2–4 distinct content terms drawn from random real titles (seed 42).

Agreement measures and thresholds (docs/bm25-engine.md explains the residual differences:
idf ``log(1 + (N-n+0.5)/(n+0.5))`` vs ``log((N-n+0.5)/(n+0.5))`` with epsilon flooring,
and tantivy's one-byte field-length quantisation):
- mean overlap@10 of the two top-10 sets ≥ 0.90, and no query below 0.70;
- mean Spearman correlation between the two engines' scores over the reference's top-10
  documents ≥ 0.80.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from indexer.lexical.bm25 import BM25Index, IndexedDoc
from indexer.text.tokenizer import tokenize

SAMPLE = Path(__file__).resolve().parents[1] / "indexer" / "data" / "sample-papers.jsonl.gz"
N_QUERIES = 30


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    ix = BM25Index.open(tmp_path_factory.mktemp("ref") / "bm25")
    ix.upsert([IndexedDoc(d["id"], "", d["title"] + "\n" + d["abstract"]) for d in docs])
    ix.commit()
    tokens = [tokenize(d["title"]) + tokenize(d["abstract"]) for d in docs]
    ref = BM25Okapi(tokens, k1=1.2, b=0.75)
    rng = random.Random(42)
    queries = []
    while len(queries) < N_QUERIES:
        words = list(dict.fromkeys(tokenize(rng.choice(docs)["title"])))
        if len(words) >= 2:
            queries.append(rng.sample(words, min(len(words), rng.randint(2, 4))))
    return ix, ref, [d["id"] for d in docs], queries


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (what Spearman's rho needs), numpy only."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for v in np.unique(x):
        tie = x == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(a, b) -> float:
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1])


def _reference_top(ref: BM25Okapi, ids: list[str], q: list[str], k: int = 10) -> tuple[list[str], np.ndarray]:
    scores = ref.get_scores(q)
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in order], scores[order]


def test_top10_overlap_with_rank_bm25(setup):
    ix, ref, ids, queries = setup
    overlaps = []
    for q in queries:
        top, _ = _reference_top(ref, ids, q)
        ours = [h.id for h in ix.search_tokens(q, limit=10)]
        overlaps.append(len(set(top) & set(ours)) / 10)
    assert np.mean(overlaps) >= 0.90, overlaps
    assert min(overlaps) >= 0.70, overlaps


def test_score_rank_correlation_with_rank_bm25(setup):
    ix, ref, ids, queries = setup
    rhos = []
    for q in queries:
        top, ref_scores = _reference_top(ref, ids, q)
        ours = ix.score_ids(dict.fromkeys(q, 1.0), top)
        our_scores = [ours.get(i, 0.0) for i in top]
        if np.ptp(ref_scores) == 0 or np.ptp(our_scores) == 0:
            continue  # all tied: no order to correlate
        rhos.append(spearman(ref_scores, our_scores))
    assert len(rhos) >= N_QUERIES // 2
    assert np.mean(rhos) >= 0.80, rhos


def test_agreement_is_not_trivial(setup):
    """The measure can fail: a different tokenisation (no stemming) disagrees clearly."""
    ix, _, ids, queries = setup
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        raw = [(json.loads(line)) for line in f]
    unstemmed = BM25Okapi([(d["title"] + " " + d["abstract"]).lower().split() for d in raw], k1=1.2, b=0.75)
    overlaps = []
    for q in queries:
        top, _ = _reference_top(unstemmed, ids, q)
        ours = [h.id for h in ix.search_tokens(q, limit=10)]
        overlaps.append(len(set(top) & set(ours)) / 10)
    assert np.mean(overlaps) < 0.90
