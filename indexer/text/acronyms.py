"""Acronyms and their expansions: "graph neural networks (GNNs)" says GNN = graph neural network.

Why: one topic must be one keyword. A paper that defines an acronym uses both forms, and
without this they compete for two of its ten keyword slots ("GNNs", "graph neural
networks"); across papers, a reader's interest profile must add "GNN" from one paper to
"graph neural networks" from another. So:

- :func:`definitions` finds the in-text definitions of one text ("long form (ACRONYM)"),
  with the rule of Schwartz & Hearst (2003): the acronym's letters, read backwards,
  match the long form's letters, the first one at the start of a word, and the long
  form has at most min(|A| + 5, 2·|A|) words;
- :func:`expansion` answers for acronyms that the shipped arXiv corpus defines one way
  in most papers (``indexer/data/acronyms.tsv``, built by benchmarks/make_acronyms.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

ACRONYMS_FILE = "acronyms.tsv"

# "(GNNs)", "(MRAG)", "(SAE)", "(2D-CNN)": two or more capitals, at most 10 characters
_PAREN_RE = re.compile(r"\(\s*([A-Za-z0-9][A-Za-z0-9\-]{1,9})\s*[;,)]")
_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
_CUT_RE = re.compile(r"[.;:!?()\[\]]")  # a long form never crosses these


def acronym_key(acronym: str) -> str | None:
    """Lower-case singular form of an acronym ("GNNs" → "gnn"), or None for a word that
    is not one (fewer than two capitals, or longer than 10 characters)."""
    a = acronym.strip()
    if not (2 <= len(a) <= 10) or sum(ch.isupper() for ch in a) < 2 or not a[0].isalnum():
        return None
    if a.endswith("s") and len(a) > 2 and a[-2].isupper():
        a = a[:-1]
    return a.lower()


def _match(letters: str, words: list[str]) -> int:
    """How many trailing ``words`` the acronym ``letters`` (lower case) spans, or 0
    (Schwartz & Hearst: match backwards, the first letter at a word start)."""
    text = " ".join(words).lower()
    li = len(letters) - 1
    ti = len(text) - 1
    while li >= 0:
        ch = letters[li]
        if not ch.isalnum():
            li -= 1
            continue
        while ti >= 0 and (text[ti] != ch or (li == 0 and ti > 0 and text[ti - 1].isalnum())):
            ti -= 1
        if ti < 0:
            return 0
        li -= 1
        ti -= 1
    start = ti + 1
    return len(text[start:].split())


def definitions(text: str) -> Iterator[tuple[str, str]]:
    """``(acronym_key, long_form)`` for each "long form (ACRONYM)" of ``text``."""
    for m in _PAREN_RE.finditer(text):
        key = acronym_key(m.group(1))
        if key is None:
            continue
        before = _CUT_RE.split(text[max(0, m.start() - 200) : m.start()])[-1]
        letters = "".join(ch for ch in key if ch.isalpha())
        if len(letters) < 2:
            continue
        window = min(len(letters) + 5, 2 * len(letters))
        words = _WORD_RE.findall(before)[-window:]
        if not words:
            continue
        n = _match(letters, words)
        if n == 0 or n > window:
            continue
        long_words = words[-n:]
        if "".join(long_words).lower() == key or len(long_words) < 2 and "-" not in long_words[0]:
            continue  # "(GNN)" after "GNN", or a one-word "expansion"
        yield key, " ".join(long_words)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, str]:
    ref = resources.files("indexer") / "data" / ACRONYMS_FILE
    if not ref.is_file():
        return {}
    out = {}
    for line in ref.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            acronym, _, long_form = line.partition("\t")
            if long_form:
                out[acronym] = long_form
    return out


def expansion(acronym: str) -> str | None:
    """The long form most arXiv papers give ``acronym`` ("GNNs" → "graph neural network"), if any."""
    key = acronym_key(acronym) or acronym.lower()
    return _shipped().get(key)
