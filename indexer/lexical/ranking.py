"""The lexical ranking every caller shares: the engine (``--mode bm25`` and hybrid's BM25
run), ``papers eval retrieval`` and the benchmarks rank a query through :func:`rank`.

Two steps on top of :meth:`indexer.lexical.bm25.BM25Index.search`, each measured over all
development collections (docs/quality.md):

- **Translated Chinese terms** (:mod:`indexer.text.zh_en`): when a query names several, papers
  holding all of them rank first, then papers holding some (the same strict-then-relaxed
  merge as phrases).
- **Quoted phrases that match nothing are relaxed.** A phrase is required, so a phrase no
  paper contains used to return nothing at all. Papers that match the strict query rank
  first; when they do not fill the window, the relaxed query (the phrase becomes an
  optional, strongly weighted clause beside its words) supplies the closest papers after
  them, and the result says which phrases were relaxed.
- **Pseudo-relevance feedback (RM3).** The top :data:`FEEDBACK_DOCS` papers of the first
  pass form a relevance model (each paper's term distribution weighted by its share of the
  softmax of the BM25 scores, every term weighted by its idf); its best
  :data:`FEEDBACK_TERMS` terms join the query with :data:`ORIGINAL_WEIGHT` kept for the
  query itself. It raises nDCG@10 on every development collection (mean +0.04 over
  bm25s), because it brings in the vocabulary the query did not use. It needs the
  papers' text, which the caller supplies (``texts``: the engine reads its database, the
  evaluation its corpus), and applies only to relevance order with free words.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from indexer.lexical.bm25 import TITLE_REPEAT, BM25Index, LexicalHit, relaxable_phrases
from indexer.lexical.catexpr import CategoryExpr
from indexer.lexical.query import ParsedQuery
from indexer.text.tokenizer import Tokenizer, default_tokenizer, has_cjk

FEEDBACK_DOCS = 10  # papers of the first pass that form the relevance model
FEEDBACK_TERMS = 20  # expansion terms kept (10–30 is a plateau)
FEEDBACK_POOL = 60  # terms of the relevance model whose idf is looked up (the best by weight)
ORIGINAL_WEIGHT = 0.7  # the query's share of the expanded query (0.6–0.8 is a plateau)

#: ids → (title, abstract) of those papers the caller can read (missing ids are skipped)
TextsOf = Callable[[Sequence[str]], Mapping[str, tuple[str, str]]]


@dataclass
class LexicalRanking:
    """A ranked window of BM25 hits and how it was obtained."""

    total: int
    hits: list[LexicalHit]
    relaxed: list[str] = field(default_factory=list)  # quoted phrases searched as words
    exact_total: int | None = None  # papers matching the phrases (set when ``relaxed``)
    expansion: dict[str, float] = field(default_factory=dict)  # feedback terms → weight


def _query_weights(parsed: ParsedQuery) -> Counter[str]:
    """Positive title/abstract terms with their query frequency (what feedback keeps)."""
    weights: Counter[str] = Counter()
    for c in parsed.clauses:
        if c.negated:
            continue
        for a in c.atoms:
            if a.is_prose:
                weights.update(a.terms)
    return weights


def rm3_expansion(query_weights: Mapping[str, float], feedback: Sequence[tuple[Sequence[str], float]],
                  doc_freq: Callable[[str], int], num_docs: int, *, n_terms: int = FEEDBACK_TERMS,
                  original_weight: float = ORIGINAL_WEIGHT, excluded: frozenset[str] = frozenset()) -> dict[str, float]:
    """RM3 expansion weights, on the scale of ``query_weights`` (so they can be added as
    extra optional terms): the interpolated query is ``original_weight × q/|q| +
    (1 − original_weight) × rm/|rm|``, multiplied back by ``|q| / original_weight``.

    ``feedback``: (terms of a paper as indexed, its first-pass score) for the top papers.
    Terms in ``excluded`` (the query's excluded words) never join."""
    qs = float(sum(query_weights.values()))
    if not feedback or qs <= 0 or num_docs <= 0 or not 0 < original_weight < 1:
        return {}
    top = max(score for _, score in feedback)
    priors = [math.exp(score - top) for _, score in feedback]
    z = sum(priors)
    model: dict[str, float] = {}
    for (terms, _), prior in zip(feedback, priors, strict=True):
        if not terms:
            continue
        share = prior / z / len(terms)
        for t, n in Counter(terms).items():
            model[t] = model.get(t, 0.0) + share * n
    for t in excluded:
        model.pop(t, None)
    weighted: dict[str, float] = {}
    for t, p in sorted(model.items(), key=lambda x: (-x[1], x[0]))[:FEEDBACK_POOL]:
        df = doc_freq(t)
        if df > 0:
            weighted[t] = p * math.log(1.0 + (num_docs - df + 0.5) / (df + 0.5))
    best = sorted(weighted.items(), key=lambda x: (-x[1], x[0]))[:n_terms]
    mass = sum(w for _, w in best)
    if mass <= 0:
        return {}
    scale = (1.0 - original_weight) / original_weight * qs / mass
    return {t: w * scale for t, w in best if w > 0}


def feedback_terms(title: str, abstract: str, tokenizer: Tokenizer | None = None) -> list[str]:
    """A paper's terms as text_t indexes them (title repeated, then abstract)."""
    tok = tokenizer or default_tokenizer()
    return tok.tokenize(title) * TITLE_REPEAT + tok.tokenize(abstract)


def _merge(strict: list[LexicalHit], relaxed: list[LexicalHit]) -> list[LexicalHit]:
    """Strict hits first, then relaxed ones not already there, scored below the last
    strict hit (kept in their order), so a score-based fusion keeps the order too."""
    seen = {h.id for h in strict}
    rest = [h for h in relaxed if h.id not in seen]
    if not strict or not rest:
        return strict + rest
    floor = min(h.score for h in strict)
    top = max(h.score for h in rest) or 1.0
    return strict + [LexicalHit(h.id, floor * 0.99 * h.score / top) for h in rest]


def rank(bm25: BM25Index, parsed: ParsedQuery, *, texts: TextsOf | None = None, cats: CategoryExpr | None = None,
         date_from: date | None = None, date_to: date | None = None, offset: int = 0, limit: int = 10,
         feedback: bool = True, translated: Sequence[Mapping[str, float]] = ()) -> LexicalRanking:
    """The relevance-ordered window ``[offset, offset+limit)`` of ``parsed``: strict
    matches first, relaxed phrases after them when they do not fill the window, and
    RM3 feedback when ``texts`` is given and ``feedback`` is on. ``translated``: the
    English alternatives of each of the query's Chinese terms (:attr:`indexer.text.zh_en.Translation.units`),
    searched beside it."""
    window = offset + limit
    search_kw: dict[str, Any] = {"cats": cats, "date_from": date_from, "date_to": date_to}
    phrases = relaxable_phrases(parsed)
    alternatives = list(translated)
    expansion: dict[str, float] = {}
    query_weights: Counter[str] = _query_weights(parsed)
    if feedback and texts is not None and query_weights and not alternatives:
        first = bm25.search(parsed, limit=FEEDBACK_DOCS, **search_kw)
        if first.total == 0 and phrases:
            first = bm25.search(parsed, limit=FEEDBACK_DOCS, relax=True, **search_kw)
        if first.hits:
            found = texts([h.id for h in first.hits])
            fb = [(feedback_terms(*found[h.id]), h.score) for h in first.hits if h.id in found]
            expansion = rm3_expansion(query_weights, fb, bm25.approx_doc_freq, bm25.num_docs,
                                      excluded=frozenset(parsed.must_not_terms))
    # several translated terms: papers holding all of them first (a topic is their conjunction)
    every = len(alternatives) > 1 or bool(alternatives and parsed.free_terms and any(not has_cjk(t) for t in parsed.free_terms))
    strict = bm25.search(parsed, offset=0, limit=window, expand=expansion, alternatives=alternatives,
                         all_alternatives=every, **search_kw)
    if not (phrases or every) or strict.total >= window:
        return LexicalRanking(strict.total, strict.hits[offset:window], expansion=expansion)
    loose = bm25.search(parsed, offset=0, limit=window + len(strict.hits), relax=True, expand=expansion,
                        alternatives=alternatives, **search_kw)
    merged = _merge(strict.hits, loose.hits)
    return LexicalRanking(max(loose.total, strict.total), merged[offset:window], relaxed=phrases,
                          exact_total=strict.total if phrases else None, expansion=expansion)
