"""Highlighted snippets: HTML-escaped text with ``<mark>`` around the query's words.

Why here and not tantivy's SnippetGenerator: the index stores *our* terms (stemmed, jieba
words), not the original text, so matching must go through the same tokenizer. A word is
marked when any of its tokenizer terms is a query term: ``networks`` matches ``network``
(same stem), ``目标检测`` is marked piece by piece (jieba words of the CJK run), ``U-Net`` matches
``unet``. Everything outside the marks is escaped, so a title with ``<script>`` is inert.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection

from indexer.tokenizer import cut_chinese, default_tokenizer, has_cjk

ELLIPSIS = "…"
# word-ish runs: letters/digits (any script) joined by hyphens or apostrophes
_RUN_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_CJK_SPLIT_RE = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+)")


_WORD_TERMS: dict[str, tuple[str, ...]] = {}


def _word_terms(word: str) -> tuple[str, ...]:
    """Tokenizer terms of one Latin word, cached (snippets run for every hit shown)."""
    got = _WORD_TERMS.get(word)
    if got is None:
        if len(_WORD_TERMS) > 200_000:
            _WORD_TERMS.clear()
        got = _WORD_TERMS[word] = tuple(default_tokenizer().tokenize(word))
    return got


def _matches(text: str, terms: set[str] | frozenset[str]) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, matched terms) of every word in ``text`` that carries a query term."""
    tok = default_tokenizer()
    out: list[tuple[int, int, frozenset[str]]] = []
    if not has_cjk(text):  # the common case, kept tight: it runs for every hit shown
        cache = _WORD_TERMS
        for m in _RUN_RE.finditer(text):
            word = m.group()
            wt = cache.get(word)
            if wt is None:
                wt = _word_terms(word)
            if wt and not terms.isdisjoint(wt):
                out.append((m.start(), m.end(), frozenset(t for t in wt if t in terms)))
        return out
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


def _best_window(text: str, marks: list[tuple[int, int, frozenset[str]]], max_chars: int) -> tuple[int, int]:
    """The ``max_chars`` window with the most distinct query terms (then most marks)."""
    n = len(text)
    if not marks:
        start = 0
    else:
        best, start = (-1, -1), 0
        j = 0
        for i, (s, _, _) in enumerate(marks):
            j = max(j, i)
            while j + 1 < len(marks) and marks[j + 1][1] <= s + max_chars:
                j += 1
            window = marks[i : j + 1]
            score = (len(frozenset().union(*(w[2] for w in window))), len(window))
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


def highlight(text: str, terms: Collection[str], max_chars: int = 300) -> str:
    """``text`` HTML-escaped with ``<mark>`` around words carrying any of ``terms``.

    ``max_chars`` > 0 cuts long text to its densest window, with ``…`` where cut;
    ``max_chars=0`` keeps the whole text (titles)."""
    text = text or ""
    terms = terms if isinstance(terms, (set, frozenset)) else set(terms)
    marks = _matches(text, terms) if terms else []
    start, end = 0, len(text)
    if max_chars and len(text) > max_chars:
        start, end = _best_window(text, marks, max_chars)
    parts: list[str] = [ELLIPSIS] if start > 0 else []
    pos = start
    for s, e, _ in marks:
        if s < start or e > end:
            continue
        parts.append(html.escape(text[pos:s]))
        parts.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    parts.append(html.escape(text[pos:end]))
    if end < len(text):
        parts.append(ELLIPSIS)
    return "".join(parts)
