"""Related papers and related work for a pasted text: the ranking behind
``/api/papers/{id}/related``, ``/api/similar`` and the ``/similar`` page.

Measured on citations (``papers eval related``, related_hepth_dev, docs/quality.md): a
paper's related papers should be the ones it cites or that cite it. Cool Papers' recipe
(its top-10 TF-IDF keywords as a BM25 query) scores 0.31 nDCG@10 there and the whole
title + abstract as a plain BM25 query 0.39, so the keywords stay the *explanation* of
each hit and the ranking is:

1. **The paper's text as the query**: its :data:`QUERY_TERMS` terms of highest tf·idf
   (:data:`TEXT_QUERY_TERMS` for a pasted text)
   (title counted :data:`indexer.lexical.bm25.TITLE_REPEAT` times, as indexed), each weighted by
   its frequency in the paper; bounded so a long abstract costs what a short one does.
2. **Co-authors**: papers that share an author (same last name and first initial,
   :func:`indexer.text.tokenizer.author_key`) join the candidates, and every candidate gains
   :data:`COAUTHOR_BONUS` × the best text score per shared author (at most
   :data:`COAUTHOR_CAP`). Researchers cite and continue their own and their co-authors'
   work; this lifts nDCG@10 from 0.42 to 0.49. A pasted text has no authors: step 1 alone.
3. The dense neighbours (when the embedding index is built) are fused in by the engine.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from indexer.lexical.bm25 import BM25Index
from indexer.lexical.ranking import feedback_terms
from indexer.search import fusion
from indexer.text.tokenizer import author_key

QUERY_TERMS = 30  # a paper's terms of highest tf·idf sent as its related query (with co-authors, related_hepth_dev lexical: 25: 0.476, 30: 0.482, 40: 0.490, all: 0.496); bounded for speed: 1M lexical p50 40: 22.5 ms, 30: 18.8 ms
TEXT_QUERY_TERMS = 60  # the same for a pasted text, which has no co-authors to lean on (40: 0.403, 60: 0.415, all: 0.4175)
DEPTH = 100  # text candidates read before the co-author bonus (60: -0.012, 200: +0.001; 2x the 1M cost)
COAUTHOR_CANDIDATES = 200  # papers per shared author looked at (candidates and bonus)
MAX_AUTHORS = 20  # authors of the paper whose other papers are looked up
EXTRA_CANDIDATES = 50  # co-authored papers outside the text's candidates that are scored and may join
COAUTHOR_BONUS = 0.3  # × the best text score, per shared author (0.2–0.3 plateau; 0.4: -0.009)
COAUTHOR_CAP = 2  # shared authors that count
DENSE_WEIGHT = 0.5  # the embedding neighbours' weight beside the lexical run's 1 (z-score fusion; related 0.25–0.75 plateau)


def text_query(title: str, abstract: str, doc_freq: Callable[[str], int], num_docs: int,
               n_terms: int = QUERY_TERMS, *,
               doc_freqs: Callable[[Sequence[str]], Mapping[str, int]] | None = None) -> dict[str, float]:
    """A paper's text as a weighted bag: its ``n_terms`` terms of highest tf·idf, each
    weighted by its frequency in the paper (idf already counts once in BM25)."""
    tf = Counter(feedback_terms(title, abstract))
    if not tf or num_docs <= 0:
        return {}
    scored = {}
    dfs = doc_freqs(list(tf)) if doc_freqs is not None else {t: doc_freq(t) for t in tf}
    for t, n in tf.items():
        df = dfs[t]
        scored[t] = n * math.log(1.0 + (num_docs - df + 0.5) / (df + 0.5))
    keep = sorted(scored, key=lambda t: (-scored[t], t))[:n_terms]
    return {t: float(tf[t]) for t in keep}


def author_keys(authors: Sequence[str] | None) -> frozenset[str]:
    return frozenset(k for k in map(author_key, authors or []) if k)


def rank_related(bm25: BM25Index, weights: Mapping[str, float], *, authors: Sequence[str] = (),
                 exclude: Sequence[str] = (), depth: int = DEPTH) -> list[tuple[str, float]]:
    """Candidates by text (``weights``), plus papers by the same authors, each scored by
    text plus the co-author bonus; best first. Shared authors are read from the index
    (:meth:`indexer.lexical.bm25.BM25Index.text_and_coauthors`), so no database rows are needed."""
    keys = sorted(author_keys(authors))[:MAX_AUTHORS]
    if not keys:
        ranked = {h.id: h.score for h in bm25.search_terms(weights, limit=depth, exclude_ids=tuple(exclude))} if weights else {}
        return sorted(ranked.items(), key=lambda x: (-x[1], x[0]))
    # with the co-authored papers the text did not find: those sharing the most authors, a bounded few
    ranked, shared, extra = bm25.text_and_coauthors(weights, keys, depth=depth, per_author=COAUTHOR_CANDIDATES,
                                                    extra=EXTRA_CANDIDATES, exclude_ids=tuple(exclude))
    if extra:
        scored = bm25.score_ids(weights, extra) if weights else {}
        ranked.update({i: scored.get(i, 0.0) for i in extra})
    if not ranked:
        return []
    best = max(ranked.values()) or 1.0
    out = {pid: score + COAUTHOR_BONUS * best * min(COAUTHOR_CAP, shared.get(pid, 0)) for pid, score in ranked.items()}
    return sorted(out.items(), key=lambda x: (-x[1], x[0]))


def fuse(lex: Sequence[tuple[str, float]], dense: Sequence[tuple[str, float]],
         dense_weight: float | None = None) -> list[tuple[str, float]]:
    """The lexical ranking fused with the embedding neighbours (z-scores, weighted)."""
    w = DENSE_WEIGHT if dense_weight is None else dense_weight
    if not dense or w <= 0:
        return list(lex)
    return [(str(d), s) for d, s in fusion.fuse([lex, dense], method="zscore", weights=[1.0, w])]
