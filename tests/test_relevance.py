"""Relevance features of issue #13 on real data shipped with the repository: relaxed
phrases, pseudo-relevance feedback, related papers with co-authors, the learned
Chinese → English term table, and ``papers eval related``."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.lexical import ranking as lexical
from indexer.search.related import author_keys, text_query
from indexer.text import zh_en
from indexer.text.tokenizer import author_key

DATA = Path(__file__).resolve().parent / "data"


# -- lexical: relaxed phrases and feedback ------------------------------------------------


def test_rm3_expansion_weights_feedback_terms_and_skips_excluded():
    fb = [(["graph", "neural", "network", "messag", "pass"], 2.0),
          (["graph", "neural", "network", "spectral"], 1.0)]
    df = {"graph": 10, "neural": 20, "network": 30, "messag": 2, "pass": 3, "spectral": 4}
    exp = lexical.rm3_expansion({"graph": 1.0, "neural": 1.0}, fb, df.get, 1000, excluded=frozenset({"spectral"}))
    assert "messag" in exp and "spectral" not in exp
    # on the query's scale: the expansion's total is (1-w)/w of the query's total weight
    assert sum(exp.values()) == pytest.approx(2.0 * (1 - lexical.ORIGINAL_WEIGHT) / lexical.ORIGINAL_WEIGHT)
    assert exp["messag"] > exp["network"]  # rarer terms of the top paper weigh more
    assert lexical.rm3_expansion({"graph": 1.0}, [], df.get, 1000) == {}


def test_a_phrase_no_paper_holds_still_returns_the_closest_papers(search_engine):
    res = search_engine.search('"graph neural quantum chromodynamics lattice"', mode="bm25", size=5)
    assert res.total > 0 and len(res.hits) == 5
    assert res.relaxed == ["graph neural quantum chromodynamics lattice"] and res.exact_total == 0
    # a phrase that exists ranks its papers first, closest papers follow
    ok = search_engine.search('"graph neural network"', mode="bm25", size=5)
    assert ok.relaxed == [] and ok.total >= 5


def test_relaxed_phrase_is_said_by_the_api_and_the_page(app_client):
    r = app_client.get("/api/search", params={"q": '"transformer quantum gravity duality ensemble"', "mode": "bm25"})
    assert r.status_code == 200
    body = r.json()
    assert body["hits"] and body["relaxed"] == ["transformer quantum gravity duality ensemble"]
    assert body["exact_total"] == 0
    page = app_client.get("/search", params={"q": '"transformer quantum gravity duality ensemble"', "mode": "bm25"})
    assert page.status_code == 200
    assert "No exact match for" in page.text and "closest results" in page.text


def test_feedback_keeps_the_best_match_and_adds_related_vocabulary(search_engine):
    state = search_engine._require()
    from indexer.lexical.query import parse_query

    parsed = parse_query("graph neural networks for molecules")
    plain = lexical.rank(state.bm25, parsed, limit=10, feedback=False)
    fed = lexical.rank(state.bm25, parsed, texts=search_engine._texts, limit=10)
    assert fed.expansion and not plain.expansion
    assert len(set(fed.expansion) - {"graph", "neural", "network", "molecul"}) >= 5
    assert plain.hits[0].id in {h.id for h in fed.hits}


# -- related papers -----------------------------------------------------------------------


def test_author_keys_match_spellings_of_one_person():
    assert author_key("Yann LeCun") == author_key("Y. LeCun") == "lecun_y"
    assert author_keys(["Jürgen Müller", "J. Muller", ""]) == {"muller_j"}


def test_text_query_is_bounded_and_keeps_rare_terms(search_engine):
    state = search_engine._require()
    abstract = " ".join(["graph"] * 5 + [f"word{i}" for i in range(200)] + ["hypergraph"])
    w = text_query("Hypergraph partitioning", abstract, state.bm25.approx_doc_freq, state.bm25.num_docs)
    assert len(w) <= 30 and "hypergraph" in w
    assert w["hypergraph"] == 3.0  # title twice + abstract once


def test_related_prefers_co_authored_papers_and_explains_every_hit(search_engine):
    """A paper's co-authored papers on the same subject come back, and each hit still
    names the keywords it shares with the paper."""
    from sqlalchemy import select

    from indexer.models import Paper

    with search_engine.db.connect() as conn:
        rows = conn.execute(select(Paper.id, Paper.authors)).all()
    by_key: dict[str, list[str]] = {}
    for r in rows:
        for k in author_keys(r.authors):
            by_key.setdefault(k, []).append(r.id)
    source = next(ids[0] for k, ids in sorted(by_key.items()) if len(ids) >= 3 and "_" in k)
    hits = search_engine.related(source, k=10)
    assert hits and source not in [h.id for h in hits]
    src_keys = author_keys(search_engine.paper(source)["authors"])
    assert any(author_keys(h.authors) & src_keys for h in hits[:5])
    assert sum(1 for h in hits if h.shared_keywords) >= len(hits) - 1


def test_eval_related_on_the_shipped_slice(tmp_path):
    """Old-style hep-th ids ingest and route; related beats similar-text (co-authors)."""
    from click.testing import CliRunner

    from service.cli import cli

    run = tmp_path / "related.trec"
    res = CliRunner().invoke(cli, ["eval", "related", str(DATA / "related_mini"), "--no-embeddings", "--json",
                                   "--run", str(run)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    m = json.loads(res.output.strip().splitlines()[-1])
    assert m["queries"] == 8 and m["missing_queries"] == 0 and m["docs"] > 600
    assert m["related"]["ndcg@10"] > 0.3 and m["similar"]["ndcg@10"] > 0.2
    assert m["related"]["ndcg@10"] >= m["similar"]["ndcg@10"]
    lines = run.read_text().splitlines()
    assert lines and lines[0].split()[0].startswith("hep-th/") and len(lines) <= 80


def _papers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from service.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


def test_eval_related_rejects_a_directory_without_its_files(tmp_path):
    res = _papers("eval", "related", str(tmp_path), "--no-embeddings")
    assert res.returncode == 2 and "not a related-papers directory" in res.stderr
    assert "Traceback" not in res.stderr


# -- Chinese → English ----------------------------------------------------------------------


@pytest.mark.parametrize("query,expected", [
    ("图神经网络", "graph neural"),
    ("知识蒸馏", "knowledg distil"),
    ("基于Transformer的目标检测", "object detect"),
    ("大语言模型的数学推理", "mathemat reason"),
])
def test_shipped_table_translates_topic_terms(query, expected):
    tr = zh_en.translate(query)
    assert expected in tr.weights, tr.weights
    assert tr.coverage > 0.5


def test_translation_ignores_latin_text():
    assert not zh_en.translate("graph neural networks")


@pytest.mark.parametrize("query,needles", [
    ("图神经网络", ("graph neural", "gnn")),
    ("基于Transformer的目标检测", ("detect",)),
    ("大语言模型的数学推理", ("reason", "math")),
])
def test_short_chinese_topic_queries_return_on_topic_papers(search_engine, query, needles):
    """README's Chinese examples over the bundled sample: the top 5 are on topic."""
    for mode in ("bm25", "hybrid"):
        res = search_engine.search(query, mode=mode, size=5)
        assert len(res.hits) == 5, mode
        assert res.translated
        for h in res.hits:
            text = (h.title + " " + h.abstract).lower()
            assert any(n in text for n in needles), (mode, h.title)


def test_mixed_query_uses_both_parts(search_engine):
    res = search_engine.search("Transformer 目标检测", mode="bm25", size=5)
    assert "目标检测" in res.translated
    for h in res.hits:
        text = (h.title + " " + h.abstract).lower()
        assert "transform" in text and "detect" in text, h.title


def test_similar_text_reads_a_pasted_chinese_abstract(search_engine):
    """Related work for a Chinese text: its translated English terms find on-topic papers."""
    text = "本文研究图神经网络在分子性质预测中的应用，提出一种新的消息传递机制。"
    hits = search_engine.similar_text(text, k=5, dense_weight=0)  # the suite's embedder is a fake
    assert len(hits) == 5
    on_topic = [h for h in hits if "graph" in (h.title + " " + h.abstract).lower()]
    assert len(on_topic) >= 3, [h.title for h in hits]
    assert any("graph neural" in " ".join(h.shared_keywords).lower() or "graph" in h.title_html.lower() for h in hits)


def test_learner_learns_terms_from_pairs(tmp_path):
    from click.testing import CliRunner

    from service.cli import cli

    out = tmp_path / "table.json.gz"
    res = CliRunner().invoke(cli, ["terms", "learn", "--pairs", str(DATA / "zh_pairs_mini" / "zh.jsonl.gz"),
                                   "--papers", str(DATA / "zh_pairs_mini" / "papers.jsonl.gz"), "--out", str(out),
                                   "--min-df", "3"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with gzip.open(out, "rt", encoding="utf-8") as f:
        table = json.load(f)
    assert table["pairs"] == 400
    assert "diffus model" in [en for en, _ in table["terms"]["扩散模型"]]
    learned = zh_en.TermTable(table["terms"], table["surface"]).translate("扩散模型")
    assert "diffus model" in learned.weights


def test_learner_rejects_bad_pairs(tmp_path):
    bad = tmp_path / "zh.jsonl"
    bad.write_text("not json\n")
    res = _papers("terms", "learn", "--pairs", str(bad), "--papers", str(DATA / "zh_pairs_mini" / "papers.jsonl.gz"),
                  "--out", str(tmp_path / "t.json.gz"))
    assert res.returncode == 2 and "zh.jsonl:1" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "t.json.gz").exists()
