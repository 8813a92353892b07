"""Benchmark queries drawn from the corpus itself, so every size gets realistic terms.

Four shapes, as users send them: 1 word, 3 words (a typical search), 10 words (a pasted
phrase), 60 tokens (an abstract pasted into "similar"). Words are lower-cased alphabetic
words of 4+ letters that are not stop words, so the query parser sees plain free text
(no ``OR``, quotes, fields or ``-`` exclusions).
"""

from __future__ import annotations

import random
import re

from indexer.text.tokenizer import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[A-Za-z][a-z]{3,}")
_ANY_WORD = re.compile(r"[A-Za-z][A-Za-z]+")
SHAPES = ("1w", "3w", "10w", "60t")


def _content_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in ENGLISH_STOP_WORDS]


def make_queries(records: list[dict], per_shape: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    out: dict[str, list[str]] = {s: [] for s in SHAPES}
    order = list(range(len(records)))
    rng.shuffle(order)
    for j in order:
        if all(len(v) >= per_shape for v in out.values()):
            break
        r = records[j]
        title, abstract = _content_words(r["title"]), _content_words(r["abstract"])
        if len(out["1w"]) < per_shape and title:
            out["1w"].append(rng.choice(title))
        if len(out["3w"]) < per_shape and len(title) >= 3:
            k = rng.randrange(len(title) - 2)
            out["3w"].append(" ".join(title[k : k + 3]))
        if len(out["10w"]) < per_shape and len(abstract) >= 10:
            k = rng.randrange(len(abstract) - 9)
            out["10w"].append(" ".join(abstract[k : k + 10]))
        words = [w.lower() for w in _ANY_WORD.findall(r["abstract"]) if w != "OR"]
        if len(out["60t"]) < per_shape and len(words) >= 60:
            out["60t"].append(" ".join(words[:60]))
    return out
