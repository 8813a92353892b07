"""Highlighted snippets: HTML-escaped text with ``<mark>`` around the query's words.

Why here and not tantivy's SnippetGenerator: the index stores *our* terms (stemmed, jieba
words), not the original text, so matching must go through the same tokenizer. A word is
marked when any of its tokenizer terms is a query term: ``networks`` matches ``network``
(same stem), ``目标检测`` is marked piece by piece (jieba words of the CJK run), ``U-Net`` matches
``unet``. Everything outside the marks is escaped, so a title with ``<script>`` is inert.
"""

from __future__ import annotations

import functools
import html
import re
import threading
from collections.abc import Collection
from operator import itemgetter

from indexer.text.tokenizer import cut_chinese, default_tokenizer, has_cjk

ELLIPSIS = "…"
# word-ish runs: letters/digits (any script) joined by hyphens or apostrophes
_RUN_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_JOINERS = "-'’"  # the joiners of _RUN_RE: `U-Net`, `don't`
# the same runs in ASCII text (most abstracts), where the regex engine is faster with them
_ASCII_RUN_RE = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
_HTML_SPECIAL = re.compile("[&<>\"']")  # what html.escape(quote=True) replaces
_CJK_SPLIT_RE = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+)")


_WORD_TERMS: dict[str, tuple[str, ...]] = {}
#: The inverse of _WORD_TERMS: term -> the surface words seen so far that carry it
#: (``networks``, ``Network``, ``graph-network``… under ``network``).
_TERM_WORDS: dict[str, tuple[str, ...] | set[str]] = {}
#: Bumped when the caches are cleared, so a reader that raced a clear can notice.
_generation = 0
_LEARN_LOCK = threading.Lock()
_CACHE_LIMIT = 200_000  # words; then both caches start over


def _word_terms(word: str) -> tuple[str, ...]:
    """Tokenizer terms of one Latin word, cached (snippets run for every hit shown)."""
    got = _WORD_TERMS.get(word)
    if got is None:
        got = tuple(default_tokenizer().tokenize(word))
        with _LEARN_LOCK:
            _learn(word, got)
    return got


def _learn(word: str, got: tuple[str, ...]) -> None:
    """Cache ``word`` -> ``got`` (under _LEARN_LOCK: service threads highlight at once).

    The inverse entries go first, so a word that _latin_matches finds cached is always
    filed under its terms; an update lost between threads would hide it for good."""
    global _generation
    if word in _WORD_TERMS:
        return
    if len(_WORD_TERMS) > _CACHE_LIMIT:
        _generation += 1
        _WORD_TERMS.clear()
        _TERM_WORDS.clear()
    index = _TERM_WORDS
    for t in got:  # a tuple while small (most terms have a word or two), then a set
        have = index.get(t)
        if have is None:
            index[t] = (word,)
        elif isinstance(have, tuple):
            index[t] = have + (word,) if len(have) < 8 else {*have, word}
        else:
            have.add(word)
    _WORD_TERMS[word] = got


def _matches(text: str, terms: set[str] | frozenset[str]) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, matched terms) of every word in ``text`` that carries a query term."""
    tok = default_tokenizer()
    out: list[tuple[int, int, frozenset[str]]] = []
    if text.isascii() or not has_cjk(text):  # the common case: it runs for every hit shown
        return _latin_matches(text, terms)
    for m in _RUN_RE.finditer(text):
        run, base = m.group(), m.start()
        if not has_cjk(run):
            hit = frozenset(t for t in _word_terms(run) if t in terms)
            if hit:
                out.append((m.start(), m.end(), hit))
            continue
        pos = 0
        for part in _CJK_SPLIT_RE.split(run):
            if not part:
                continue
            if has_cjk(part):
                p = 0
                for w in cut_chinese(part):
                    i = part.find(w, p)
                    if i < 0:
                        continue
                    p = i + len(w)
                    hit = frozenset(t for t in tok.tokenize(w) if t in terms)
                    if hit:
                        out.append((base + pos + i, base + pos + p, hit))
            else:
                for sub in _RUN_RE.finditer(part):
                    hit = frozenset(t for t in tok.tokenize(sub.group()) if t in terms)
                    if hit:
                        out.append((base + pos + sub.start(), base + pos + sub.end(), hit))
            pos += len(part)
    return out


def _latin_matches(text: str, terms: set[str] | frozenset[str]) -> list[tuple[int, int, frozenset[str]]]:
    """:func:`_matches` for text without CJK, with set operations instead of a loop per word.

    An abstract has ~200 words, ~100 distinct, and only a few carry a query term. The
    distinct words are listed by the regex engine, the ones never seen are tokenized once
    (cached), and the marked ones are the words that :data:`_TERM_WORDS` files under a
    query term. They alone are located again with ``str.find``: an occurrence counts
    when it is a whole run of ``_RUN_RE`` (the runs ``finditer`` yields), i.e. not
    preceded by a letter/digit (or by one and a joiner), not followed by one (or by a
    joiner and one).
    """
    marked = _marked_words(text, terms)
    if not marked:
        return []
    return _whole_word_occurrences(text, marked)


def _marked_words(text: str, terms: set[str] | frozenset[str]) -> dict[str, frozenset[str]]:
    """The distinct words of Latin ``text`` that carry a query term -> the terms they carry."""
    words = set((_ASCII_RUN_RE if text.isascii() else _RUN_RE).findall(text))
    gen = _generation
    for word in words.difference(_WORD_TERMS):  # set - dict: a C loop over the set
        _word_terms(word)
    hits: set[str] = set()
    for t in terms:
        carriers = _TERM_WORDS.get(t)
        if carriers:
            hits.update(words.intersection(carriers))
    if gen != _generation:  # another thread cleared the caches meanwhile: look each word up
        hits = {w for w in words if not terms.isdisjoint(_word_terms(w))}
    return {w: frozenset(t for t in _word_terms(w) if t in terms) for w in hits}


def _whole_word_occurrences(text: str, marked: dict[str, frozenset[str]]) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, terms) of every occurrence of a ``marked`` word in ``text`` that is a
    whole ``_RUN_RE`` run (see :func:`_latin_matches`), in text order."""
    out: list[tuple[int, int, frozenset[str]]] = []
    n = len(text)
    for word, hit in marked.items():
        size = len(word)
        i = text.find(word)
        while i >= 0:
            e = i + size
            if i > 0:
                c = text[i - 1]
                if c.isalnum() or (c in _JOINERS and i > 1 and text[i - 2].isalnum()):
                    i = text.find(word, i + 1)
                    continue
            if e < n:
                c = text[e]
                if c.isalnum() or (c in _JOINERS and e + 1 < n and text[e + 1].isalnum()):
                    i = text.find(word, i + 1)
                    continue
            out.append((i, e, hit))
            i = text.find(word, e)
    out.sort(key=itemgetter(0))
    return out


def _best_window(text: str, marks: list[tuple[int, int, frozenset[str]]], max_chars: int) -> tuple[int, int]:
    """The ``max_chars`` window with the most distinct query terms (then most marks)."""
    n = len(text)
    if not marks:
        start = 0
    else:
        # a sliding window over the marks: [i, j] are those that fit from mark i on, and
        # ``counts`` how many of them carry each term (distinct = the terms counted)
        best, start = (-1, -1), 0
        last = len(marks) - 1
        counts: dict[str, int] = {}
        j = -1
        for i, (s, _, _) in enumerate(marks):
            if i:
                for t in marks[i - 1][2]:
                    if counts[t] == 1:
                        del counts[t]
                    else:
                        counts[t] -= 1
            if j < i:
                j = i
                for t in marks[i][2]:
                    counts[t] = counts.get(t, 0) + 1
            limit = s + max_chars
            while j < last and marks[j + 1][1] <= limit:
                j += 1
                for t in marks[j][2]:
                    counts[t] = counts.get(t, 0) + 1
            score = (len(counts), j - i + 1)
            if score > best:
                best, start = score, s
        # a little left context, starting at a word boundary
        lead = min(max_chars // 6, start)
        start = start - lead
        if start > 0:
            sp = text.find(" ", start, marks[0][0] if start < marks[0][0] else start + lead)
            start = sp + 1 if 0 <= sp < start + lead else start
    start = max(0, min(start, max(0, n - max_chars)))
    end = min(n, start + max_chars)
    if end < n:
        sp = text.rfind(" ", start + max_chars // 2, end)
        if sp > start:
            end = sp
    if start > 0 and not text[start - 1].isspace():
        sp = text.find(" ", start, end)
        if 0 <= sp < start + 30:
            start = sp + 1
    return start, end


# -- marks that the query's own words support -----------------------------------------------
# The stemmer files `setting`, `sets` and `set` under one term, so by terms alone the keyword
# `setting` marks `Open-Set`. Given the words the terms came from, a Latin word is marked
# only when it (or, in a compound, its part carrying the term) is an inflection of one of
# them: the two forms share a prefix and differ after it by at most 3 letters
# (`setting`/`settings`, `study`/`studies`), or 5 after a shared prefix of 5 or more
# (`model`/`modelling`, `generalize`/`generalization`). `set` stays unmarked for `setting`.
_CLOSE_TAIL, _LONG_PREFIX, _LONG_TAIL = 3, 5, 5


def _forms(word: str) -> set[str]:
    """A word, its parts and their joined form, lower-cased: ``Open-Set`` -> open-set, open, set, openset."""
    w = word.lower()
    parts = [p for p in re.split(r"[-'’]", w) if p]
    return {w, *parts, "".join(parts)}


def _close(a: str, b: str) -> bool:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    tail = max(len(a), len(b)) - n
    return tail <= _CLOSE_TAIL or (n >= _LONG_PREFIX and tail <= _LONG_TAIL)


@functools.lru_cache(maxsize=512)
def _surface_by_term(words: str) -> dict[str, set[str]]:
    """term -> the forms of the query's words that carry it (read-only: cached, since every
    hit of a page is highlighted against the same words)."""
    out: dict[str, set[str]] = {}
    for run in _RUN_RE.findall(words):
        if has_cjk(run):
            continue
        for form in _forms(run):
            for t in _word_terms(form):
                out.setdefault(t, set()).add(form)
    return out


@functools.lru_cache(maxsize=4096)
def _supported_terms(word: str, hit: frozenset[str], words: str) -> frozenset[str]:
    """The terms of ``hit`` that ``word`` carries as an inflection of one of ``words``
    (cached: a page's hits repeat the same marked words against the same words)."""
    surface = _surface_by_term(words)
    forms = _forms(word)
    return frozenset(
        t for t in hit
        if any(t in _word_terms(f) and any(_close(f, q) for q in surface.get(t, ())) for f in forms)
    )


def _supported(text: str, marks: list[tuple[int, int, frozenset[str]]], words: str):
    """The marks whose word is an inflection of a query word carrying the same term."""
    kept = []
    for s, e, hit in marks:
        word = text[s:e]
        if has_cjk(word):
            kept.append((s, e, hit))
            continue
        ok = _supported_terms(word, hit, words)
        if ok:
            kept.append((s, e, ok))
    return kept


def _supportable(terms: set[str] | frozenset[str], words: str) -> set[str] | frozenset[str]:
    """The terms a mark can keep under :func:`_supported`: those a query word carries, and
    the Chinese ones (kept as they are). Matching only these gives the same marks, faster
    (related papers send 30 query terms and explain with a few keywords)."""
    surface = _surface_by_term(words)
    return {t for t in terms if t in surface or has_cjk(t)}


def highlight(text: str, terms: Collection[str], max_chars: int = 300, words: str | None = None) -> str:
    """``text`` HTML-escaped with ``<mark>`` around words carrying any of ``terms``.

    ``max_chars`` > 0 cuts long text to its densest window, with ``…`` where cut;
    ``max_chars=0`` keeps the whole text (titles). ``words``, the text the terms came from
    (the query, the keywords), keeps marks to inflections of its words (see above)."""
    text = text or ""
    terms = terms if isinstance(terms, (set, frozenset)) else set(terms)
    if terms and words:
        terms = _supportable(terms, words)
    marks = _matches(text, terms) if terms else []
    if marks and words:
        marks = _supported(text, marks, words)
    start, end = 0, len(text)
    if max_chars and len(text) > max_chars:
        start, end = _best_window(text, marks, max_chars)
    # most windows hold nothing to escape: then the pieces are taken as they are
    escape = html.escape if _HTML_SPECIAL.search(text, start, end) else str
    parts: list[str] = [ELLIPSIS] if start > 0 else []
    pos = start
    for s, e, _ in marks:
        if s < start or e > end:
            continue
        parts.append(escape(text[pos:s]))
        parts.append(f"<mark>{escape(text[s:e])}</mark>")
        pos = e
    parts.append(escape(text[pos:end]))
    if end < len(text):
        parts.append(ELLIPSIS)
    return "".join(parts)
