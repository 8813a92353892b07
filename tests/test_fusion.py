"""Fusion: reciprocal-rank and score fusion, and the rule the product depends on —
fusing with a retriever that found nothing or returned noise is never worse than the
best single retriever."""

from __future__ import annotations

import random

import pytest

from indexer.evaluation.retrieval import mrr_at_k, ndcg_at_k
from indexer.search import fusion


def test_rrf_hand_computed():
    a = [("x", 9.0), ("y", 5.0)]
    b = [("y", 0.9), ("z", 0.1)]
    out = dict(fusion.rrf([a, b], k=60))
    assert out["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert out["x"] == pytest.approx(1 / 61)
    assert out["z"] == pytest.approx(1 / 62)
    assert [d for d, _ in fusion.rrf([a, b], k=60)] == ["y", "x", "z"]


def test_zscore_hand_computed():
    a = [("x", 3.0), ("y", 1.0)]  # z: x=+1, y=-1
    b = [("y", 2.0), ("z", 0.0)]  # z: y=+1, z=-1
    out = dict(fusion.fuse([a, b], method="zscore"))
    # a doc missing from a run takes that run's lowest z-score (-1)
    assert out == pytest.approx({"x": 1 - 1, "y": -1 + 1, "z": -1 - 1})


def test_minmax_and_unknown_method():
    a = [("x", 10.0), ("y", 5.0), ("w", 0.0)]
    out = dict(fusion.fuse([a, [("y", 1.0)]], method="minmax"))
    assert out["y"] == pytest.approx(0.5 + 1.0)
    with pytest.raises(ValueError):
        fusion.fuse([a], method="borda")


@pytest.mark.parametrize("method", ["rrf", "zscore", "minmax"])
def test_empty_run_leaves_the_other_untouched(method):
    good = [(f"d{i}", 10.0 - i) for i in range(20)]
    assert [d for d, _ in fusion.fuse([good, []], method=method)] == [d for d, _ in good]
    assert [d for d, _ in fusion.fuse([[], good], method=method)] == [d for d, _ in good]
    assert fusion.fuse([[], []], method=method) == []


def _garbage_run(rng: random.Random, docs: list[str], n: int = 100) -> list[tuple[str, float]]:
    """What a retriever that does not understand the query returns: arbitrary documents
    with flat, low similarity scores."""
    picked = rng.sample(docs, n)
    return sorted(((d, 0.20 + 0.02 * rng.random()) for d in picked), key=lambda x: -x[1])


def test_lexical_evidence_is_matched_idf_mass():
    df = {"spinealign": 1, "10": 900, "dataset": 600}
    ev = lambda terms: fusion.lexical_evidence(terms, lambda t: df.get(t, 0), 3000)  # noqa: E731
    assert ev([]) == 0.0 and ev(["脊柱", "手术"]) == 0.0  # nothing matched
    assert ev(["脊柱", "10", "10"]) == pytest.approx(fusion.idf(900, 3000))  # distinct terms count once
    # every term occurs: fully understood, even a single common word
    assert fusion.lexical_confidence(ev(["dataset"])) == 1.0
    assert fusion.idf(900, 3000) == pytest.approx(1.2038, abs=1e-3)
    # a stray number barely counts; one distinctive name gives BM25 real weight
    assert fusion.lexical_confidence(ev(["脊柱", "手术", "10"])) == 0.0
    assert fusion.lexical_confidence(ev(["脊柱", "手术", "spinealign"])) > 0.4
    assert fusion.lexical_confidence(ev(["spinealign", "dataset", "10"])) == 1.0
    # without the index, CJK terms and bare numbers are assumed not to match
    assert fusion.estimated_evidence("脊柱手术 10") == 0.0
    assert fusion.estimated_evidence("graph neural networks") >= fusion.EVIDENCE_FULL
    assert fusion.estimated_evidence("transformer") >= fusion.EVIDENCE_FULL


def test_hybrid_never_worse_than_best_part_with_empty_or_garbage_run():
    """Synthetic but realistic: a good dense run (USE on a Chinese query) whose relevant
    doc sits at rank 1–3, against an empty BM25 run or one that matched only stray digits;
    and a good BM25 run against an English-only dense model given a Chinese query."""
    rng = random.Random(7)
    docs = [f"p{i}" for i in range(3000)]
    df = {"10": 900, "35": 400, "spinealign": 2, "rgb": 40}
    ev = lambda terms: fusion.lexical_evidence(terms, lambda t: df.get(t, 0), len(docs))  # noqa: E731
    for trial in range(50):
        rel = docs[trial]
        others = [d for d in docs if d != rel]
        top = rng.randrange(3)
        dense_docs = rng.sample(others, 99)
        dense_docs.insert(top, rel)
        dense = [(d, 0.8 - 0.004 * i) for i, d in enumerate(dense_docs)]
        judged = {rel: 1}
        best = mrr_at_k([d for d, _ in dense], judged)
        # BM25 found nothing (pure Chinese query on English papers)
        fused = fusion.hybrid([], dense, query="基于符号回归的双黑洞族群分析", dense_model="use-multilingual")
        assert mrr_at_k([d for d, _ in fused], judged) >= best
        # BM25 matched stray numbers in unrelated papers
        stray = [(d, 3.1 - 0.001 * i) for i, d in enumerate(rng.sample(others, 40))]
        zh_terms = ["符号", "回归", "双", "黑洞", "族群", "并合率", "红移", "质量比"]  # a one-line summary
        fused = fusion.hybrid(stray, dense, query="符号回归 双黑洞族群 10 与 35 太阳质量",
                              evidence=ev([*zh_terms, "10", "35"]), dense_model="use-multilingual")
        assert mrr_at_k([d for d, _ in fused], judged) >= best
        # the other way round: BM25 is good (Latin names matched), the dense model is
        # English-only and was handed a Chinese question
        lex = [(d, 20.0 - 0.1 * i) for i, d in enumerate(dense_docs)]
        fused = fusion.hybrid(lex, _garbage_run(rng, others), query="脊柱手术 SpineAlign RGB",
                              evidence=ev(["脊柱", "手术", "spinealign", "rgb"]), dense_model="all-MiniLM-L6-v2")
        assert ndcg_at_k([d for d, _ in fused], judged) >= ndcg_at_k([d for d, _ in lex], judged)


def test_hybrid_aux_run_is_a_minor_voice_and_only_beside_another_model():
    lex = [("a", 10.0), ("b", 9.0), ("c", 1.0)]
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    aux = [("c", 0.9), ("b", 0.5), ("a", 0.1)]
    base = fusion.hybrid(lex, dense, "graph networks", dense_model="all-MiniLM-L6-v2")
    with_aux = fusion.hybrid(lex, dense, "graph networks", dense_model="all-MiniLM-L6-v2",
                             aux=aux, aux_model="use-multilingual")
    # weight AUX_WEIGHT < the others: it moves scores but cannot overturn two agreeing runs
    assert with_aux[0][0] == base[0][0] == "a"
    assert dict(with_aux)["c"] > dict(base)["c"]
    # when the main dense run already comes from that model, aux is not counted twice
    same = fusion.hybrid(lex, dense, "graph networks", dense_model="use-multilingual",
                         aux=aux, aux_model="use-multilingual")
    assert same == fusion.hybrid(lex, dense, "graph networks", dense_model="use-multilingual")
