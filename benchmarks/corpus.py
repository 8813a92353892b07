"""Benchmark corpora: the bundled 8k sample, the 100k real papers, and a reproducible 1M.

Why a synthetic 1M: only 100k real records are available offline, but the targets are set
at 1M. The 1M corpus keeps every real paper and adds 9 *variants* of each (900,000), made
by deterministic recombination so that vocabulary, sentence shape, category mix and
posting-list lengths stay those of real arXiv text:

* id: ``9BBB.NNNNN`` with ``i = 9 * real_index + variant`` → ``BBB = i // 100000``,
  ``NNNNN = i % 100000``. Real ids never start with 9 (YYMM, 2007..2026), so the
  range is unused and every id is unique and valid for ``normalize_arxiv_id``.
* abstract: the paper's own first sentence, then its other sentences, in order, interleaved with sentences of another
  paper of the same primary category (any paper when it is alone in its category; cut to the original's sentence count + 1; at
  least one donor sentence, so no variant repeats its source).
* title: the first half of the paper's title words + the second half of another
  same-category paper's title.
* authors: a shuffle of the paper's authors plus one author of the donor.
* categories: the paper's own; published: the paper's date minus 0..3650 days.
* randomness: ``random.Random(f"{SEED}:{id}:{variant}")`` — same input, same corpus.

The generator streams; memory is the 100k source held once (~0.6 GB of Python objects).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "indexer" / "data" / "sample-papers.jsonl.gz"
SHARED_PAPERS = ROOT.parent / "shared" / "data" / "arxiv" / "papers.jsonl.gz"
SEED = 20261124
VARIANTS_PER_PAPER = 9
CORPORA = ("sample", "10k", "100k", "1m")

_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z$\\(])")


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line))
            if limit is not None and len(out) >= limit:
                break
    return out


def source_path(name: str) -> Path:
    if name == "sample":
        return SAMPLE
    if not SHARED_PAPERS.exists():
        raise FileNotFoundError(f"the {name} corpus needs {SHARED_PAPERS} (../shared/data next to the repo)")
    return SHARED_PAPERS


def synthetic_id(i: int) -> str:
    return f"9{i // 100000:03d}.{i % 100000:05d}"


def _sentences(text: str) -> list[str]:
    return [s for s in _SENT_RE.split(text) if s]


def pick_donor(rng: random.Random, pool: list[int], j: int, n: int) -> int:
    """The paper that lends sentences, title words and an author to a variant of paper ``j``:
    another paper of its primary category (``pool``), drawn with the variant's ``rng``; the
    only paper of its category borrows from any other of the ``n``. The dense bench rebuilds
    the variants' vectors with the same draw (bench_dense._donor)."""
    if len(pool) > 1:
        d = pool[rng.randrange(len(pool))]
        if d == j:
            d = pool[(pool.index(j) + 1) % len(pool)]
        return d
    return (j + 1 + rng.randrange(n - 1)) % n


def variants(papers: list[dict], per_paper: int = VARIANTS_PER_PAPER) -> Iterator[dict]:
    """Yield ``per_paper`` recombined variants of every paper, in a fixed order."""
    by_cat: dict[str, list[int]] = defaultdict(list)
    for j, p in enumerate(papers):
        by_cat[(p.get("categories") or [""])[0]].append(j)
    sentence_cache: dict[int, list[str]] = {}

    def sents(j: int) -> list[str]:
        s = sentence_cache.get(j)
        if s is None:
            s = _sentences(papers[j]["abstract"])
            if len(sentence_cache) > 200_000:
                sentence_cache.clear()
            sentence_cache[j] = s
        return s

    for j, p in enumerate(papers):
        pool = by_cat[(p.get("categories") or [""])[0]]
        own = sents(j)
        words = p["title"].split()
        for v in range(per_paper):
            rng = random.Random(f"{SEED}:{p['id']}:{v}")
            d = pick_donor(rng, pool, j, len(papers))
            donor = papers[d]
            other = sents(d)
            mixed: list[str] = []
            for k in range(max(len(own), len(other))):
                if k < len(own) and (k == 0 or k % 2 == v % 2 or k >= len(other)):
                    mixed.append(own[k])
                elif k < len(other):
                    mixed.append(other[k])
            mixed = mixed[: len(own) + 1]
            if other and not any(s in other for s in mixed):  # very short abstracts: always mix
                mixed.insert(min(1, len(mixed)), other[v % len(other)])
            dw = donor["title"].split()
            title = " ".join(words[: max(1, len(words) // 2)] + dw[len(dw) // 2 :])
            authors = list(p.get("authors") or [])
            rng.shuffle(authors)
            if donor.get("authors"):
                authors.append(donor["authors"][rng.randrange(len(donor["authors"]))])
            pub = date.fromisoformat(p["published"]) - timedelta(days=rng.randrange(3651))
            yield {
                "id": synthetic_id(j * per_paper + v),
                "title": title,
                "abstract": " ".join(mixed),
                "authors": authors,
                "categories": list(p.get("categories") or []),
                "published": pub.isoformat(),
                "updated": None,
            }


def iter_corpus(name: str) -> Iterator[dict]:
    """Records of corpus ``name`` (sample | 10k | 100k | 1m) in a fixed order."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    if name == "sample":
        yield from read_jsonl(SAMPLE)
        return
    if name == "10k":
        yield from read_jsonl(source_path(name), limit=10_000)
        return
    papers = read_jsonl(source_path(name))
    yield from papers
    if name == "1m":
        yield from variants(papers)


def materialize(name: str, work: Path) -> Path:
    """Write corpus ``name`` as JSONL.gz under ``work`` once (cached) and return its path."""
    if name == "sample":
        return SAMPLE
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"corpus-{name}.jsonl.gz"
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        for rec in iter_corpus(name):
            fh.write(json.dumps(rec, ensure_ascii=False))
            fh.write("\n")
    tmp.replace(out)
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", choices=CORPORA)
    ap.add_argument("--work", type=Path, default=Path("data/bench"))
    args = ap.parse_args()
    print(materialize(args.corpus, args.work))


if __name__ == "__main__":
    main()
