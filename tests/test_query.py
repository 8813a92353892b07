"""The search-box query language: structure, semantics flags, forgiveness and errors."""

from __future__ import annotations

import pytest

from indexer.errors import InvalidQuery
from indexer.lexical.query import MAX_QUERY_CHARS, parse_query
from indexer.text.tokenizer import tokenize


def _atoms(q):
    return [(c.negated, a.field, a.terms, a.phrase) for c in q.clauses for a in c.atoms]


def test_free_words_are_optional():
    q = parse_query("graph neural networks")
    assert q.free_terms == ["graph", "neural", "network"]
    assert not any(c.required for c in q.clauses)
    assert q.positive_terms == {"graph", "neural", "network"}
    assert q.text == "graph neural networks"
    assert not q.is_empty and not q.fields_only and q.arxiv_id is None


def test_phrase_exclude_or():
    q = parse_query('"graph neural" -survey gan OR diffusion')
    assert _atoms(q) == [
        (False, "text", ("graph", "neural"), True),
        (True, "text", ("survey",), False),
        (False, "text", ("gan",), False),
        (False, "text", ("diffus",), False),
    ]
    assert q.clauses[0].required and not q.clauses[2].required
    assert len(q.clauses[2].atoms) == 2
    assert q.must_not_terms == ["survey"]
    assert "survey" not in q.positive_terms


def test_fields_and_quoted_values():
    q = parse_query('ti:"graph neural" au:"Yann LeCun" abs:diffusion cat:cs.lg id:2401.01234v2')
    assert _atoms(q) == [
        (False, "ti", ("graph", "neural"), True),
        (False, "au", ("yann", "lecun"), True),
        (False, "abs", ("diffus",), False),
        (False, "cat", ("cs.LG",), False),
        (False, "id", ("2401.01234",), False),
    ]
    assert all(c.required for c in q.clauses)
    assert q.fields_only
    assert q.positive_terms == {"graph", "neural", "diffus"}


def test_whole_query_arxiv_id_or_url():
    for s in ["2401.01234", "arXiv:2401.01234v3", "https://arxiv.org/abs/2401.01234", "arxiv.org/pdf/2401.01234v1.pdf",
              "hep-th/9901001", "id:2401.01234"]:
        assert parse_query(s).arxiv_id == ("hep-th/9901001" if "hep-th" in s else "2401.01234"), s
    assert parse_query("2401.01234 attention").arxiv_id is None


def test_chinese_query():
    q = parse_query("基于Transformer的目标检测")
    assert q.free_terms == tokenize("基于Transformer的目标检测")
    assert {"目标", "检测", "transform"} <= q.positive_terms


def test_forgiving_inputs():
    assert parse_query('"unclosed phrase').clauses[0].atoms[0].terms == ("unclos", "phrase")
    assert parse_query("Decay - the prospect").free_terms == ["decay", "prospect"]
    assert parse_query("graph -").free_terms == ["graph"]
    assert parse_query("B0 --> ll decays").free_terms == ["b0", "ll", "decay"]
    assert parse_query("Analysis: a survey").free_terms == ["analysi", "survey"]
    assert parse_query("Models:Hot or Cold").free_terms == ["model", "hot", "cold"]
    assert parse_query("Chrono::Ray").free_terms == ["chrono", "ray"]
    assert parse_query("the of").is_empty
    assert _atoms(parse_query("--graph")) == [(True, "text", ("graph",), False)]


def test_space_after_a_field_colon():
    assert _atoms(parse_query("au: LeCun")) == [(False, "au", ("lecun",), False)]
    assert _atoms(parse_query("cat: cs.AI graph"))[0] == (False, "cat", ("cs.AI",), False)
    # not a category: the pasted title "CAT: Circular Attention" is plain words
    assert parse_query("CAT: Circular Attention").free_terms == ["cat", "circular", "attent"]


def test_real_titles_and_chinese_summaries_parse():
    """People paste titles: nearly all real ones must parse (and none may crash)."""
    import gzip
    import json
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "indexer" / "data"
    texts = []
    with gzip.open(data / "sample-papers.jsonl.gz", "rt", encoding="utf-8") as f:
        texts += [json.loads(line)["title"] for line in f]
    with gzip.open(data / "sample-zh.jsonl.gz", "rt", encoding="utf-8") as f:
        texts += [json.loads(line)["zh"] for line in f]
    failed = []
    for t in texts:
        try:
            parse_query(t)
        except InvalidQuery as e:
            failed.append((t, e.message))
    assert len(failed) <= len(texts) // 1000, failed[:5]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_QUERY_CHARS + 1), "too long"),
        ("-", "lone '-'"),
        ("- -", "lone '-'"),
        ("foo:bar", "unknown field"),
        ("ti: ", "needs a value"),
        ("graph au: OR x", "needs a value"),
        ("ti: au: cat: id:", "needs a value"),
        ("graph OR", "dangling OR"),
        ("OR graph", "OR must stand"),
        ("a OR OR b", "OR must stand"),
        ("-graph OR tree", "excluded"),
        ("id:notanid", "arXiv id"),
        ("cat:nonsense.XX", "archive"),
        ("year:2020", "unknown field"),
        ("a\x00b", "NUL"),
    ],
)
def test_malformed_queries_have_clear_messages(bad, fragment):
    with pytest.raises(InvalidQuery) as e:
        parse_query(bad)
    assert fragment in e.value.message


def test_exclusion_only_query_is_allowed():
    q = parse_query("-survey")
    assert q.clauses[0].negated and q.fields_only and not q.is_empty
