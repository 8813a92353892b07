"""`papers eval retrieval`: metrics checked on hand-computed examples, BEIR loading, TREC
run output, and the command end to end on a real SciFact slice (bm25 mode, our serving
index in a temp dir)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from indexer.errors import InvalidInput
from indexer.evaluation.retrieval import (
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    score_runs,
    write_trec_run,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SCIFACT = SHARED / "eval" / "scifact"


def test_ndcg_hand_computed():
    judged = {"a": 2, "b": 1, "z": 0}
    # ranking b, x, a: DCG = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2
    # ideal a, b:      IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.63093
    assert ndcg_at_k(["b", "x", "a"], judged, 10) == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["a", "b"], judged, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], judged, 10) == 0.0
    # the cut-off: relevant doc at rank 3 is invisible to nDCG@2
    assert ndcg_at_k(["x", "y", "a"], judged, 2) == 0.0


def test_recall_and_mrr_hand_computed():
    judged = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "c", "x"], judged, 100) == 0.5
    assert recall_at_k(["x", "a", "b"], judged, 2) == 0.5
    assert mrr_at_k(["x", "c", "b", "a"], judged, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 10 + ["a"], judged, 10) == 0.0


def test_score_runs_means_over_judged_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    m = score_runs({"q1": [("a", 3.0)], "q3": [("b", 1.0)]}, qrels)  # q2 unanswered → 0
    assert m == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_trec_run_format(tmp_path):
    path = tmp_path / "run.txt"
    write_trec_run({"q2": [("d9", 1.5), ("d3", 0.25)], "q1": [("d1", 2.0)]}, path, tag="my tag")
    lines = path.read_text().splitlines()
    assert lines == ["q1 Q0 d1 1 2.000000 my_tag", "q2 Q0 d9 1 1.500000 my_tag", "q2 Q0 d3 2 0.250000 my_tag"]


def test_load_beir_rejects_non_beir_dir(tmp_path):
    with pytest.raises(InvalidInput):
        load_beir(tmp_path)


@pytest.fixture(scope="module")
def scifact_slice(tmp_path_factory) -> Path:
    """About 400 real SciFact docs: every doc judged for the first 60 queries plus
    unjudged distractors, written in BEIR layout."""
    if not SCIFACT.is_dir():
        pytest.skip(f"shared SciFact not found at {SCIFACT} (../shared/data next to the repo)")
    out = tmp_path_factory.mktemp("scifact-slice")
    lines = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()
    qrels = [ln.split("\t") for ln in lines[1:] if ln.strip()]
    qids = list(dict.fromkeys(q for q, _, _ in qrels))[:60]
    keep_q = set(qids)
    judged_docs = {d for q, d, _ in qrels if q in keep_q}
    docs = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            if obj["_id"] in judged_docs or len(docs) < 400 - len(judged_docs):
                docs.append(line)
    (out / "corpus.jsonl").write_text("".join(docs), encoding="utf-8")
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        queries = [line for line in f if json.loads(line)["_id"] in keep_q]
    (out / "queries.jsonl").write_text("".join(queries), encoding="utf-8")
    (out / "qrels").mkdir()
    (out / "qrels" / "test.tsv").write_text(
        lines[0] + "\n" + "".join("\t".join(r) + "\n" for r in qrels if r[0] in keep_q), encoding="utf-8"
    )
    return out


def _papers(*args: str):
    import subprocess

    exe = Path(sys.executable).parent / "papers"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_cli_bm25_on_real_scifact_slice(scifact_slice, tmp_path):
    run_file = tmp_path / "bm25.run"
    proc = _papers("eval", "retrieval", str(scifact_slice), "--mode", "bm25", "--json", "--run", str(run_file))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    m = json.loads(lines[0])
    assert m["queries"] == 60 and 300 <= m["docs"] <= 420
    for key in ("ndcg@10", "recall@100", "mrr@10"):
        assert 0.0 <= m[key] <= 1.0
    # real BM25 on a small SciFact pool finds most claims' evidence near the top
    assert m["ndcg@10"] > 0.6 and m["recall@100"] > 0.9 and m["mrr@10"] > 0.55
    rows = [ln.split() for ln in run_file.read_text().splitlines()]
    assert rows and all(len(r) == 6 and r[1] == "Q0" for r in rows)
    per_q: dict[str, list[int]] = {}
    for r in rows:
        per_q.setdefault(r[0], []).append(int(r[3]))
    assert all(ranks == list(range(1, len(ranks) + 1)) and len(ranks) <= 100 for ranks in per_q.values())
    # the run file is the ranking that was scored
    from indexer.evaluation.retrieval import load_beir as _load

    data = _load(scifact_slice)
    runs = {q: [] for q in per_q}
    for r in rows:
        runs[r[0]].append((r[2], float(r[4])))
    assert score_runs(runs, data.qrels)["ndcg@10"] == pytest.approx(m["ndcg@10"], abs=1e-4)


def test_cli_hybrid_fake_model_and_rank_bm25_baseline(scifact_slice, tmp_path):
    cache = tmp_path / "cache"
    args = ["eval", "retrieval", str(scifact_slice), "--json", "--model", "fake", "--multilingual-model", "", "--cache-dir", str(cache)]
    first = _papers(*args, "--mode", "hybrid")
    assert first.returncode == 0, first.stderr
    m1 = json.loads(first.stdout)
    assert m1["mode"] == "hybrid" and m1["embedded_docs"]["fake"] == m1["docs"]
    second = json.loads(_papers(*args, "--mode", "hybrid").stdout)
    assert second["embedded_docs"]["fake"] == 0  # the cache answered
    assert second["ndcg@10"] == m1["ndcg@10"]
    base = _papers("eval", "retrieval", str(scifact_slice), "--mode", "rank-bm25", "--json")
    assert base.returncode == 0, base.stderr
    assert json.loads(base.stdout)["ndcg@10"] > 0.5


def test_cli_bad_directory_is_a_clean_error(tmp_path):
    proc = _papers("eval", "retrieval", str(tmp_path), "--mode", "bm25", "--json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
