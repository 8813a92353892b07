"""Keyword extraction on real text: the bundled arXiv sample (English and Chinese
summaries), mixed text, a whole-paper-length text, and the `papers keywords` CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from indexer.evaluation.keyphrases import normalize_keyphrase
from indexer.text.keywords import DocFreqs, Keyword, KeywordExtractor
from indexer.text.tokenizer import default_tokenizer, has_cjk

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "indexer" / "data" / "sample-papers.jsonl.gz"
SAMPLE_ZH = REPO / "indexer" / "data" / "sample-zh.jsonl.gz"


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def papers() -> dict[str, dict]:
    return {p["id"]: p for p in _read(SAMPLE)}


@pytest.fixture(scope="module")
def sample_dfs(papers) -> DocFreqs:
    return DocFreqs.from_texts(f"{p['title']}\n{p['abstract']}" for p in papers.values())


def _keys(kws: list[Keyword]) -> set[str]:
    return {normalize_keyphrase(k.keyword) for k in kws}


# Real papers of the sample and a phrase any reader would call one of their keyphrases.
KNOWN = [
    ("2504.08748", "multimodal retrieval-augmented generation"),
    ("2604.05524", "network pruning"),
    ("2606.23694", "text classification"),
    ("0704.0808", "hilbert transform"),
]


@pytest.mark.parametrize("paper_id, phrase", KNOWN)
@pytest.mark.parametrize("source", ["sample", "shipped"])
def test_known_paper_keyphrase_in_top10(papers, sample_dfs, paper_id, phrase, source):
    dfs = sample_dfs if source == "sample" else DocFreqs.shipped()
    p = papers[paper_id]
    kws = KeywordExtractor(dfs).extract(p["abstract"], k=10, title=p["title"])
    assert len(kws) == 10
    assert normalize_keyphrase(phrase) in _keys(kws), [k.keyword for k in kws]


def test_keyword_shape_weights_and_terms(papers):
    p = papers["2504.08748"]
    kws = KeywordExtractor(DocFreqs.shipped()).extract(p["abstract"], k=8, title=p["title"])
    weights = [k.weight for k in kws]
    assert weights[0] == 1.0
    assert weights == sorted(weights, reverse=True)
    assert all(0 < w <= 1.0 for w in weights)
    tok = default_tokenizer()
    for k in kws:
        assert k.terms and tuple(tok.tokenize(k.keyword)) == k.terms
    # display form is readable text taken from the paper, not stems
    assert any(" " in k.keyword for k in kws)
    assert all(k.keyword.lower() in (p["title"] + " " + p["abstract"]).lower() for k in kws)


def test_stored_keywords_round_trip(search_engine):
    """A build stores a paper's keywords as a JSON list of Keyword.to_stored() lists:
    from_stored reads a real stored row back, and to_stored writes the very same text."""
    with search_engine.db.connect() as conn:
        raw = conn.exec_driver_sql("SELECT paper_id, keywords FROM paper_keywords ORDER BY paper_id LIMIT 50").all()
    assert raw
    for paper_id, text in raw:
        kws = [Keyword.from_stored(item) for item in json.loads(text)]
        assert kws and all(k.terms and isinstance(k.terms, tuple) for k in kws), paper_id
        assert json.dumps([k.to_stored() for k in kws]) == text, paper_id
    # rows written before terms were stored hold [keyword, weight]: no terms, not an error
    old = Keyword.from_stored(["graph neural networks", 0.5])
    assert old == Keyword("graph neural networks", 0.5, ())
    assert old.to_stored() == ["graph neural networks", 0.5, []]


def test_no_generic_words_or_latex(papers):
    p = papers["0704.0808"]  # abstract full of LaTeX commands
    kws = KeywordExtractor(DocFreqs.shipped()).extract(p["abstract"], k=10, title=p["title"])
    words = {w for k in kws for w in k.keyword.lower().split()}
    assert not words & {"operatorname", "frac", "thinspace", "we", "the", "paper", "propose", "study"}


def test_chinese_text():
    zh = _read(SAMPLE_ZH)
    ex = KeywordExtractor(DocFreqs.shipped())
    rec = next(r for r in zh if r["id"] == "2504.08748")
    kws = ex.extract(rec["zh"], k=10)
    assert 5 <= len(kws) <= 10
    assert all(has_cjk(k.keyword) or k.keyword.isascii() for k in kws)
    assert any(has_cjk(k.keyword) for k in kws)
    assert all(k.keyword in rec["zh"] for k in kws)
    # the stop words of Chinese scientific prose never come back as keywords
    assert not {"本文", "提出", "方法", "通过"} & {k.keyword for k in kws}
    for r in zh[:50]:
        out = ex.extract(r["zh"], k=5)
        assert out and out[0].weight == 1.0


def test_mixed_chinese_english_text():
    text = "基于Transformer的目标检测方法在COCO数据集上取得了很好的效果。We further apply graph neural networks to point clouds."
    kws = KeywordExtractor(DocFreqs.shipped()).extract(text, k=10)
    got = {k.keyword for k in kws}
    assert any(has_cjk(g) for g in got)
    assert any(g.isascii() for g in got)
    assert "目标检测" in got or "目标检测方法" in got
    assert "graph neural networks" in got


def test_whole_paper_length_text(papers):
    """A paper-length text (its title and abstract first, then about 50k words of other
    abstracts of its category): returns k results and the paper's own topic stays on top."""
    target = papers["2604.05524"]  # Cross-Resolution Diffusion Models via Network Pruning
    parts = [target["abstract"]]
    words = 0
    for p in papers.values():
        if p["id"] != target["id"] and "cs.CV" in p["categories"]:
            parts.append(p["abstract"])
            words += len(p["abstract"].split())
            if words >= 50_000:
                break
    assert words >= 50_000
    ex = KeywordExtractor(DocFreqs.shipped())
    kws = ex.extract("\n".join(parts), k=15, title=target["title"])
    assert len(kws) == 15
    assert kws[0].weight == 1.0
    assert [k.weight for k in kws] == sorted((k.weight for k in kws), reverse=True)
    assert normalize_keyphrase("network pruning") in _keys(kws), [k.keyword for k in kws]
    assert not _keys(kws) & {"method", "approach", "experi", "model", "state of the art"}
    # without a title too: still k results
    assert len(ex.extract("\n".join(parts), k=40)) == 40


@pytest.mark.parametrize("text,title", [("", ""), ("   \n ", ""), ("", "  "), ("the of and", "")])
def test_empty_or_stopword_text_gives_nothing(text, title):
    assert KeywordExtractor(DocFreqs.shipped()).extract(text, k=10, title=title) == []


def test_title_only():
    kws = KeywordExtractor(DocFreqs.shipped()).extract("", k=5, title="Graph Neural Networks for Molecular Property Prediction")
    assert kws and {"graph neural networks", "molecular property prediction"} & {k.keyword for k in kws}


def test_k_limits():
    text = "Deep reinforcement learning for robotic grasping with tactile sensors and visual feedback."
    ex = KeywordExtractor(DocFreqs.shipped())
    assert ex.extract(text, k=0) == []
    assert len(ex.extract(text, k=2)) == 2


def test_docfreqs_from_texts_counts_terms_and_phrases():
    texts = [
        "Graph neural networks for molecules.",
        "We study graph neural networks on citation graphs.",
        "Convolutional neural networks for images.",
    ]
    d = DocFreqs.from_texts(texts)
    assert d.num_docs == 3
    assert d.df("neural network") == 3  # phrase key = tokenizer terms joined by a space
    assert d.df("graph neural network") == 2
    assert d.df("network") == 3
    assert d.df("molecul") == 1
    assert d.df("unseen phrase") == 0


def test_shipped_stats_are_the_real_corpus():
    d = DocFreqs.shipped()
    assert d.num_docs == 100_000
    assert d.df("model") > d.df("neural network") > d.df("graph neural network") > 0
    assert d.df("diffus model") > 500
    assert d.df("目标 检测") > 0  # Chinese keys (counted over the Chinese summaries, rescaled)


class _CountingIndex:
    """The two members DocFreqs.from_index uses, answered from a real count of the sample
    (the BM25 index exposes exactly these: ``num_docs`` and ``doc_freq(term)``)."""

    def __init__(self, dfs: DocFreqs):
        self.num_docs = dfs.num_docs
        self._dfs = dfs

    def doc_freq(self, term: str) -> int:
        return int(self._dfs.df(term))


def test_from_index_terms_exact_phrases_estimated(sample_dfs, papers):
    d = DocFreqs.from_index(_CountingIndex(sample_dfs))
    assert d.num_docs == sample_dfs.num_docs
    assert d.df("model") == sample_dfs.df("model")
    est = d.df("graph neural network")
    assert 0 < est <= min(d.df("graph"), d.df("neural"), d.df("network"))
    p = papers["2606.23694"]
    kws = KeywordExtractor(d).extract(p["abstract"], k=10, title=p["title"])
    assert normalize_keyphrase("text classification") in _keys(kws)


def test_from_empty_index_uses_shipped():
    class Empty:
        num_docs = 0

        def doc_freq(self, term: str) -> int:
            return 0

    assert DocFreqs.from_index(Empty()).num_docs == DocFreqs.shipped().num_docs


def test_from_real_bm25_index_if_available(tmp_path, papers):
    from indexer.lexical import bm25
    index = bm25.BM25Index.open(tmp_path / "bm25")
    docs = [
        bm25.IndexedDoc(
            id=p["id"], title=p["title"], abstract=p["abstract"], authors=p["authors"],
            categories=p["categories"], published=date.fromisoformat(p["published"]),
        )
        for p in list(papers.values())[:500]
    ]
    index.upsert(docs)
    index.commit()
    index.reload()
    d = DocFreqs.from_index(index)
    assert d.num_docs == 500
    assert d.df("model") > 0
    p = papers["2604.05524"]
    kws = KeywordExtractor(d).extract(p["abstract"], k=10, title=p["title"])
    assert normalize_keyphrase("network pruning") in _keys(kws)


# -- CLI -------------------------------------------------------------------------------


def _papers_cli(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, timeout=120,
    )


def test_cli_keywords_json_lines(papers):
    lines = [
        json.dumps({"id": pid, "title": papers[pid]["title"], "text": papers[pid]["abstract"]})
        for pid, _ in KNOWN
    ]
    r = _papers_cli(["keywords", "-", "--k", "7", "--df-from-input", "--json"], "\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["id"] for o in out] == [pid for pid, _ in KNOWN]
    for o in out:
        assert 1 <= len(o["keywords"]) <= 7
        assert set(o["keywords"][0]) == {"keyword", "weight"}
        ws = [k["weight"] for k in o["keywords"]]
        assert ws[0] == 1.0 and ws == sorted(ws, reverse=True)


def test_cli_keywords_bad_line_is_a_clear_error():
    stdin = '{"id": 1, "title": "Graph neural networks", "text": "x"}\n{"id": 2, "title": \n'
    r = _papers_cli(["keywords", "--json"], stdin)
    assert r.returncode == 2
    assert "error:" in r.stderr and ":2:" in r.stderr and "Traceback" not in r.stderr
    r = _papers_cli(["keywords", "--json"], '["not", "an", "object"]\n')
    assert r.returncode == 2 and ":1:" in r.stderr
    assert "Traceback" not in r.stderr
    r = _papers_cli(["keywords", "--json"], '{"id": 3, "text": 42}\n')
    assert r.returncode == 2 and "must be strings" in r.stderr


def test_serving_caches_stay_small_and_change_no_keyword(search_engine, papers):
    """A service worker's text caches start over at their serving limits (indexer.search.caches)
    instead of the build's 1-2M entries, and a cache that starts over changes no result:
    300 real abstracts through a tiny-limit extractor give the same keywords as through
    one that remembers everything."""
    from indexer.search import caches
    from indexer.text import phrases
    from indexer.text.keywords import DocFreqs, KeywordExtractor

    tok = default_tokenizer()
    saved = (tok.cache_limit, phrases._WORD_INFO_LIMIT)
    try:
        caches.size_for_serving(100)
        state = search_engine._require()
        small = KeywordExtractor(DocFreqs.from_index(state.bm25, cache_limit=100), cache_limit=100)
        large = KeywordExtractor(DocFreqs.from_index(state.bm25))
        for p in list(papers.values())[:300]:
            got = small.extract(p["abstract"], k=10, title=p["title"])
            assert got == large.extract(p["abstract"], k=10, title=p["title"]), p["id"]
            assert len(small._stats) <= 100 and len(small.doc_freqs._cache) <= 100
            # checked once a text (tokenizer) or a sentence (phrases): the limit + one text's words
            assert len(tok._cache) <= 600 and len(phrases._WORD_INFO) <= 600
        assert len(large._stats) > 5000  # the other one did remember: the limits were reached
    finally:
        tok.cache_limit, phrases._WORD_INFO_LIMIT = saved
    # what the service itself runs with
    caches.size_for_serving()
    try:
        assert tok.cache_limit == phrases._WORD_INFO_LIMIT == caches.SERVING_ENTRIES
        extractor = search_engine.extractor()
        assert extractor._cache_limit == caches.SERVING_ENTRIES == extractor.doc_freqs._cache_limit
    finally:
        tok.cache_limit, phrases._WORD_INFO_LIMIT = saved


# -- noise (issue 15): generic words, verb endings, one term per slot, Chinese fragments --

DATA = REPO / "indexer" / "data"


def _list_file(name: str) -> list[str]:
    return [line for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def general_english() -> frozenset[str]:
    """The shipped top-3,000 general-English words (derived from wordfreq, CC BY-SA 4.0)."""
    words = frozenset(_list_file("english-common-words.txt"))
    assert len(words) > 2800 and {"goal", "small", "task", "note", "the"} <= words
    return words


@pytest.fixture(scope="module")
def verbs() -> frozenset[str]:
    """Verb forms that are never nouns (lexicon list, base and -s forms) and the learned ones."""
    forms = {line.split("\t")[0] for line in _list_file("english-verb-forms.txt") if line.endswith("\tv")}
    forms |= set(_list_file("keyword-verbs.txt"))
    assert {"operate", "operates", "linearises", "behave", "emerge"} <= forms
    return frozenset(forms)


@pytest.mark.parametrize("source", ["shipped", "sample"])
def test_sample_top10_has_no_generic_word_or_verb_ending(papers, sample_dfs, general_english, verbs, source):
    """Over every paper of the bundled sample (8,000 real abstracts), with the shipped
    statistics and with the sample's own (what a fresh install's index gives): no top-10
    keyword is a single general-English word, none ends in a verb, and no two of them
    are one term (interest_key: singular/plural, acronym/expansion, "X method"/"X scheme")."""
    from indexer.text.keywords import interest_key

    dfs = DocFreqs.shipped() if source == "shipped" else DocFreqs.from_index(_CountingIndex(sample_dfs))
    ex = KeywordExtractor(dfs)
    generic, verb_end, same_term = [], [], []
    for p in papers.values():
        kws = [k.keyword for k in ex.extract(p["abstract"], k=10, title=p["title"])]
        for kw in kws:
            words = kw.lower().split()
            if len(words) == 1 and words[0] in general_english:
                generic.append((p["id"], kw))
            if words[-1] in verbs:
                verb_end.append((p["id"], kw))
        keys = [interest_key(kw) for kw in kws]
        if len(set(keys)) < len(keys):
            same_term.append((p["id"], kws))
    assert not generic, generic[:20]
    assert not verb_end, verb_end[:20]
    assert not same_term, same_term[:5]


def test_issue_examples_are_gone(papers):
    ex = KeywordExtractor(DocFreqs.shipped())

    def top(pid: str) -> list[str]:
        p = papers[pid]
        return [k.keyword for k in ex.extract(p["abstract"], k=10, title=p["title"])]

    # "goal" beside "subspace learning" (1402.4844); "learner" stays: it is rank 18,355
    # of wordfreq's English list, no general word
    assert "goal" not in top("1402.4844") and "subspace learning" in top("1402.4844")
    # "… operate" verb fragments: the noun phrase stays, the verb goes
    nopa = top("1003.1357")  # "NOPAs operate": the acronym joins its definition, the verb goes
    assert "non-degenerate optical parametric amplifier" in nopa and not any(k.endswith("operate") for k in nopa)
    assert not any(k.endswith(("operate", "operates")) for pid in ("2508.13650", "2606.28548", "2606.30393") for k in top(pid))
    # "GNNs" defined in the text is one keyword with "graph neural networks"
    kws = top("2508.11826")
    assert "graph neural networks" in kws and "GNNs" not in kws


def test_acronym_definitions_on_real_sentences():
    from indexer.text.acronyms import definitions, expansion

    text = ("Graph neural networks (GNNs) are popular. We study multimodal retrieval-augmented "
            "generation (MRAG) with large language models (LLMs; see below), sparse autoencoders (SAEs), "
            "the signal-to-noise ratio (SNR) and a figure (a) with no acronym.")
    assert dict(definitions(text)) == {
        "gnn": "Graph neural networks", "mrag": "multimodal retrieval-augmented generation",
        "llm": "large language models", "sae": "sparse autoencoders", "snr": "signal-to-noise ratio",
    }
    # the shipped table: what most arXiv papers say an acronym stands for
    assert expansion("GNNs") == "graph neural networks"
    assert expansion("CMB") == "cosmic microwave background"
    assert expansion("not-an-acronym") is None


def test_interest_key_merges_variants_of_one_term():
    from indexer.text.keywords import interest_key, interest_profile

    gnn = {interest_key(w) for w in ("GNN", "GNNs", "graph neural network", "Graph Neural Networks", "graph neural network models")}
    assert gnn == {"graph neural network"}
    assert interest_key("sign language") != interest_key("language")
    profile = interest_profile([{"keyword": "GNNs", "weight": 2.0}, {"keyword": "graph neural networks", "weight": 1.5},
                                {"keyword": "message passing", "weight": 1.0}])
    assert profile == [
        {"keyword": "graph neural networks", "weight": 1.0, "key": "graph neural network"},
        {"keyword": "message passing", "weight": 0.5, "key": interest_key("message passing")},
    ]


@pytest.fixture(scope="module")
def zh_records() -> list[dict]:
    return _read(SAMPLE_ZH)


def test_chinese_keywords_are_whole_terms(zh_records):
    """Over all 2,612 Chinese summaries of the sample: no fragment of 大语言模型 ("大语言"
    where every 大语言 of the text is followed by 模型), no keyword that starts with a
    function word (是, 了, 的, 和, ...) or with the stray letter of "3D部件" ("D部件")."""
    ex = KeywordExtractor(DocFreqs.shipped())
    truncated, function_word, stray_letter = [], [], []
    for r in zh_records:
        text = r["zh"]
        kws = [k.keyword for k in ex.extract(text, k=10)]
        whole_only = "大语言" in text and text.count("大语言") == text.count("大语言模型")
        for kw in kws:
            if whole_only and "大语言" in kw and "大语言模型" not in kw:
                truncated.append((r["id"], kw))
            if has_cjk(kw) and kw[0] in "是了的和与及或把而":
                function_word.append((r["id"], kw))
            if len(kw) > 1 and kw[0].isascii() and kw[0].isalpha() and not kw[1].isascii():
                at = [i for i in range(len(text)) if text.startswith(kw, i)]
                if at and all(i > 0 and text[i - 1].isdigit() for i in at):  # "D部件" of "3D部件"
                    stray_letter.append((r["id"], kw))
    assert not truncated, truncated[:10]
    assert not function_word, function_word[:10]
    assert not stray_letter, stray_letter[:10]


def test_chinese_overlapping_fragments_merge(zh_records):
    """Real summaries whose keywords were overlapping pieces of one unknown word: 雅可比
    (Jacobian) cut into 位移雅 / 可比度量, 部件级点定位 into D部件 / 级点定位."""
    ex = KeywordExtractor(DocFreqs.shipped())
    by_id = {r["id"]: r["zh"] for r in zh_records}
    kws = [k.keyword for k in ex.extract(by_id["2606.22880"], k=10)]
    assert not {"位移雅", "可比度量"} & set(kws), kws
    assert any("雅可比" in k for k in kws), kws
    kws = [k.keyword for k in ex.extract(by_id["2606.29267"], k=10)]
    assert not {"D部件", "级点定位", "D部件级点"} & set(kws), kws
