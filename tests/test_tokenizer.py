"""indexer.text.tokenizer: the terms every other part (index, queries, keywords, snippets)
agrees on. Checked on hand-picked cases and on real abstracts from the bundled sample."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from indexer.text.tokenizer import (
    CHINESE_STOP_WORDS,
    ENGLISH_STOP_WORDS,
    Tokenizer,
    author_terms,
    cut_chinese,
    default_tokenizer,
    has_cjk,
    normalize,
    tokenize,
)

REPO = Path(__file__).resolve().parents[1]


def test_mixed_chinese_english():
    assert tokenize("基于Transformer的目标检测") == ["transform", "目标", "检测"]
    assert tokenize("用BERT做中文分词") == [*cut_chinese("用"), "bert", *[t for t in cut_chinese("做中文分词") if t not in CHINESE_STOP_WORDS]]
    assert has_cjk("图神经网络 GNN") and not has_cjk("graph neural network")


@pytest.mark.parametrize(
    ("text", "must_contain"),
    [
        ("GPT-4", {"gpt4", "gpt"}),
        ("gpt4", {"gpt4"}),
        ("BERT", {"bert"}),
        ("3D reconstruction", {"3d", "reconstruct"}),
        ("3-D", {"3d"}),
        ("U-Net", {"unet", "net"}),
        ("UNet", {"unet"}),
    ],
)
def test_compounds_findable_joined_and_split(text, must_contain):
    assert must_contain <= set(tokenize(text))


def test_joined_and_split_spellings_share_a_term():
    for a, b in [("u-net", "unet"), ("gpt-4", "GPT4"), ("3-d", "3D"), ("pre-training", "pretraining"),
                 ("pre-training", "training")]:
        assert set(tokenize(a)) & set(tokenize(b)), (a, b)


def test_nfkc_fullwidth_and_case():
    assert tokenize("ＧＰＴ－４ ＢＥＲＴ") == tokenize("GPT-4 BERT")
    assert tokenize("ﬁnite") == tokenize("finite")  # ligature
    assert normalize("ÄBC") == "äbc"


def test_latex_commands_dropped_arguments_kept():
    assert tokenize(r"\emph{Graph} networks with $\alpha$-stable noise") == tokenize("Graph networks with stable noise")
    assert "alpha" not in tokenize(r"$\alpha$") and "emph" not in tokenize(r"\emph{x}")


def test_stop_words_and_stemming():
    assert tokenize("the of and is are") == []
    assert tokenize("running networks studies") == ["run", "network", "studi"]
    assert tokenize("network") == tokenize("networks") == tokenize("Networks")
    assert "的" in CHINESE_STOP_WORDS and "the" in ENGLISH_STOP_WORDS
    assert tokenize("本文提出了一种方法") == [t for t in cut_chinese("本文提出了一种方法") if t not in CHINESE_STOP_WORDS]


def test_plain_variants():
    plain = Tokenizer(stem=False, stopwords=False)
    assert plain.tokenize("The running networks") == ["the", "running", "networks"]
    assert Tokenizer(split_compounds=False).tokenize("u-net") == ["unet"]


def test_possessives_and_single_letters():
    assert tokenize("the model's output") == ["model", "output"]
    assert tokenize("a b c x") == []
    assert tokenize("x 2 y") == ["2"]


def test_empty_and_symbols():
    assert tokenize("") == []
    assert tokenize("!!! ??? $$$ — …") == []


def test_term_frequencies_kept():
    assert tokenize("graph graph graph").count("graph") == 3


def test_default_tokenizer_is_shared():
    assert default_tokenizer() is default_tokenizer()


def test_cache_gives_same_answers_as_cold_tokenizer():
    with gzip.open(REPO / "indexer" / "data" / "sample-papers.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["abstract"] for _, line in zip(range(300), f, strict=False)]
    warm = default_tokenizer()
    first = [warm.tokenize(t) for t in texts]
    cold = Tokenizer()
    assert [cold.tokenize(t) for t in texts] == first == [warm.tokenize(t) for t in texts]
    assert all(first)


def test_author_terms():
    assert author_terms("Yann LeCun") == ["yann", "lecun"]
    assert author_terms("Jürgen Schmidhuber") == ["jurgen", "schmidhuber"]
    assert author_terms("J.-L. Kneur") == ["j", "l", "kneur"]
    assert author_terms("") == []


def test_rust_and_python_jieba_segment_alike(monkeypatch):
    """cut_chinese uses rjieba when installed; pure-Python jieba is the fallback and must
    give the same words (same dictionary and algorithm) on real Chinese summaries."""
    import indexer.text.tokenizer as tk

    pytest.importorskip("rjieba", reason="rjieba not installed: only the jieba path exists")
    with gzip.open(REPO / "indexer" / "data" / "sample-zh.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["zh"] for _, line in zip(range(300), f, strict=False)]
    runs = [r for t in texts for r in re.findall(r"[\u4e00-\u9fff]+", t)]
    fast = [tk.cut_chinese(r) for r in runs]
    monkeypatch.setattr(tk, "_rjieba", False)  # force the pure-Python path
    slow = [tk.cut_chinese(r) for r in runs]
    same = sum(a == b for a, b in zip(fast, slow, strict=True))
    assert len(runs) > 1000 and same / len(runs) >= 0.995, same / len(runs)
