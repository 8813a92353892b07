"""Keyphrase quality report: our extractor beside the baselines, same scorer, same run.

Prints the table of docs/quality.md (F1@10, F1@5 and ratios) for
Inspec (test split, all docs), SemEval-2017 (all 493 docs; no split exists) and CSL dev
(Chinese), with document frequencies from the collection itself ("input", how the
`papers eval keyphrases` command scores by default) and from the shipped arXiv
statistics ("shipped"); and the long-document check (each text followed by N words of
its most similar other texts of the collection, indexer.evaluation.keyphrases.pad_documents).

    python -m benchmarks.keyphrase_quality [--shared DIR] [--long-words 5000 20000] [--long-docs 200] [--no-short] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from indexer.evaluation.keyphrases import (
    evaluate_extractor,
    jieba_baseline,
    load_keyphrase_docs,
    pad_documents,
    yake_baseline,
)
from indexer.text.keywords import DocFreqs, KeywordExtractor

ROOT = Path(__file__).resolve().parents[1]

SETS = [
    ("inspec", "test"),
    ("inspec", None),
    ("semeval2017", None),
    ("csl-dev", None),
]


def _ours(freqs: DocFreqs):
    ex = KeywordExtractor(freqs)
    return lambda title, text: [k.keyword for k in ex.extract(text, k=10, title=title)]


def _input_dfs(docs: list[dict]) -> DocFreqs:
    return DocFreqs.from_texts(f"{d['title']}\n{d['text']}" for d in docs)


def run(shared: Path, long_words: list[int], long_docs: int, short: bool = True) -> list[dict]:
    rows = []
    for name, split in SETS if short else ():
        docs = load_keyphrase_docs(shared / "eval" / "keyphrase" / name, split)
        zh = name.startswith("csl")
        base_name, base = ("jieba.analyse", jieba_baseline()) if zh else ("yake n=3", yake_baseline())
        t0 = time.time()
        row = {"set": name, "split": split or "all", "docs": len(docs), "baseline": base_name}
        b = evaluate_extractor(docs, base)
        row["base_f1@10"], row["base_f1@5"] = b["f1@10"], b["f1@5"]
        for df in ("input", "shipped"):
            freqs = _input_dfs(docs) if df == "input" else DocFreqs.shipped()
            r = evaluate_extractor(docs, _ours(freqs))
            row[f"ours_{df}_f1@10"], row[f"ours_{df}_f1@5"] = r["f1@10"], r["f1@5"]
            row[f"ours_{df}_p@10"], row[f"ours_{df}_r@10"] = r["precision@10"], r["recall@10"]
            row[f"ratio_{df}"] = round(r["f1@10"] / b["f1@10"], 2) if b["f1@10"] else None
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    for words in long_words:
        for name, split in (("inspec", "test"), ("semeval2017", None)):
            docs = load_keyphrase_docs(shared / "eval" / "keyphrase" / name, split)
            freqs = _input_dfs(docs)
            long = pad_documents(docs, words, limit=long_docs)
            avg = sum(len(d["text"].split()) for d in long) / len(long)
            row = {"set": f"{name} long", "split": split or "all", "docs": len(long), "pad_words": words,
                   "avg_words": round(avg), "baseline": "yake n=3"}
            b = evaluate_extractor(long, yake_baseline())
            r = evaluate_extractor(long, _ours(freqs))
            s = evaluate_extractor(long, _ours(DocFreqs.shipped()))
            row.update({"base_f1@10": b["f1@10"], "ours_input_f1@10": r["f1@10"], "ours_shipped_f1@10": s["f1@10"],
                        "ratio_input": round(r["f1@10"] / b["f1@10"], 2) if b["f1@10"] else None,
                        "ratio_shipped": round(s["f1@10"] / b["f1@10"], 2) if b["f1@10"] else None})
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| set | split | docs | baseline F1@10 | ours F1@10 (df input) | ratio | ours F1@10 (df shipped) | ratio | ours F1@5 (input) | baseline F1@5 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["set"] + (f" +{r['pad_words']} words (avg {r['avg_words']})" if "pad_words" in r else "")
        lines.append(
            f"| {name} | {r['split']} | {r['docs']} | {r['baseline']} {r['base_f1@10']:.3f} | {r['ours_input_f1@10']:.3f} | "
            f"{r['ratio_input']}× | {r['ours_shipped_f1@10']:.3f} | {r['ratio_shipped']}× | "
            f"{r.get('ours_input_f1@5', float('nan')):.3f} | {r.get('base_f1@5', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--long-words", type=int, nargs="*", default=[5000, 20000])
    ap.add_argument("--long-docs", type=int, default=200)
    ap.add_argument("--no-short", action="store_true", help="only the long-document rows")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = run(args.shared, args.long_words, args.long_docs, short=not args.no_short)
    print(json.dumps(rows) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
