"""Learn the Chinese → English term table from our own data (``papers terms learn``).

Why learned, not a dictionary: a researcher types ``知识蒸馏`` or ``图神经网络``; what BM25 over
English papers needs is the English *terminology* ("knowledge distillation", "graph
neural network"), which general dictionaries translate word by word ("knowledge",
"distil(l)ation" as in liquor). ``../shared/data/arxiv/zh_tldr.jsonl.gz`` pairs 73,067
Chinese one-line summaries with the English papers they summarise: a Chinese term and its
English rendering co-occur in the same pairs far more often than chance.

Method (a rerunnable build step, minutes on two cores):
- Chinese units: every span of 1–:data:`MAX_SPAN` adjacent jieba words inside one CJK run
  (jieba cuts ``图神经网络`` into ``图 / 神经网络``), at least two characters, not starting
  or ending with a stop word; kept when in ≥ :data:`MIN_DF` summaries.
- English units: our tokenizer's terms of the title and abstract (stemmed, stop words
  dropped) and adjacent pairs of them (``knowledg distil``); ≥ :data:`MIN_DF` papers.
- Association: the Dice coefficient over pairs, 2·n(c,e) / (n(c) + n(e)), which prefers
  units of similar frequency (a term and its translation) over frequent words that occur
  everywhere. Each Chinese unit keeps its :data:`KEEP` best English units with Dice ≥
  :data:`MIN_DICE` and n(c,e) ≥ :data:`MIN_PAIRS`, except English units whose best Chinese
  unit is a longer term containing it ("multimodal large" belongs to 多模态大语言模型, not
  to 大语言模型).
- The table also records, for each English unit, its most frequent surface form
  ("knowledge distillation"), to show users what their query was translated to.

Output: a gzip'd JSON table (:mod:`indexer.text.zh_en` reads it):
``{"version", "source", "params", "terms": {zh: [[english terms, dice], ...]}, "surface": {terms: text}}``.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from indexer.atomic import replacing
from indexer.errors import InvalidInput
from indexer.text.tokenizer import CHINESE_STOP_WORDS, cut_chinese, default_tokenizer
from indexer.text.zh_en import (  # one definition of a unit for learning and lookup
    _CJK_RUN_RE,
    MAX_SPAN,
)

log = logging.getLogger(__name__)

MIN_DF = 5  # pairs a unit must occur in (either language)
MIN_PAIRS = 3  # pairs a Chinese unit and its translation must share
MIN_DICE = 0.08
KEEP = 6  # translations kept per Chinese unit
TABLE_VERSION = 1
_WORD_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def chinese_units(text: str, max_span: int = MAX_SPAN) -> set[str]:
    """Candidate Chinese terms of a text: spans of adjacent jieba words in each CJK run."""
    out: set[str] = set()
    for run in _CJK_RUN_RE.findall(text):
        words = cut_chinese(run)
        for i in range(len(words)):
            if words[i] in CHINESE_STOP_WORDS:
                continue
            span = ""
            for j in range(i, min(len(words), i + max_span)):
                span += words[j]
                if words[j] in CHINESE_STOP_WORDS:
                    break
                if len(span) >= 2:
                    out.add(span)
    return out


def english_units(terms: list[str]) -> set[str]:
    """Tokenizer terms and adjacent pairs of them (pure-number terms only inside pairs)."""
    out = {t for t in terms if not t.isdigit()}
    out.update(f"{a} {b}" for a, b in zip(terms, terms[1:], strict=False) if a != b)
    return out


def _surface_counts(text: str, counts: dict[str, Counter[str]]) -> None:
    """Count, per stemmed term, the lower-case words that produce it (display forms)."""
    tok = default_tokenizer()
    prev: tuple[str, str] | None = None
    for w in _WORD_RE.findall(text.lower()):
        t = tok.tokenize(w)
        if len(t) != 1:
            prev = None
            continue
        counts.setdefault(t[0], Counter())[w] += 1
        if prev is not None:
            counts.setdefault(f"{prev[0]} {t[0]}", Counter())[f"{prev[1]} {w}"] += 1
        prev = (t[0], w)


def read_pairs(pairs_path: Path, papers_path: Path) -> Iterator[tuple[str, str]]:
    """(Chinese summary, English title + abstract) for every summarised paper."""
    def lines(p: Path) -> Iterable[str]:
        opener: Any = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            yield from f

    zh: dict[str, str] = {}
    for n, line in enumerate(lines(pairs_path), 1):
        try:
            o = json.loads(line)
            zh[str(o["id"])] = str(o["zh"])
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInput(f"{pairs_path}:{n}: expected {{\"id\", \"zh\"}} JSON ({e})") from e
    for n, line in enumerate(lines(papers_path), 1):
        try:
            o = json.loads(line)
        except ValueError as e:
            raise InvalidInput(f"{papers_path}:{n}: not valid JSON ({e})") from e
        z = zh.get(str(o.get("id")))
        if z:
            yield z, f"{o.get('title') or ''}\n{o.get('abstract') or ''}"


def learn_table(pairs: Iterable[tuple[str, str]], *, min_df: int = MIN_DF, keep: int = KEEP,
                min_dice: float = MIN_DICE, min_pairs: int = MIN_PAIRS) -> dict[str, Any]:
    """The term table learned from (Chinese, English) text pairs."""
    from scipy import sparse  # heavy: 0.2 s, for `papers terms learn` only

    t0 = time.perf_counter()
    tok = default_tokenizer()
    zh_docs: list[set[str]] = []
    en_docs: list[set[str]] = []
    surface: dict[str, Counter[str]] = {}
    for zh, en in pairs:
        zh_docs.append(chinese_units(zh))
        en_docs.append(english_units(tok.tokenize(en)))
        _surface_counts(en, surface)
    if not zh_docs:
        raise InvalidInput("no (Chinese, English) pairs to learn from")
    log.info("term table: %d pairs tokenised in %.1fs", len(zh_docs), time.perf_counter() - t0)

    def vocab(docs: list[set[str]]) -> tuple[dict[str, int], np.ndarray]:
        df = Counter(u for d in docs for u in d)
        kept = sorted(u for u, n in df.items() if n >= min_df)
        return {u: i for i, u in enumerate(kept)}, np.array([df[u] for u in kept], dtype=np.float64)

    zv, zdf = vocab(zh_docs)
    ev, edf = vocab(en_docs)

    def matrix(docs: list[set[str]], v: dict[str, int]) -> sparse.csr_matrix:
        rows, cols = [], []
        for i, d in enumerate(docs):
            ids = [v[u] for u in d if u in v]
            rows.extend([i] * len(ids))
            cols.extend(ids)
        data = np.ones(len(rows), dtype=np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(docs), len(v)))

    zt = matrix(zh_docs, zv).T.tocsr()
    em = matrix(en_docs, ev)
    zh_names = list(zv)
    en_names = list(ev)
    # pass 1: each Chinese unit's best candidates, and each English unit's best Chinese unit
    cands: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    best_val = np.zeros(len(en_names))
    best_row = np.full(len(en_names), -1)
    chunk = 500
    for start in range(0, len(zh_names), chunk):
        co = (zt[start:start + chunk] @ em).tocsr()
        for r in range(co.shape[0]):
            lo, hi = co.indptr[r], co.indptr[r + 1]
            if lo == hi:
                continue
            cols = co.indices[lo:hi]
            n = co.data[lo:hi]
            zi = start + r
            dice = 2.0 * n / (zdf[zi] + edf[cols])
            better = dice > best_val[cols]
            best_val[cols[better]] = dice[better]
            best_row[cols[better]] = zi
            ok = (n >= min_pairs) & (dice >= min_dice)
            if ok.any():
                cols, dice = cols[ok], dice[ok]
                top = np.argsort(-dice, kind="stable")[:keep * 4]
                cands[zi] = (cols[top], dice[top])
    # pass 2: an English unit whose best Chinese unit is a longer term containing this one
    # belongs to that term ("multimodal large" to 多模态大语言模型, not to 大语言模型)
    terms: dict[str, list[list[Any]]] = {}
    used: set[int] = set()
    for zi, (cols, dice) in cands.items():
        name = zh_names[zi]
        kept = []
        for c, d in zip(cols, dice, strict=True):
            owner = int(best_row[c])
            if owner != zi and owner >= 0 and name in zh_names[owner] and len(zh_names[owner]) > len(name):
                continue
            kept.append([en_names[c], round(float(d), 4)])
            used.add(int(c))
            if len(kept) >= keep:
                break
        if kept:
            terms[name] = kept
    shown = {en_names[i]: surface[en_names[i]].most_common(1)[0][0] for i in used if en_names[i] in surface}
    log.info("term table: %d Chinese terms, %d English terms in %.1fs", len(terms), len(used), time.perf_counter() - t0)
    return {"version": TABLE_VERSION, "pairs": len(zh_docs),
            "params": {"max_span": MAX_SPAN, "min_df": min_df, "min_pairs": min_pairs, "min_dice": min_dice, "keep": keep},
            "terms": terms, "surface": shown}


def write_table(table: dict[str, Any], path: Path) -> None:
    """Write atomically (temp file in the same directory, then rename)."""
    with replacing(path, durable=False) as tmp, gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump(table, f, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
