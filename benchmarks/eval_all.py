"""Run every `papers eval` over the development collections and write one report.

    python -m benchmarks.eval_all [--shared ../shared/data/eval] [--cache-dir DIR] [--out FILE]
                                  [--only bm25,hybrid,...] [--sets scifact,cisi,...]

Each figure is one `papers eval retrieval DIR --mode M --json` (or `papers eval related`)
run in a subprocess, so what is reported is exactly what the command prints; baselines
(rank-bm25, bm25s, FTS5) are measured in the same run with the same scorer. The report
(JSON, default benchmarks/results/quality/dev.json) feeds the tables of docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEXICAL_SETS = ("scifact", "cisi", "cran", "med", "npl")
CHINESE_SETS = ("zh_en_dev", "zh_en_dev_pure", "zh_topics_dev")
MODES = {
    **{s: ("bm25", "hybrid", "rank-bm25", "bm25s", "fts5") for s in LEXICAL_SETS},
    **{s: ("bm25", "hybrid", "dense", "rank-bm25") for s in CHINESE_SETS},
}


def papers(*args: str) -> dict:
    cmd = [sys.executable, "-m", "service.cli", *args, "--json"]  # the product as a program, not an import
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data" / "eval"))
    ap.add_argument("--cache-dir", default=None, help="corpus embedding cache (keyed by content hash)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality" / "dev.json"))
    ap.add_argument("--only", default="", help="comma-separated modes to run (default: all)")
    ap.add_argument("--sets", default="", help="comma-separated collections (default: all, related included)")
    args = ap.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    sets = [s for s in (args.sets.split(",") if args.sets else [*MODES, "related_hepth_dev"]) if s]
    out_path = Path(args.out)
    report = json.loads(out_path.read_text()) if out_path.exists() else {}
    report.setdefault("retrieval", {})
    for name in sets:
        directory = str(Path(args.shared) / name)
        if name == "related_hepth_dev":
            if only and "related" not in only:
                continue
            flag = "--embeddings" if "related-dense" in only else "--no-embeddings"
            m = papers("eval", "related", directory, flag)
            report.setdefault("related", {})[flag.strip("-")] = m
            print(name, flag, m["related"], m["similar"], flush=True)
            continue
        for mode in MODES.get(name, ()):
            if only and mode not in only:
                continue
            extra = ["--cache-dir", args.cache_dir] if args.cache_dir and mode in ("dense", "hybrid") else []
            t = time.perf_counter()
            m = papers("eval", "retrieval", directory, "--mode", mode, *extra)
            report["retrieval"].setdefault(name, {})[mode] = m
            print(f"{name:15s} {mode:10s} nDCG@10 {m['ndcg@10']:.4f} MRR@10 {m['mrr@10']:.4f} "
                  f"R@100 {m['recall@100']:.4f} ({time.perf_counter() - t:.0f}s)", flush=True)
    report["ran_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
