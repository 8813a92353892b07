"""Keyphrase-extraction quality: the usual exact-match P/R/F1 at k.

Why this rule: it is the one keyphrase papers report (Hulth 2003, SemEval 2010/2017, the
YAKE and pke benchmarks), so our figures sit beside published ones and beside baselines
measured by the same code in the same run.

- English (and any Latin-script phrase): lower-cased, split into alphanumeric words,
  each word Snowball-stemmed (PyStemmer), words joined by one space. So
  "Neural Networks" == "neural network" and "anti-spam act" == "anti spam act".
- A phrase containing CJK characters: exact match after lower-casing and removing
  whitespace (no segmentation is applied to gold, so none is applied to predictions).
- Predictions are de-duplicated after normalisation and cut at k; precision divides by k
  (a system cannot gain by returning fewer phrases); gold keeps absent keyphrases, so
  they count against recall. Scores are averaged over documents (macro); documents
  without gold keyphrases are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import Stemmer

from indexer.errors import InvalidInput
from indexer.jsonlines import json_objects
from indexer.text.keywords import DocFreqs, KeywordExtractor
from indexer.text.tokenizer import analyse_extract_tags, default_tokenizer, has_cjk

_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
_stemmer = Stemmer.Stemmer("english")


def normalize_keyphrase(phrase: str) -> str:
    """The match key of a phrase (see module docstring)."""
    p = phrase.casefold().strip()
    if has_cjk(p):
        return _SPACE.sub("", p)
    return " ".join(_stemmer.stemWords(_WORD.findall(p)))


@dataclass(frozen=True)
class DocScore:
    precision: float
    recall: float
    f1: float


def score_document(predicted: Sequence[str], gold: Iterable[str], k: int) -> DocScore:
    """Exact-match precision/recall/F1 of the top ``k`` distinct predictions."""
    gold_keys = {g for g in (normalize_keyphrase(x) for x in gold) if g}
    top: list[str] = []
    for p in predicted:
        key = normalize_keyphrase(p)
        if key and key not in top:
            top.append(key)
            if len(top) == k:
                break
    if not gold_keys or k <= 0:
        return DocScore(0.0, 0.0, 0.0)
    hits = sum(1 for key in top if key in gold_keys)
    precision = hits / k
    recall = hits / len(gold_keys)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return DocScore(precision, recall, f1)


def evaluate(docs: Sequence[dict], predictions: Sequence[Sequence[str]], ks: Sequence[int] = (5, 10)) -> dict:
    """Macro-averaged figures: ``f1@k``, ``precision@k``, ``recall@k`` for each k, and ``docs``."""
    sums: dict[str, float] = {}
    n = 0
    for doc, pred in zip(docs, predictions, strict=True):
        gold = doc.get("keyphrases") or []
        if not any(normalize_keyphrase(g) for g in gold):
            continue
        n += 1
        for k in ks:
            s = score_document(pred, gold, k)
            for name, value in (("precision", s.precision), ("recall", s.recall), ("f1", s.f1)):
                sums[f"{name}@{k}"] = sums.get(f"{name}@{k}", 0.0) + value
    out: dict = {key: round(v / n, 4) if n else 0.0 for key, v in sorted(sums.items())}
    for k in ks:
        for name in ("precision", "recall", "f1"):
            out.setdefault(f"{name}@{k}", 0.0)
    out["docs"] = n
    return out


def load_keyphrase_docs(directory: str | Path, split: str | None = None) -> list[dict]:
    """Read ``DIR/docs.jsonl`` (keys ``id``, ``title``, ``text``, ``keyphrases``, ``lang``).

    Raises :class:`InvalidInput` naming the file and line for anything malformed.
    """
    path = Path(directory)
    if path.is_dir():
        path = path / "docs.jsonl"
    if not path.is_file():
        raise InvalidInput(f"no keyphrase collection at {directory} (expected DIR/docs.jsonl)")
    docs: list[dict] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, doc in json_objects(fh, str(path)):
            kps = doc.get("keyphrases")
            if not isinstance(kps, list) or not all(isinstance(x, str) for x in kps):
                raise InvalidInput(f"{path}:{lineno}: 'keyphrases' must be a list of strings")
            for field in ("title", "text"):
                if not isinstance(doc.get(field, ""), str):
                    raise InvalidInput(f"{path}:{lineno}: '{field}' must be a string")
            if split is None or doc.get("split") == split:
                docs.append(doc)
    if split is not None and not docs:
        raise InvalidInput(f"{path}: no documents with split '{split}'")
    return docs


def pad_documents(docs: Sequence[dict], words: int, limit: int | None = None) -> list[dict]:
    """Long-document variant of a collection: each document's text is followed by the
    texts of the other documents of the collection most similar to it (Jaccard overlap of
    tokenizer terms; gold keyphrases are not looked at) until ``words`` extra words.

    Why: no full papers with gold keyphrases are available, so this is how we check that
    a document's own keyphrases (its title and abstract, at the start like in a paper)
    still win when they compete with tens of thousands of words of related text.
    ``limit`` pads only the first ``limit`` documents (the whole collection is the pool)."""
    tok = default_tokenizer()
    term_sets = [set(tok.tokenize(f"{d.get('title') or ''} {d.get('text') or ''}")) for d in docs]
    sizes = [len((d.get("text") or "").split()) for d in docs]
    out = []
    for i, doc in enumerate(docs[:limit] if limit is not None else docs):
        mine = term_sets[i]
        sims = sorted(
            ((len(mine & other) / (len(mine | other) or 1), j) for j, other in enumerate(term_sets) if j != i),
            reverse=True,
        )
        parts = [doc.get("text") or ""]
        added = 0
        for _, j in sims:
            if added >= words:
                break
            parts.append(docs[j].get("text") or "")
            added += sizes[j]
        out.append({**doc, "text": "\n".join(parts)})
    return out


def doc_text(doc: dict) -> tuple[str, str]:
    """(title, body) as extractors should read them."""
    return doc.get("title") or "", doc.get("text") or ""


Extract = Callable[[str, str], list[str]]


def evaluate_extractor(docs: Sequence[dict], extract: Extract, ks: Sequence[int] = (5, 10)) -> dict:
    """Run ``extract(title, text) -> [phrase, ...]`` over ``docs`` and score it."""
    preds = [extract(*doc_text(d)) for d in docs]
    return evaluate(docs, preds, ks)


def evaluate_collection(
    directory: str | Path, df: str = "input", k: int = 10, split: str | None = None, pad_words: int = 0
) -> dict:
    """What ``papers eval keyphrases DIR`` prints: our extractor with document frequencies
    from the collection itself (``df="input"``, the default) or the shipped arXiv
    statistics (``df="shipped"``); ``pad_words`` > 0 scores the long-document variant
    (:func:`pad_documents`), with frequencies from the original collection."""
    docs = load_keyphrase_docs(directory, split)
    if df == "input":
        freqs = DocFreqs.from_texts(d["title"] + "\n" + d["text"] for d in docs)
    elif df == "shipped":
        freqs = DocFreqs.shipped()
    else:
        raise InvalidInput(f"unknown --df '{df}' (expected input or shipped)")
    extractor = KeywordExtractor(freqs)
    if pad_words > 0:
        docs = pad_documents(docs, pad_words)

    def ours(title: str, text: str) -> list[str]:
        return [kw.keyword for kw in extractor.extract(text, k=k, title=title)]

    return evaluate_extractor(docs, ours, ks=(5, 10))


# -- baselines (measured in the same run with the same scorer) ---------------------------


def yake_baseline(n: int = 3, top: int = 10) -> Extract:
    """The ``yake`` package (dev dependency) with n-grams up to ``n``, language by text."""
    import yake  # heavy: 0.23 s, a dev dependency only the baseline needs

    en = yake.KeywordExtractor(lan="en", n=n, top=top)
    zh = yake.KeywordExtractor(lan="zh", n=n, top=top)

    def run(title: str, text: str) -> list[str]:
        full = f"{title}\n{text}" if title else text
        ex = zh if has_cjk(full) else en
        return [kw for kw, _ in ex.extract_keywords(full)]

    return run


def jieba_baseline(top: int = 10) -> Extract:
    """``jieba.analyse.extract_tags`` (TF-IDF over jieba words), via indexer.text.tokenizer."""
    def run(title: str, text: str) -> list[str]:
        return analyse_extract_tags(f"{title}\n{text}" if title else text, top)

    return run
