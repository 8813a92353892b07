"""Highlighted snippets: marks by tokenizer terms, safe HTML, densest window."""

from __future__ import annotations

import gzip
import html
import json
import re
from pathlib import Path

from indexer.lexical.query import parse_query
from indexer.text.snippets import highlight
from indexer.text.tokenizer import tokenize

SAMPLE = Path(__file__).resolve().parents[1] / "indexer" / "data" / "sample-papers.jsonl.gz"


def _marked(s: str) -> list[str]:
    return re.findall(r"<mark>(.*?)</mark>", s)


def test_marks_stemmed_variants():
    terms = parse_query("graph neural network").positive_terms
    out = highlight("Graph Neural Networks for graphs", terms, max_chars=0)
    assert _marked(out) == ["Graph", "Neural", "Networks", "graphs"]


def test_html_is_escaped_and_inert():
    out = highlight('<script>alert("x")</script> & attention', {"attent", "script"}, max_chars=0)
    assert "<script>" not in out and "&lt;" in out and "&amp;" in out
    assert re.sub(r"</?mark>", "", out) == html.escape('<script>alert("x")</script> & attention')


def test_chinese_and_compounds():
    out = highlight("基于Transformer的目标检测与U-Net分割", parse_query("目标检测 unet transformer").positive_terms, max_chars=0)
    assert _marked(out) == ["Transformer", "目标", "检测", "U-Net"]


def test_long_text_window_is_densest_and_cut():
    filler = "Lorem ipsum dolor sit amet consectetur. " * 30
    text = filler + "We propose a diffusion model for protein design, a diffusion approach. " + filler
    out = highlight(text, set(tokenize("diffusion protein")), max_chars=200)
    plain = re.sub(r"</?mark>", "", out)
    assert out.startswith("…") and out.endswith("…")
    assert len(plain) <= 202
    assert _marked(out) == ["diffusion", "protein", "diffusion"]


def test_no_terms_gives_start_of_text():
    text = "word " * 200
    out = highlight(text, set(), max_chars=100)
    assert out.startswith("word") and out.endswith("…") and "<mark>" not in out
    assert highlight("short title", set(), max_chars=0) == "short title"


def test_real_abstracts_keep_all_marked_words_in_the_window():
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(400), f, strict=False)]
    terms = set(tokenize("quantum entanglement"))
    checked = 0
    for d in docs:
        out = highlight(d["abstract"], terms, max_chars=300)
        plain = html.unescape(re.sub(r"</?mark>", "", out)).strip("…")
        assert plain in d["abstract"]
        for w in _marked(out):
            assert set(tokenize(html.unescape(w))) & terms
        if set(tokenize(d["abstract"])) & terms:
            assert _marked(out), d["id"]
            checked += 1
    assert checked >= 5


def _reference_marks(text, terms):
    """The plain definition: every run of the word regex whose tokenizer terms meet the query's."""
    from indexer.text.snippets import _RUN_RE

    out = []
    for m in _RUN_RE.finditer(text):
        hit = frozenset(t for t in tokenize(m.group()) if t in terms)
        if hit:
            out.append((m.start(), m.end(), hit))
    return out


def test_marks_match_the_plain_definition():
    """The set-based matcher finds exactly the runs a word-by-word scan finds: joiners,
    underscores, digits, case and repeated words included, on hand-made and real text."""
    from indexer.text.snippets import _matches

    tricky = [
        "U-Net's don't -a a- 'b b' x--y co-operative state-of-the-art state of the art",
        "a_b_c _x x_ 1-2-3 α-β γ’s Net-net-Net net nets",
        "graph-graph graph graphs graph's graph’s Graph GRAPHS graphing",
        "",
        "model",
    ]
    queries = ["net", "graph", "unet", "state art", "cooper", "a b x y", "α β γ", "don", "model"]
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(200), f, strict=False)]
    texts = tricky + [d["title"] for d in docs] + [d["abstract"] for d in docs]
    queries += [d["title"] for d in docs[:20]]
    for q in queries:
        terms = set(parse_query(q).positive_terms)
        for text in texts:
            assert _matches(text, terms) == _reference_marks(text, terms), (q, text[:80])


def test_marks_follow_the_words_the_terms_came_from():
    """By stem, the keyword `setting` is the term `set`, which `Open-Set` and `sets` carry too.
    Given the words, only inflections of them are marked; compounds still match a part."""
    text = "Open-Set recognition in the few-shot setting: two settings, sets of U-Net models and studies."
    kw = "setting"
    out = highlight(text, set(tokenize(kw)), max_chars=0, words=kw)
    assert _marked(out) == ["setting", "settings"]
    assert "Open-Set" in _marked(highlight(text, set(tokenize(kw)), max_chars=0))  # terms alone: the old marks
    q = "open-set unet model study"
    assert _marked(highlight(text, parse_query(q).positive_terms, max_chars=0, words=q)) == ["Open-Set", "sets", "U-Net", "models", "studies"]
    zh = "基于Transformer的目标检测"
    assert _marked(highlight(zh, parse_query("目标检测").positive_terms, max_chars=0, words="目标检测")) == ["目标", "检测"]


def test_related_papers_do_not_mark_open_set_for_setting(search_engine):
    """Every related/search hit in the sample: a marked word is an inflection of a query word."""
    hits = search_engine.search("open-set setting", mode="bm25", size=20).hits
    marked = {m for h in hits for m in _marked(h.title_html + h.snippet_html)}
    assert "Open-Set" in marked or "open-set" in marked
    only_setting = search_engine.search("setting", mode="bm25", size=50).hits
    marked = {m.lower() for h in only_setting for m in _marked(h.title_html + h.snippet_html)}
    assert marked and marked <= {"setting", "settings"}, marked
