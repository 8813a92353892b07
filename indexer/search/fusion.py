"""Combining ranked runs (BM25, dense) into one ranking.

Why not plain reciprocal-rank fusion everywhere: RRF gives every run the same say, so a
retriever that does not understand the query (English MiniLM on a Chinese question,
BM25 on a query none of whose words occur in the corpus) pushes its noise into the top
ranks and the fusion ends up worse than the good retriever alone. Score fusion
normalises each run (z-scores), and weights it by how sure that run is; an empty run
has weight zero, so the fused ranking equals the other run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from indexer.dense.embeddings import is_multilingual
from indexer.text.tokenizer import default_tokenizer, has_cjk

if TYPE_CHECKING:  # a type only: fusion needs no query parser at run time
    from indexer.lexical.query import ParsedQuery

Run = Sequence[tuple[Hashable, float]]

METHODS = ("rrf", "zscore", "minmax")
RRF_K = 60


def rrf(runs: Sequence[Run], k: int = RRF_K, weights: Sequence[float] | None = None) -> list[tuple[Hashable, float]]:
    """Reciprocal-rank fusion: sum of w / (k + rank) over the runs a doc appears in."""
    weights = weights or [1.0] * len(runs)
    scores: dict[Hashable, float] = {}
    for run, w in zip(runs, weights, strict=True):
        if w <= 0:
            continue
        for rank, (doc, _) in enumerate(run, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    return _sorted(scores)


def _normalised(run: Run, how: str) -> tuple[dict[Hashable, float], float]:
    """Per-run normalised scores and the value a doc absent from the run receives."""
    if not run:
        return {}, 0.0
    values = [float(s) for _, s in run]
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):  # one doc, or all tied: present beats absent
        return dict.fromkeys((d for d, _ in run), 1.0), 0.0
    if how == "minmax":
        return {d: (float(s) - lo) / (hi - lo) for d, s in run}, 0.0
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    norm = {d: (float(s) - mean) / sd for d, s in run}
    return norm, min(norm.values())


def score_fusion(runs: Sequence[Run], weights: Sequence[float] | None = None, how: str = "zscore") -> list[tuple[Hashable, float]]:
    """Weighted sum of per-run normalised scores; a doc missing from a run gets that
    run's lowest normalised score (it ranked below everything the run returned)."""
    weights = weights or [1.0] * len(runs)
    parts = [(_normalised(run, how), w) for run, w in zip(runs, weights, strict=True) if run and w > 0]
    docs: dict[Hashable, None] = {}
    for (norm, _), _w in parts:
        docs.update(dict.fromkeys(norm))
    scores = {d: sum(w * norm.get(d, floor) for (norm, floor), w in parts) for d in docs}
    return _sorted(scores)


def fuse(runs: Sequence[Run], method: str = "zscore", weights: Sequence[float] | None = None, k: int = RRF_K) -> list[tuple[Hashable, float]]:
    """Fuse runs with ``rrf``, ``zscore`` or ``minmax``. Empty runs are ignored, so the
    result equals the one non-empty run's order when only one retriever found anything."""
    if method not in METHODS:
        raise ValueError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS)}")
    live = [(r, w) for r, w in zip(runs, weights or [1.0] * len(runs), strict=True) if r and w > 0]
    if not live:
        return []
    if len(live) == 1:
        return [(d, float(s)) for d, s in live[0][0]]
    rs, ws = [r for r, _ in live], [w for _, w in live]
    if method == "rrf":
        return rrf(rs, k=k, weights=ws)
    return score_fusion(rs, ws, how=method)


def _sorted(scores: dict[Hashable, float]) -> list[tuple[Hashable, float]]:
    return sorted(scores.items(), key=lambda x: (-x[1], str(x[0])))


# -- the engine's hybrid ranking -----------------------------------------------------------
#
# One configuration for every collection (tuned on SciFact and the Chinese→English dev
# sets, see docs/quality.md): weighted z-score fusion where each run's weight is
# the confidence that its retriever understood the query.

LEX_WEIGHT = 1.3  # BM25's weight once it has matched enough of the query (tuned: 1.2–1.4 is a plateau)
DENSE_WEIGHT = 1.0  # the dense run's weight when its model reads the query's language
AUX_WEIGHT = 0.3  # the multilingual run beside MiniLM on English queries (tuned: 0.2–0.4 plateau)
DENSE_BLIND_WEIGHT = 0.0  # an English-only model given a CJK query (no multilingual model)
EVIDENCE_NONE = 5.0  # matched idf mass at or below which BM25 gets no weight ...
EVIDENCE_FULL = 10.0  # ... and from which it gets its full weight (one term in <0.1 % of docs)
ESTIMATED_IDF = EVIDENCE_FULL  # per non-CJK word of a CJK query, when the caller cannot ask the index


def idf(df: int, num_docs: int) -> float:
    """BM25's (Lucene/tantivy) inverse document frequency."""
    return math.log(1.0 + (num_docs - df + 0.5) / (df + 0.5))


def lexical_evidence(terms: Iterable[str], doc_freq: Callable[[str], int], num_docs: int) -> float:
    """How much BM25 has to go on: the summed idf of the query's distinct terms that occur
    in the corpus at all (terms absent from the corpus add nothing). A query all of whose
    terms occur is fully understood, whatever their idf (``max(mass, EVIDENCE_FULL)``), so a
    one-word query such as "transformer" keeps BM25.

    Why this signal (measured, docs/quality.md): a Chinese question about
    English papers matches at most a stray number or a common word (mass ≤ 4.4 on
    zh_en_dev_pure, where BM25's MRR is 0), while a single distinctive Latin name such as
    "SpineAlign" (idf ≈ 7) is enough for BM25 to find the paper (MRR 0.91 at mass 6–10 on
    zh_en_dev); English questions have mass ≥ 9 (SciFact)."""
    distinct = list(dict.fromkeys(t for t in terms if t))
    if num_docs <= 0 or not distinct:
        return 0.0
    total, matched = 0.0, 0
    for t in distinct:
        df = doc_freq(t)
        if df > 0:
            total += idf(df, num_docs)
            matched += 1
    return max(total, EVIDENCE_FULL) if matched == len(distinct) else total


def estimated_evidence(query: str) -> float:
    """Without the index: full evidence for a query without CJK terms, else ESTIMATED_IDF
    per distinct non-CJK, non-numeric term. Assumes an English corpus (arXiv), where CJK
    terms never match; only used when the caller passes no evidence."""
    terms = set(default_tokenizer().tokenize(query))
    if not terms:
        return 0.0
    if not any(has_cjk(t) for t in terms):
        return EVIDENCE_FULL
    return ESTIMATED_IDF * sum(1 for t in terms if not has_cjk(t) and not t.isdigit())


def lexical_confidence(evidence: float) -> float:
    """Evidence → weight in [0, 1]: none up to EVIDENCE_NONE, full from EVIDENCE_FULL."""
    if evidence <= EVIDENCE_NONE:
        return 0.0
    return min(1.0, (evidence - EVIDENCE_NONE) / (EVIDENCE_FULL - EVIDENCE_NONE))


def dense_confidence(query: str, dense_model: str | None) -> float:
    """1 when the dense model reads the query's language; DENSE_BLIND_WEIGHT for CJK text
    given to an English-only model."""
    if dense_model is None:
        return 1.0
    if has_cjk(query) and not is_multilingual(dense_model):
        return DENSE_BLIND_WEIGHT
    return 1.0


def hybrid(
    lex: Run,
    dense: Run,
    query: str = "",
    *,
    evidence: float | None = None,
    dense_model: str | None = None,
    aux: Run = (),
    aux_model: str | None = None,
    lex_weight: float = LEX_WEIGHT,
) -> list[tuple[Hashable, float]]:
    """The engine's hybrid ranking of one BM25 run and one dense run.

    ``evidence``: :func:`lexical_evidence` of the query's terms (the engine knows the
    index; without it :func:`estimated_evidence` of the query text is used).
    ``dense_model``: the model that produced ``dense`` (to notice a CJK query given to an
    English-only model). An empty run, or one whose retriever cannot read the query, gets
    weight 0, so the result is never dragged below the better retriever.
    ``aux``: an optional second dense run (the multilingual space, which the build keeps
    for Chinese queries anyway) given AUX_WEIGHT on English queries: a different model's
    view of the same query adds recall that MiniLM misses (SciFact +0.005 nDCG@10,
    docs/quality.md). Ignored when ``dense`` already comes from that model.
    ``lex_weight``: BM25's full weight (higher for a translated Chinese query, see
    :data:`TRANSLATED_LEX_BOOST`).
    """
    if evidence is None:
        evidence = estimated_evidence(query) if query else EVIDENCE_FULL
    w_lex = lex_weight * lexical_confidence(evidence) if lex else 0.0
    w_dense = DENSE_WEIGHT * dense_confidence(query, dense_model) if dense else 0.0
    if w_lex <= 0 and w_dense <= 0:  # neither is sure: keep whatever was found
        w_lex, w_dense = (1.0 if lex else 0.0), (1.0 if dense else 0.0)
    w_aux = 0.0
    if aux and aux_model != dense_model and w_dense > 0:
        w_aux = AUX_WEIGHT * dense_confidence(query, aux_model)
    return fuse([lex, dense, aux], method="zscore", weights=[w_lex, w_dense, w_aux])


#: BM25's weight in hybrid fusion for a query whose Chinese was translated, relative to an
#: English query's: the multilingual encoder is weak on short Chinese topic queries (0.105
#: nDCG@10 on zh_topics_dev) where the translated BM25 run is strong (0.648); at the
#: default weight the fusion fell to 0.447. 3–6 is a plateau on zh_topics_dev, zh_en_dev
#: and zh_en_dev_pure (docs/quality.md).
TRANSLATED_LEX_BOOST = 4.0


def lex_weight(translated: bool) -> float:
    """BM25's full weight in :func:`hybrid` for this query."""
    return LEX_WEIGHT * (TRANSLATED_LEX_BOOST if translated else 1.0)


def query_evidence(parsed: ParsedQuery, doc_freq: Callable[[str], int], num_docs: int,
             translated: Mapping[str, float] | None = None, coverage: float = 0.0) -> float:
    """How much the lexical run has to go on (:func:`lexical_evidence`),
    counting translated English terms in place of the Chinese ones they stand for, scaled
    by the share of the Chinese text the translation covered."""
    if not translated:
        return lexical_evidence(sorted(parsed.positive_terms), doc_freq, num_docs)
    terms = [t for t in sorted(parsed.positive_terms) if not has_cjk(t)]
    terms += [w for key in translated for w in key.split()]
    return lexical_evidence(terms, doc_freq, num_docs) * coverage
