"""TeX accents in titles, abstracts and names are shown as Unicode (pylatexenc's mapping),
math and everything else untouched; the API and the pages show them, BibTeX keeps TeX."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from indexer.text.tex_accents import paper_for_display, render_tex_accents
from tests.conftest import SAMPLE


@pytest.mark.parametrize(
    ("tex", "shown"),
    [
        (r"On the range of the Campanino and P\'etritis random walk", "On the range of the Campanino and Pétritis random walk"),
        (r"Bers and H\'enon, Painlev\'e and Schr\"odinger", "Bers and Hénon, Painlevé and Schrödinger"),
        (r'Reissner-Nordstr\"{o}m-(anti-)de Sitter', "Reissner-Nordström-(anti-)de Sitter"),
        (r"Erd\H{o}s, \v{S}ediv\'y, {\'E}cole, \AA{}ngstr\"om, Stra\ss e, Ib\'{\i}\~nez", "Erdős, Šedivý, École, Ångström, Straße, Ibíñez"),
        (r"50\% of R\&D", "50% of R&D"),
    ],
)
def test_accents_become_unicode(tex, shown):
    assert render_tex_accents(tex) == shown


@pytest.mark.parametrize(
    "text",
    [
        r"$\hat{x}$ and $\"a$ and $$\'x$$ and \(\c c\)",  # math is KaTeX's
        r"the surfaces $t=\con $, see \cite{x} and \textbf{y}",  # other macros
        r"costs \$5 ~ 10 -- not $x$",  # \$ is KaTeX's escaped dollar
        "plain text, nothing to do",
    ],
)
def test_math_and_other_tex_are_left_alone(text):
    assert render_tex_accents(text) == text


def test_no_accent_macro_is_left_outside_math_in_the_sample():
    accent = re.compile(r"\\['`^\"~=.][A-Za-z{\\]|\\[uvHc]\{")
    math = re.compile(r"\$\$.+?\$\$|(?<!\\)\$(?:\\.|[^$\\])+\$", re.S)
    changed = left = 0
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            for text in (row["title"], row["abstract"], *row["authors"]):
                shown = render_tex_accents(text)
                changed += shown != text
                left += bool(accent.search(math.sub("", shown)))
    assert changed > 400 and left == 0, (changed, left)


def test_paper_for_display_keeps_the_original():
    paper = {"id": "1", "title": r"P\'etritis", "abstract": r"H\"older", "authors": [r"Fran\c{c}oise P\`ene"], "comments": None}
    shown = paper_for_display(paper)
    assert shown["title"] == "Pétritis" and shown["abstract"] == "Hölder" and shown["authors"] == ["Françoise Pène"]
    assert paper["title"] == r"P\'etritis"


def test_api_pages_and_feeds_show_unicode_bibtex_keeps_tex(app_client):
    paper = app_client.get("/api/papers/1508.02542").json()
    assert "Campanino and Pétritis random walk" in paper["title"]
    hits = app_client.get("/api/search", params={"q": "Campanino random walk", "mode": "bm25"}).json()["hits"]
    hit = next(h for h in hits if h["id"] == "1508.02542")
    assert "Pétritis" in hit["title"] and "Pétritis" in hit["title_html"]
    page = app_client.get("/paper/1508.02542", headers={"accept": "text/html"}).text
    assert "Campanino and Pétritis random walk</h1>" in page
    assert r"P\&#39;etritis" in page or r"P\'etritis" in page  # the BibTeX block keeps TeX
    assert r"P\'etritis" in app_client.get("/api/papers/1508.02542.bib").text
