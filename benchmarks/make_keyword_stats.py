"""Build indexer/data/keyword-stats.json.gz: document frequencies for keyword extraction.

Why: when the index is empty (a fresh install, `papers keywords` on a laptop) the keyword
extractor still needs to know which terms and phrases are common in scientific writing.
These statistics come from the real shared corpus:

- English: title + abstract of the 100,000 papers of ../shared/data/arxiv/papers.jsonl.gz;
  every tokenizer term and every candidate sub-phrase (indexer.text.phrases.document_keys),
  counted once per paper.
- Chinese: the 73,567 Chinese one-line summaries of ../shared/data/arxiv/zh_tldr.jsonl.gz;
  only keys with CJK characters are kept from them, counted over their own corpus size
  (``zh_num_docs``; DocFreqs rescales them).

First, indexer/data/keyword-verbs.txt: verb-like words of scientific English, learned from
the same corpus (no POS tagger is installed): words with at least 20 occurrences that are
usually followed by a determiner/pronoun ("improves the", "ensure that it") or preceded by
"we"/"to"/a modal ("we propose", "to mitigate"), and almost never by an article (nouns
are: "the support"); "-ing" words that mostly follow a content word are nouns ("quantum
computing") and kept. A few nouns that pass anyway are listed in NOUN_EXCEPTIONS. The
chunker of indexer.text.phrases ends noun phrases at these words, so the phrase counts below
are made with the new list.

Keys rarer than ``min_df`` are dropped (DocFreqs treats an unseen key as rarer than that);
the thresholds are raised until the gzip file fits the size budget.

    python -m benchmarks.make_keyword_stats [--shared DIR] [--max-mb 3.0] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from indexer.manifest import atomic_write_bytes
from indexer.text import phrases
from indexer.text.phrases import document_keys
from indexer.text.tokenizer import has_cjk

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "indexer" / "data" / "keyword-stats.json.gz"
VERBS_OUT = ROOT / "indexer" / "data" / phrases.VERBS_FILE

_LOWER_TOKEN = re.compile(r"[a-z](?:[a-z\-']*[a-z])?|[^\sa-z]+")
_AFTER = frozenset("the a an our their its this these those both each whether how such them it us".split())
_BEFORE = frozenset(
    "we they it also can may will to not which that could would should then further first thus is are".split()
)
_ARTICLES = frozenset("the a an".split())
NOUN_EXCEPTIONS = frozenset(
    "support release match cover forces share update half date plus measures fit trace probe drive".split()
)


def learn_verbs(shared: Path, limit: int | None) -> list[str]:
    """Verb-like words of the English corpus (see the module docstring for the rule)."""
    total: Counter[str] = Counter()
    det_after: Counter[str] = Counter()
    subj_before: Counter[str] = Counter()
    art_before: Counter[str] = Counter()
    content_before: Counter[str] = Counter()
    for rec in _read_jsonl_gz(shared / "arxiv" / "papers.jsonl.gz", limit):
        toks = _LOWER_TOKEN.findall(f"{rec['title']}. {rec['abstract']}".lower())
        for i, t in enumerate(toks):
            total[t] += 1
            if i + 1 < len(toks) and toks[i + 1] in _AFTER:
                det_after[t] += 1
            if i:
                prev = toks[i - 1]
                if prev in _BEFORE:
                    subj_before[t] += 1
                if prev in _ARTICLES:
                    art_before[t] += 1
                if prev[0].isalpha() and prev not in phrases._BREAK_WORDS:
                    content_before[t] += 1
    verbs = []
    for w, n in total.items():
        if n < 20 or not w.isalpha() or w in phrases._BREAK_WORDS or w in NOUN_EXCEPTIONS:
            continue
        verb_like = det_after[w] / n >= 0.2 or subj_before[w] / n >= 0.4
        noun_like = art_before[w] / n >= 0.05 or (w.endswith("ing") and content_before[w] / n >= 0.3)
        if verb_like and not noun_like:
            verbs.append(w)
    return sorted(verbs)


def _read_jsonl_gz(path: Path, limit: int | None):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                return
            yield json.loads(line)


def count(shared: Path, limit: int | None) -> tuple[int, Counter, int, Counter]:
    n_en, en = count_en(shared, limit)
    n_zh, zh = count_zh(shared, limit)
    return n_en, en, n_zh, zh


def count_en(shared: Path, limit: int | None) -> tuple[int, Counter]:
    en: Counter[str] = Counter()
    n_en = 0
    t0 = time.time()
    for rec in _read_jsonl_gz(shared / "arxiv" / "papers.jsonl.gz", limit):
        en.update(document_keys(f"{rec['title']}\n{rec['abstract']}"))
        n_en += 1
        if n_en % 10000 == 0:
            print(f"en {n_en} docs, {len(en)} keys, {time.time() - t0:.0f}s", file=sys.stderr)
    return n_en, en


def count_zh(shared: Path, limit: int | None) -> tuple[int, Counter]:
    t0 = time.time()
    zh: Counter[str] = Counter()
    n_zh = 0
    for rec in _read_jsonl_gz(shared / "arxiv" / "zh_tldr.jsonl.gz", limit):
        zh.update(k for k in document_keys(rec["zh"]) if has_cjk(k))
        n_zh += 1
        if n_zh % 10000 == 0:
            print(f"zh {n_zh} docs, {len(zh)} keys, {time.time() - t0:.0f}s", file=sys.stderr)
    return n_zh, zh


def recount_chinese(stats: dict, n_zh: int, zh: Counter) -> dict:
    """``stats`` with its Chinese keys replaced by a new count (``--zh-only``: after a
    change to the Chinese candidates only, the 100k-paper English count stays as it is)."""
    min_terms, min_phrases = int(stats["min_df"]), int(stats["min_df_phrases"])
    terms = {k: v for k, v in stats["terms"].items() if not has_cjk(k)}
    phrases = {k: v for k, v in stats["phrases"].items() if not has_cjk(k)}
    for k, v in zh.items():
        if v >= (min_terms if " " not in k else min_phrases):
            (phrases if " " in k else terms)[k] = v
    return {**stats, "zh_num_docs": n_zh, "terms": terms, "phrases": phrases}


def _encode(stats: dict) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(json.dumps(stats, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode())
    return buf.getvalue()


def build(n_en: int, en: Counter, n_zh: int, zh: Counter, max_bytes: int) -> tuple[dict, bytes]:
    min_df_terms, min_df_phrases = 2, 3
    while True:
        terms = {k: v for k, v in en.items() if " " not in k and v >= min_df_terms}
        phrases = {k: v for k, v in en.items() if " " in k and v >= min_df_phrases}
        for k, v in zh.items():
            if v >= (min_df_terms if " " not in k else min_df_phrases):
                (phrases if " " in k else terms)[k] = v
        stats = {
            "num_docs": n_en,
            "zh_num_docs": n_zh,
            "min_df": min_df_terms,
            "min_df_phrases": min_df_phrases,
            "terms": terms,
            "phrases": phrases,
            "source": "shared/data/arxiv papers.jsonl.gz (title+abstract) and zh_tldr.jsonl.gz",
        }
        blob = _encode(stats)
        print(
            f"min_df terms={min_df_terms} phrases={min_df_phrases}: {len(terms)} terms, "
            f"{len(phrases)} phrases, {len(blob) / 1e6:.2f} MB",
            file=sys.stderr,
        )
        if len(blob) <= max_bytes:
            return stats, blob
        min_df_phrases += 1 if min_df_phrases < 6 else 2
        if min_df_phrases > 3 * min_df_terms:
            min_df_terms += 1


def _write_atomic(out: Path, blob: bytes) -> None:
    """The package's one atomic write, then the mode a shipped data file has (mkstemp's is 0600)."""
    atomic_write_bytes(out, blob)
    os.chmod(out, 0o644)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--max-mb", type=float, default=3.0)
    ap.add_argument("--limit", type=int, default=None, help="read only the first N records (smoke test)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--verbs-out", type=Path, default=VERBS_OUT)
    ap.add_argument("--zh-only", action="store_true",
                    help="recount only the Chinese keys of the existing --out file (keeps its English counts and verbs)")
    args = ap.parse_args()
    if args.zh_only:
        with gzip.open(args.out, "rt", encoding="utf-8") as fh:
            old = json.load(fh)
        n_zh, zh = count_zh(args.shared, args.limit)
        blob = _encode(recount_chinese(old, n_zh, zh))
        _write_atomic(args.out, blob)
        print(f"wrote {args.out} ({len(blob) / 1e6:.2f} MB; Chinese keys of {n_zh} zh docs recounted)", file=sys.stderr)
        return
    verbs = learn_verbs(args.shared, args.limit)
    args.verbs_out.write_text("\n".join(verbs) + "\n", encoding="utf-8")
    phrases.use_verbs(verbs)
    print(f"wrote {args.verbs_out} ({len(verbs)} verb-like words)", file=sys.stderr)
    n_en, en, n_zh, zh = count(args.shared, args.limit)
    _, blob = build(n_en, en, n_zh, zh, int(args.max_mb * 1e6))
    _write_atomic(args.out, blob)
    print(f"wrote {args.out} ({len(blob) / 1e6:.2f} MB; {n_en} en docs, {n_zh} zh docs)", file=sys.stderr)


if __name__ == "__main__":
    main()
