"""The keyphrase metric (hand-checked examples) and `papers eval keyphrases` on a real
slice of Inspec from the shared data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.errors import InvalidInput
from indexer.evaluation.keyphrases import (
    evaluate,
    load_keyphrase_docs,
    normalize_keyphrase,
    pad_documents,
    score_document,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
INSPEC = SHARED / "eval" / "keyphrase" / "inspec"


def test_normalization_stems_each_word_and_lowercases():
    assert normalize_keyphrase("Neural Networks") == normalize_keyphrase("neural network") == "neural network"
    assert normalize_keyphrase("  Graph-Based  Ranking ") == "graph base rank"
    assert normalize_keyphrase("anti-spam act") == normalize_keyphrase("anti spam act")
    assert normalize_keyphrase("clustering") != normalize_keyphrase("cluster analysis")
    # Chinese: exact phrase (case-folded, whitespace removed), no stemming
    assert normalize_keyphrase("Lyapunov 函数") == "lyapunov函数"
    assert normalize_keyphrase("目标检测") != normalize_keyphrase("目标检测方法")


def test_score_document_by_hand():
    gold = ["neural networks", "keyphrase extraction", "graph ranking", "inspec"]
    pred = ["Neural Network", "keyphrase extractor", "Keyphrase Extraction", "neural networks", "ranking"]
    # distinct normalised predictions: neural network, keyphras extractor, keyphras extract, rank
    s5 = score_document(pred, gold, k=5)
    assert s5.precision == pytest.approx(2 / 5)
    assert s5.recall == pytest.approx(2 / 4)
    assert s5.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    s2 = score_document(pred, gold, k=2)  # neural network, keyphras extractor
    assert (s2.precision, s2.recall) == pytest.approx((1 / 2, 1 / 4))
    assert score_document([], gold, k=10).f1 == 0.0
    assert score_document(["x"], [], k=10).f1 == 0.0


def test_evaluate_macro_average_skips_docs_without_gold():
    docs = [{"keyphrases": ["a b", "c d"]}, {"keyphrases": ["e f"]}, {"keyphrases": []}]
    preds = [["a b", "x y"], ["q r"], ["a b"]]
    r = evaluate(docs, preds, ks=(2,))
    assert r["docs"] == 2
    # doc 1: P=1/2 R=1/2 F=1/2; doc 2: all 0
    assert r["precision@2"] == pytest.approx(0.25)
    assert r["recall@2"] == pytest.approx(0.25)
    assert r["f1@2"] == pytest.approx(0.25)


def test_bad_collection_lines_are_clear_errors(tmp_path):
    (tmp_path / "docs.jsonl").write_text('{"id": "1", "title": "t", "text": "x", "keyphrases": ["a"]}\n{oops\n')
    with pytest.raises(InvalidInput, match=r"docs.jsonl:2: not valid JSON"):
        load_keyphrase_docs(tmp_path)
    (tmp_path / "docs.jsonl").write_text('{"id": "1", "title": "t", "text": "x", "keyphrases": "a"}\n')
    with pytest.raises(InvalidInput, match=r":1: 'keyphrases' must be a list"):
        load_keyphrase_docs(tmp_path)
    with pytest.raises(InvalidInput, match="expected DIR/docs.jsonl"):
        load_keyphrase_docs(tmp_path / "missing")


@pytest.fixture(scope="module")
def inspec_slice(tmp_path_factory) -> Path:
    if not INSPEC.is_dir():
        pytest.skip(f"shared data not found at {INSPEC}")
    out = tmp_path_factory.mktemp("inspec-slice")
    lines = [line for line in INSPEC.joinpath("docs.jsonl").read_text(encoding="utf-8").splitlines()
             if json.loads(line)["split"] == "test"][:120]
    (out / "docs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", "eval", "keyphrases", *args],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )


def test_eval_command_on_real_inspec_slice(inspec_slice):
    r = _cli(str(inspec_slice), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"f1@5", "f1@10", "precision@10", "recall@10", "docs"} <= set(out)
    assert out["docs"] == 120
    # published unsupervised systems score 0.25-0.40 F1@10 on Inspec; YAKE about 0.2
    assert 0.25 <= out["f1@10"] <= 0.6
    assert 0.2 <= out["f1@5"] <= 0.6
    assert 0 < out["precision@10"] <= 1 and 0 < out["recall@10"] <= 1


def test_eval_command_beats_yake_on_same_slice(inspec_slice):
    pytest.importorskip("yake")
    ours = json.loads(_cli(str(inspec_slice), "--json", "--df", "shipped").stdout)
    yake = json.loads(_cli(str(inspec_slice), "--json", "--method", "yake").stdout)
    assert yake["docs"] == ours["docs"] == 120
    assert ours["f1@10"] > yake["f1@10"]


def test_long_document_variant_keeps_gold_and_grows_text(inspec_slice):
    docs = load_keyphrase_docs(inspec_slice)[:20]
    long = pad_documents(docs, 2000)
    for d, ld in zip(docs, long, strict=True):
        assert ld["text"].startswith(d["text"]) and ld["keyphrases"] == d["keyphrases"]
        assert len(ld["text"].split()) >= len(d["text"].split()) + 2000


def test_eval_command_bad_input_is_clear_error(tmp_path):
    (tmp_path / "docs.jsonl").write_text('{"id": "1", "title": "t", "text": "x", "keyphrases": ["a"]}\nnot json\n')
    r = _cli(str(tmp_path), "--json")
    assert r.returncode == 2
    assert "error:" in r.stderr and "docs.jsonl:2" in r.stderr and "Traceback" not in r.stderr
