"""The English word lists shipped in ``indexer/data`` for keyword extraction.

Why lists and not a tagger: the extractor needs only two facts about a word, and both
are properties of the word, not of its sentence, in scientific prose:

- is it *general English* (``english-common-words.txt``, the top 3,000 words of the
  ``wordfreq`` data, CC BY-SA 4.0): such a word alone is never a keyword ("goal",
  "small", "task"); inside a phrase it is fine ("small-world network", "task vectors");
- is it a *verb form that is never a noun* (``english-verb-forms.txt``, from the
  ``lemminflect`` lexicon, checked against the arXiv corpus): such a word ends a noun
  phrase ("graph neural networks operate" → "graph neural networks").

Both files are built by benchmarks/make_word_lists.py (their headers carry the sources
and licences); lines starting with ``#`` are comments.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

COMMON_WORDS_FILE = "english-common-words.txt"
VERB_FORMS_FILE = "english-verb-forms.txt"

#: kinds of english-verb-forms.txt: base or -s form (ends a phrase wherever it stands),
#: -ing form (may not start a phrase: "extracting features"), comparative or superlative
#: adjective (may not end one: "settings closer")
VERB, GERUND, COMPARATIVE = "v", "g", "c"


def _lines(name: str) -> list[str]:
    ref = resources.files("indexer") / "data" / name
    if not ref.is_file():
        return []
    return [line for line in ref.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Lower-case general-English words that are never a keyword on their own."""
    return frozenset(_lines(COMMON_WORDS_FILE))


@lru_cache(maxsize=1)
def verb_forms() -> dict[str, str]:
    """Lower-case word → kind (:data:`VERB`, :data:`GERUND`, :data:`COMPARATIVE`)."""
    out = {}
    for line in _lines(VERB_FORMS_FILE):
        form, _, kind = line.partition("\t")
        out[form] = kind or VERB
    return out


def is_common_word(word: str) -> bool:
    """``word`` (any case) or its singular is on the general-English list ("goals" too)."""
    w = word.lower()
    common = common_words()
    if w in common:
        return True
    if len(w) > 4 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        if w.endswith("ies") and w[:-3] + "y" in common:
            return True
        if w[:-1] in common:
            return True
        if w.endswith("es") and w[:-2] in common:
            return True
    return False
