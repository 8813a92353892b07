"""Ingest throughput and memory: JSONL and Kaggle import into SQLite (issue #3 targets:
>= 20,000 papers/s, peak RSS < 500 MB whatever the file size).

Each measurement runs in a fresh interpreter (peak RSS is a per-process high-water
mark) on a fresh data directory:

* ``jsonl``        ``ingest_jsonl`` of the corpus (default: the shared 100k papers.jsonl.gz)
* ``jsonl_again``  the same file again (idempotent pass: everything unchanged)
* ``kaggle``       ``ingest_kaggle`` of the same papers rendered as Kaggle snapshot lines
* ``jsonl_small``  a 10% slice, to show memory does not grow with the file
* ``jsonl_x<N>``   with ``--scale N``: the corpus N times over (unique ids), same memory
* ``baseline``     the cheapest import that could work, measured in the same run on the
                   same file: json.loads + plain sqlite3 executemany INSERT of the rows
                   (no validation, no upsert, no categories table). ``ratio_vs_baseline``
                   survives a busy machine better than absolute rates do.

The import runs as two processes (a parser process feeding the writer; see
``indexer/ingest/files.py``), so besides the wall rate each figure has the CPU of both
(``rows_per_cpu_s``: rows per CPU-second of writer + parser together), ``parallelism``
(cores kept busy on average) and ``rows_per_busiest_cpu_s`` (rows per CPU-second of the
busier process: the rate two otherwise idle cores allow). On a loaded machine (see
``load_avg_1m``) the wall rate measures the neighbours; the CPU figures do not.

Usage: ``python -m benchmarks.bench_ingest [--corpus PATH] [--limit N] [--scale N] [--json]``.
``bench_ingest(...) -> dict`` is what a ``papers bench`` harness calls.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "arxiv" / "papers.jsonl.gz"
SAMPLE = ROOT / "indexer" / "data" / "sample-papers.jsonl.gz"


def _child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# Memory: ru_maxrss survives exec on Linux (a child of a big harness process would report
# the harness's size), so the writer's peak is VmHWM; the forked parser shares pages with
# the writer, so both are sampled (20 Hz) from /proc/PID/smaps_rollup: Rss summed (an
# upper bound, shared pages counted twice) and Pss summed (the memory actually used).
_MEMORY = r"""
import glob, threading

def _rollup(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out

def _children():
    pids = []
    for path in glob.glob("/proc/self/task/*/children"):
        try:
            pids += open(path).read().split()
        except OSError:
            pass
    return pids

PEAK = {"rss_total_kb": 0, "pss_total_kb": 0, "children_rss_kb": 0}

def _sample():
    me = _rollup("self")
    kids = [_rollup(p) for p in _children()]
    krss = sum(k.get("Rss", 0) for k in kids)
    PEAK["rss_total_kb"] = max(PEAK["rss_total_kb"], me.get("Rss", 0) + krss)
    PEAK["pss_total_kb"] = max(PEAK["pss_total_kb"], me.get("Pss", 0) + sum(k.get("Pss", 0) for k in kids))
    PEAK["children_rss_kb"] = max(PEAK["children_rss_kb"], krss)

_STOP = threading.Event()

def _sampler():
    while not _STOP.wait(0.05):
        _sample()

def vm_hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None

def start_sampler():
    threading.Thread(target=_sampler, daemon=True).start()

def stop_sampler():
    _STOP.set()
    _sample()
    hwm = vm_hwm_mb()
    return {
        "peak_rss_mb": hwm,
        "parser_peak_rss_mb": round(PEAK["children_rss_kb"] / 1024, 1),
        "peak_rss_total_mb": max(hwm or 0, round(PEAK["rss_total_kb"] / 1024, 1)),
        "peak_pss_total_mb": round(PEAK["pss_total_kb"] / 1024, 1),
    }
"""

_OURS = _MEMORY + r"""
import json, os, resource, sys, time
from pathlib import Path
from indexer.settings import Settings
from indexer.ingest.store import open_database
kind, path, data_dir, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
settings = Settings(data_dir=Path(data_dir))
open_database(settings)
if kind == "kaggle":
    from indexer.ingest.kaggle import ingest_kaggle as ingest
else:
    from indexer.ingest.jsonl import ingest_jsonl as ingest

def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime

result = {}
start_sampler()
for i in range(repeat):
    load0 = os.getloadavg()[0]
    c0, p0, t0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = ingest(settings, path, progress=False)
    wall = time.perf_counter() - t0
    main_cpu, parser_cpu = cpu(resource.RUSAGE_SELF) - c0, cpu(resource.RUSAGE_CHILDREN) - p0
    key = "" if i == 0 else "_again"
    result.update({
        "rows" + key: r.records, "inserted" + key: r.inserted, "unchanged" + key: r.unchanged,
        "skipped" + key: r.skipped, "seconds" + key: round(wall, 2),
        "rows_per_s" + key: round(r.records / wall, 1),
        # all the CPU the import used (this process + the parser process), how many cores it
        # kept busy, and the rate its busier process alone allows (= wall rate on 2 idle cores)
        "rows_per_cpu_s" + key: round(r.records / (main_cpu + parser_cpu), 1),
        "cpu_s_writer" + key: round(main_cpu, 2), "cpu_s_parser" + key: round(parser_cpu, 2),
        "parallelism" + key: round((main_cpu + parser_cpu) / wall, 2),
        "rows_per_busiest_cpu_s" + key: round(r.records / max(main_cpu, parser_cpu), 1),
        "load_avg_1m" + key: [round(load0, 2), round(os.getloadavg()[0], 2)],
    })
db = Path(data_dir) / "papers.db"
result["db_mb"] = round(db.stat().st_size / 1e6, 1)
result.update(stop_sampler())
print(json.dumps(result))
"""

_BASELINE = r"""
import gzip, json, resource, sqlite3, sys, time
path, db = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("CREATE TABLE papers (id TEXT PRIMARY KEY, title TEXT, abstract TEXT, authors TEXT, categories TEXT, published TEXT, updated TEXT)")
c0, t0 = time.process_time(), time.perf_counter()
n, batch = 0, []
opener = gzip.open if path.endswith(".gz") else open
with opener(path, "rb") as f:
    for line in f:
        r = json.loads(line)
        batch.append((r["id"], r["title"], r["abstract"], json.dumps(r["authors"]), json.dumps(r["categories"]), r["published"], r.get("updated")))
        if len(batch) >= 2000:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO papers VALUES (?,?,?,?,?,?,?)", batch)
            n += len(batch); batch = []
if batch:
    with conn:
        conn.executemany("INSERT OR REPLACE INTO papers VALUES (?,?,?,?,?,?,?)", batch)
    n += len(batch)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(json.dumps({"rows": n, "seconds": round(wall, 2), "rows_per_s": round(n / wall, 1),
                  "rows_per_cpu_s": round(n / cpu, 1), "peak_rss_mb": round(hwm / 1024, 1)}))
"""


def _slice(src: Path, dst: Path, limit: int | None) -> int:
    n = 0
    with gzip.open(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=1) as fout:
        for line in itertools.islice(fin, limit):
            fout.write(line)
            n += 1
    return n


def _wrap(text: str, indent: str = "") -> str:
    """Hard-wrapped at ~80 columns, as the snapshot's titles and abstracts are."""
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + len(word) >= 80:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    lines.append(cur)
    return f"\n{indent}".join(lines)


def _as_kaggle(src: Path, dst: Path) -> None:
    """The same papers as Kaggle snapshot lines (versions, authors_parsed, string categories,
    titles and abstracts hard-wrapped with newlines and indented like the real snapshot)."""

    def created(day: str) -> str:
        return format_datetime(datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC), usegmt=True)

    with gzip.open(src, "rt", encoding="utf-8") as fin, gzip.open(dst, "wt", encoding="utf-8", compresslevel=1) as fout:
        for line in fin:
            r = json.loads(line)
            versions = [{"version": "v1", "created": created(r["published"])}]
            if r.get("updated"):
                versions.append({"version": "v2", "created": created(r["updated"])})
            parsed = [[a.rsplit(" ", 1)[-1], a.rsplit(" ", 1)[0] if " " in a else "", ""] for a in r["authors"]]
            fout.write(json.dumps({
                "id": r["id"], "submitter": r["authors"][0], "authors": ", ".join(r["authors"]),
                "title": _wrap(r["title"], "  "), "comments": None, "journal-ref": None, "doi": None, "report-no": None,
                "categories": " ".join(r["categories"]), "license": None, "abstract": "  " + _wrap(r["abstract"]) + "\n",
                "versions": versions, "update_date": r.get("updated") or r["published"], "authors_parsed": parsed,
            }) + "\n")


def _scaled(src: Path, dst: Path, copies: int) -> int:
    """``copies`` copies of the corpus with ids made unique (still valid arXiv ids)."""
    n = 0
    with gzip.open(dst, "wt", encoding="utf-8", compresslevel=1) as fout:
        for c in range(copies):
            with gzip.open(src, "rt", encoding="utf-8") as fin:
                for line in fin:
                    if c:
                        r = json.loads(line)
                        pid = r["id"]
                        arch, slash, num = pid.partition("/")  # old style: hep-th/9901001
                        r["id"] = f"{arch}{'-' * c}/{num}" if slash else f"{9 - c % 10}{pid[1:]}"
                        line = json.dumps(r) + "\n"
                    fout.write(line)
                    n += 1
    return n


def bench_ingest(
    corpus: Path | None = None, limit: int | None = None, work: Path | None = None, scale: int = 0
) -> dict:
    """Figures for the JSONL / Kaggle import (see module doc); each part in its own process.

    ``scale`` > 1 adds ``jsonl_x<scale>``: the corpus ``scale`` times over (unique ids), to
    show that memory does not grow with the file.
    """
    corpus = Path(corpus) if corpus else (SHARED_CORPUS if SHARED_CORPUS.is_file() else SAMPLE)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=work) as tmp:
        t = Path(tmp)
        src = t / "corpus.jsonl.gz"
        rows = _slice(corpus, src, limit)
        small = t / "small.jsonl.gz"
        _slice(src, small, max(1, rows // 10))
        kaggle = t / "kaggle.json.gz"
        _as_kaggle(src, kaggle)
        out: dict = {"corpus": str(corpus), "rows": rows, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
        out["baseline"] = _child(_BASELINE, str(src), str(t / "baseline.db"))
        out["jsonl"] = _child(_OURS, "jsonl", str(src), str(t / "jsonl"), "2")
        out["kaggle"] = _child(_OURS, "kaggle", str(kaggle), str(t / "kaggle"), "1")
        out["jsonl_small"] = _child(_OURS, "jsonl", str(small), str(t / "small"), "1")
        if scale > 1:
            big = t / "big.jsonl.gz"
            _scaled(src, big, scale)
            out[f"jsonl_x{scale}"] = _child(_OURS, "jsonl", str(big), str(t / "big"), "1")
    base = out["baseline"]["rows_per_s"]
    out["ratio_vs_baseline"] = round(out["jsonl"]["rows_per_s"] / base, 3) if base else None
    out["targets"] = {
        "rows_per_s_min": 20000,
        "peak_rss_mb_max": 500,
        "jsonl_rows_per_s_ok": out["jsonl"]["rows_per_s"] >= 20000,
        "kaggle_rows_per_s_ok": out["kaggle"]["rows_per_s"] >= 20000,
        # writer + parser RSS summed (shared pages twice: an upper bound); Pss is the actual use
        "rss_ok": max(f["peak_rss_total_mb"] for k, f in out.items() if k.startswith(("jsonl", "kaggle"))) < 500,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=None, help="JSONL(.gz) corpus (default: shared 100k papers)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N papers")
    ap.add_argument("--scale", type=int, default=0, help="also import the corpus N times over (memory check)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    r = bench_ingest(args.corpus, args.limit, scale=args.scale)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"corpus {r['corpus']} ({r['rows']:,} papers), {r['cpus']} CPUs, load avg {r['load_avg'][0]:.1f}")
    for name, f in r.items():
        if not isinstance(f, dict) or "rows_per_s" not in f:
            continue
        line = (f"{name:12s} {f['rows']:>8,} rows {f['rows_per_s']:>8,.0f} rows/s wall"
                f" {f['rows_per_cpu_s']:>8,.0f} rows/CPU-s  peak RSS {f.get('peak_rss_total_mb', f['peak_rss_mb']):5.0f} MB")
        if "parallelism" in f:
            line += (f" (Pss {f['peak_pss_total_mb']:.0f}; writer {f['peak_rss_mb']:.0f} + parser"
                     f" {f['parser_peak_rss_mb']:.0f})  {f['parallelism']:.2f} cores busy,"
                     f" {f['rows_per_busiest_cpu_s']:,.0f} rows/s on 2 idle cores, load {f['load_avg_1m'][0]:.1f}")
        print(line)
        if "rows_per_s_again" in f:
            print(f"{'  again':12s} {f['rows_again']:>8,} rows {f['rows_per_s_again']:>8,.0f} rows/s wall"
                  f" {f['rows_per_cpu_s_again']:>8,.0f} rows/CPU-s  (idempotent re-run: all unchanged)")
    print(f"ratio jsonl/baseline {r['ratio_vs_baseline']}; targets: {r['targets']}")


if __name__ == "__main__":
    main()
