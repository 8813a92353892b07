"""Build indexer/data/acronyms.tsv: acronyms the arXiv corpus defines one way.

Why: a reader's interest profile must count "GNN" from one paper and "graph neural
networks" from another as one interest, and a paper that uses only the acronym does not
say what it stands for. Over the 100,000 titles+abstracts of
../shared/data/arxiv/papers.jsonl.gz, every in-text definition ("graph neural networks
(GNNs)", indexer.text.acronyms.definitions) is counted once per paper; an acronym is kept
when at least ``--min-papers`` papers define it and at least ``--min-share`` of them give
the same long form (compared by tokenizer terms, so singular and plural agree). The long
form written is the most common lower-case spelling of that expansion.

    python -m benchmarks.make_acronyms [--shared DIR] [--min-papers 5] [--min-share 0.6]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from indexer.text.acronyms import ACRONYMS_FILE, definitions
from indexer.text.tokenizer import default_tokenizer

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "indexer" / "data" / ACRONYMS_FILE


def count(shared: Path, limit: int | None) -> tuple[dict[str, Counter], dict[str, Counter]]:
    """acronym → Counter(expansion key), expansion key → Counter(lower-case spelling)."""
    tok = default_tokenizer()
    by_acronym: dict[str, Counter] = defaultdict(Counter)
    spellings: dict[str, Counter] = defaultdict(Counter)
    with gzip.open(shared / "arxiv" / "papers.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            rec = json.loads(line)
            seen = set()
            for acronym, long_form in definitions(f"{rec['title']}. {rec['abstract']}"):
                key = " ".join(tok.tokenize(long_form))
                if key and (acronym, key) not in seen:
                    seen.add((acronym, key))
                    by_acronym[acronym][key] += 1
                    spellings[key][long_form.lower()] += 1
    return by_acronym, spellings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--min-papers", type=int, default=5)
    ap.add_argument("--min-share", type=float, default=0.6)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    by_acronym, spellings = count(args.shared, args.limit)
    rows = []
    for acronym, expansions in sorted(by_acronym.items()):
        total = sum(expansions.values())
        key, n = expansions.most_common(1)[0]
        if total >= args.min_papers and n / total >= args.min_share:
            rows.append(f"{acronym}\t{spellings[key].most_common(1)[0][0]}")
    header = (
        f"# acronym<TAB>long form: acronyms that at least {args.min_papers} papers of the shared arXiv corpus (100k\n"
        f"# titles+abstracts) define, {round(args.min_share * 100)}% or more of them the same way. "
        "Built by benchmarks/make_acronyms.py.\n"
    )
    OUT.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(rows)} acronyms of {len(by_acronym)} defined)", file=sys.stderr)


if __name__ == "__main__":
    main()
