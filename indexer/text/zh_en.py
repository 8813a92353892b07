"""LLM-free Chinese → English query translation for BM25 over English papers.

Why: the multilingual encoder alone finds on-topic papers for a long Chinese question, but
not for the short topic queries researchers type (``图神经网络``: nDCG@10 0.105 on
zh_topics_dev), while BM25 over the English term would reach 0.655. So each Chinese part
of a query becomes weighted English terms for the lexical run, which hybrid search fuses
with the encoder's run (:func:`indexer.search.fusion.hybrid`).

The table (``indexer/data/zh-en-terms.json.gz``) is learned from our own data by
:mod:`indexer.text.zh_en_learn` (``papers terms learn``): Chinese units (spans of jieba words) →
English tokenizer terms and term pairs, with their Dice association. Lookup: each CJK run
of the query is cut by jieba and matched greedily, longest span first; every matched unit
contributes its translations weighted by Dice relative to its best one. The alternatives
of one unit are searched as *one* clause scoring its best-matching alternative
(:meth:`indexer.lexical.bm25.BM25Index.build_query` ``alternatives``, a disjunction-max, as
structured query translation does), so a concept with four renderings does not outweigh
one with a single rendering (``大语言模型的数学推理``: "mathematical reasoning" must not drown
under "large language", "language model", "LLMs", "MLLMs"). A term pair
("knowledg distil") is searched as a phrase. Latin words of a mixed query
(``Transformer 目标检测``) are searched as they are, beside the translation.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.text.tokenizer import CHINESE_STOP_WORDS, cut_chinese

log = logging.getLogger(__name__)

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "zh-en-terms.json.gz"
MAX_SPAN = 4  # jieba words per Chinese unit, for learning (indexer.text.zh_en_learn) and lookup alike
PER_UNIT = 4  # translations used per matched Chinese unit
MIN_RELATIVE = 0.35  # a translation's Dice relative to the unit's best, below which it is dropped
_CJK_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


@dataclass
class Translation:
    """English terms for the Chinese parts of a query."""

    weights: dict[str, float] = field(default_factory=dict)  # tokenizer term or "a b" pair → weight
    units: list[dict[str, float]] = field(default_factory=list)  # per Chinese unit: its alternatives
    matched: list[tuple[str, list[str]]] = field(default_factory=list)  # (Chinese unit, shown English)
    coverage: float = 0.0  # share of the query's CJK characters inside matched units

    def __bool__(self) -> bool:
        return bool(self.weights)

    @property
    def shown(self) -> str:
        """``知识蒸馏 → knowledge distillation; 元学习 → meta learning`` (for the page and API)."""
        return "; ".join(f"{zh} → {', '.join(en[:2])}" for zh, en in self.matched if en)


class TermTable:
    """The learned table, loaded once per process."""

    def __init__(self, terms: dict[str, list[list[Any]]], surface: dict[str, str]):
        self.terms = terms
        self.surface = surface

    @classmethod
    def load(cls, path: Path = TABLE_PATH) -> TermTable:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = json.load(f)
            return cls(data.get("terms") or {}, data.get("surface") or {})
        except (OSError, ValueError) as e:
            log.warning("Chinese-English term table %s unreadable (%s): Chinese queries use the encoder only", path, e)
            return cls({}, {})

    def translate(self, text: str) -> Translation:
        out = Translation()
        total = covered = 0
        for run in _CJK_RUN_RE.findall(text):
            total += len(run)
            words = cut_chinese(run)
            i = 0
            while i < len(words):
                if words[i] in CHINESE_STOP_WORDS:
                    i += 1
                    continue
                found = None
                for j in range(min(len(words), i + MAX_SPAN), i, -1):
                    unit = "".join(words[i:j])
                    if unit in self.terms and len(unit) >= 2:
                        found = (unit, j)
                        break
                if found is None:
                    i += 1
                    continue
                unit, i = found
                covered += len(unit)
                cands = self.terms[unit][:PER_UNIT]
                best = float(cands[0][1]) if cands else 0.0
                kept = {en: float(dice) / best for en, dice in cands if best > 0 and float(dice) / best >= MIN_RELATIVE}
                shown = []
                for en, rel in kept.items():
                    out.weights[en] = max(out.weights.get(en, 0.0), rel)
                    shown.append(self.surface.get(en, en))
                if kept:
                    out.units.append(kept)
                out.matched.append((unit, shown))
        out.coverage = covered / total if total else 0.0
        return out


_table: TermTable | None = None
_lock = threading.Lock()


def term_table() -> TermTable:
    global _table
    if _table is None:
        with _lock:
            if _table is None:
                _table = TermTable.load()
    return _table


def translate(text: str) -> Translation:
    """English terms for the Chinese parts of ``text`` (empty when it has none)."""
    if not _CJK_RUN_RE.search(text or ""):
        return Translation()
    return term_table().translate(text)
