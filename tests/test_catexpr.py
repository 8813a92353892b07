"""Cool Papers' category algebra (cs.AI+cs.LG-cs.CY), including hyphenated archive names."""

from __future__ import annotations

import pytest

from indexer.errors import InvalidQuery
from indexer.lexical.catexpr import canonical_category, category_terms, parse_category_expr


def test_include_exclude():
    e = parse_category_expr("cs.AI+cs.LG-cs.CY")
    assert e.include == ("cs.AI", "cs.LG") and e.exclude == ("cs.CY",)
    assert e.matches(["cs.LG", "stat.ML"])
    assert not e.matches(["cs.AI", "cs.CY"])
    assert not e.matches(["math.PR"])
    assert str(e) == "cs.AI+cs.LG-cs.CY"


def test_archives_match_subcategories():
    e = parse_category_expr("astro-ph")
    assert e.matches(["astro-ph.CO"]) and e.matches(["astro-ph"]) and not e.matches(["cs.AI"])
    e = parse_category_expr("cs-cs.CY")
    assert e.matches(["cs.LG"]) and not e.matches(["cs.LG", "cs.CY"])


def test_hyphenated_names_split_correctly():
    assert parse_category_expr("hep-th-hep-ph").include == ("hep-th",)
    assert parse_category_expr("hep-th-hep-ph").exclude == ("hep-ph",)
    e = parse_category_expr("cond-mat.mes-hall+cond-mat.str-el-physics.atom-ph")
    assert e.include == ("cond-mat.mes-hall", "cond-mat.str-el") and e.exclude == ("physics.atom-ph",)
    assert parse_category_expr("cs.AI-astro-ph").exclude == ("astro-ph",)


def test_canonical_case_and_separators():
    assert str(parse_category_expr("CS.ai + cs.lg")) == "cs.AI+cs.LG"
    assert str(parse_category_expr("cs.AI,cs.AI,cs.LG")) == "cs.AI+cs.LG"
    assert canonical_category("Cond-Mat.Mes-Hall") == "cond-mat.mes-hall"
    assert canonical_category("q-bio.nc") == "q-bio.NC"


def test_exclude_only_means_everything_else():
    e = parse_category_expr("-cs.CY")
    assert e.include == () and e.matches(["math.PR"]) and not e.matches(["cs.CY"])


@pytest.mark.parametrize("bad", ["", "   ", "cs.AI+", "cs.AI++cs.LG", "+-", "foo.BAR", "cs.AI;drop", "<script>", "cs..AI",
                                 "cs.AI-", "x" * 600, "cs.AI+-cs.LG", "1234"])
def test_garbage_raises(bad):
    with pytest.raises(InvalidQuery):
        parse_category_expr(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("foo.AI", "unknown category 'foo.AI'"),
        ("cs.XYZ", "unknown category 'cs.XYZ'"),
        ("cs.AI+bogus", "unknown category 'bogus'"),
        ("cs.AI-nonsense.XX", "unknown category 'nonsense.XX'"),
        ("cs.AI!", "malformed category expression 'cs.AI!' near '!'"),
        ("cs.AI+<script>", "malformed category expression 'cs.AI+<script>' near '<script>'"),
    ],
)
def test_errors_name_the_unknown_category_or_the_stray_text(bad, message):
    with pytest.raises(InvalidQuery) as e:
        parse_category_expr(bad)
    assert message in e.value.message


def test_category_terms_add_archives():
    assert category_terms(["cs.AI", "cs.LG", "hep-th"]) == ["cs.AI", "cs", "cs.LG", "hep-th"]
