"""The service under a hard memory limit: `papers serve` inside a memory cgroup.

Why: resident memory (RSS, PSS) counts the pages of the index files the service has
mapped — HNSW graphs, BM25 segments — which the kernel may drop and read again. What a
host with 2 GB asks is whether the service *runs* when everything it holds, page cache of
its own files included, may not exceed 2 GB: no OOM kill, no errors, and what latency.
So the server starts in a fresh memory cgroup with that limit (no swap on this machine),
after the page cache was dropped so that the pages it reads are charged to it, and the
same HTTP load as the service bench (benchmarks/loadgen.py, 8 clients) runs against it,
BM25 then hybrid. Reported: latencies and errors per mode, the cgroup's peak and final
usage (anonymous vs page cache), how often it hit the limit, OOM kills, and whether the
server was still up at the end.

    python -m benchmarks.bench_memlimit --data data/bench/1m/data \\
        --corpus data/bench/corpus-1m.jsonl.gz --limit-mb 2048 --out report.json

Needs root and a writable cgroup memory controller (v1 or v2); :func:`available` says
why not where it is missing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.bench_service import Served, _loadgen, paths_file, search_paths, tree_memory_mb
from benchmarks.measure import summarize

V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


class MemoryCgroup:
    """A memory cgroup of its own (v1 ``memory`` hierarchy, or v2 unified) with a limit."""

    def __init__(self, limit_mb: int):
        self.limit_mb = int(limit_mb)
        name = f"papers-bench-{os.getpid()}-{int(time.time())}"
        if (V1 / "memory.limit_in_bytes").exists():
            self.version, self.path = 1, V1 / name
        else:
            self.version, self.path = 2, V2 / name
        self.path.mkdir()
        limit = str(self.limit_mb * 1024 * 1024)
        if self.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(limit)
        else:
            (self.path / "memory.max").write_text(limit)
            if (self.path / "memory.swap.max").exists():
                (self.path / "memory.swap.max").write_text("0")

    def wrapper(self) -> list[str]:
        """Prefix for a command line: join this cgroup, then exec the command."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh"]

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def _kv(self, name: str) -> dict[str, int]:
        out = {}
        for line in self._read(name).splitlines():
            k, _, v = line.partition(" ")
            if v.strip().lstrip("-").isdigit():
                out[k] = int(v)
        return out

    def stats(self) -> dict:
        mb = 1024 * 1024
        if self.version == 1:
            st = self._kv("memory.stat")
            oom = self._kv("memory.oom_control")
            return {"usage_mb": round(int(self._read("memory.usage_in_bytes")) / mb, 1),
                    "peak_mb": round(int(self._read("memory.max_usage_in_bytes")) / mb, 1),
                    "anon_mb": round(st.get("total_rss", st.get("rss", 0)) / mb, 1),
                    "page_cache_mb": round(st.get("total_cache", st.get("cache", 0)) / mb, 1),
                    "mapped_file_mb": round(st.get("total_mapped_file", st.get("mapped_file", 0)) / mb, 1),
                    "times_at_limit": int(self._read("memory.failcnt")),
                    "oom_kills": oom.get("oom_kill", 0)}
        st, ev = self._kv("memory.stat"), self._kv("memory.events")
        peak = self.path / "memory.peak"
        return {"usage_mb": round(int(self._read("memory.current")) / mb, 1),
                "peak_mb": round(int(peak.read_text()) / mb, 1) if peak.exists() else None,
                "anon_mb": round(st.get("anon", 0) / mb, 1), "page_cache_mb": round(st.get("file", 0) / mb, 1),
                "mapped_file_mb": round(st.get("file_mapped", 0) / mb, 1),
                "times_at_limit": ev.get("max", 0), "oom_kills": ev.get("oom_kill", 0)}

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass  # a process still in it: the kernel keeps it until it is empty


def available() -> str | None:
    """None when a memory cgroup can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (to create a memory cgroup)"
    try:
        cg = MemoryCgroup(64)
    except OSError as e:
        return f"no writable cgroup memory controller ({e})"
    cg.remove()
    return None


def _drop_page_cache() -> bool:
    """So the index pages the server reads are charged to its cgroup, not found cached."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3")
        return True
    except OSError:
        return False


def bench_memory_limit(data_dir: Path, queries: list[str], limit_mb: int = 2048, workers: int | None = 1,
                       models: tuple[str, str] = ("all-MiniLM-L6-v2", "use-multilingual"),
                       modes: tuple[str, ...] = ("bm25", "hybrid"), clients: int = 8, per_client: int = 50,
                       drop_cache: bool = True) -> dict:
    """``workers=None``: what `papers serve` starts by itself in this limit (service/sizing.py;
    its note, if any, is reported). ``drop_cache=False`` (tests): keep the page cache; pages
    already cached by others are then not charged to the server, so the peak is a lower bound."""
    why = available()
    if why:
        return {"skipped": why}
    dropped = _drop_page_cache() if drop_cache else False
    cg = MemoryCgroup(limit_mb)
    swaps = Path("/proc/swaps").read_text().strip().splitlines()[1:]  # after the header: active swap areas
    out: dict = {"limit_mb": limit_mb, "workers": workers if workers is not None else "serve's default",
                 "models": list(models), "cgroup_version": cg.version,
                 "page_cache_dropped_first": dropped, "swap": "present" if swaps else "none"}
    proc = log = None
    try:
        t0 = time.perf_counter()
        try:
            proc, base, log = Served.start(Path(data_dir), workers=workers, models=models, wrapper=cg.wrapper())
        except RuntimeError as e:  # killed while loading (the limit is too small), or never ready
            out.update({"failed": str(e), "server_alive": False})
            return out
        out["ready_s"] = round(time.perf_counter() - t0, 1)
        out["at_ready"] = cg.stats()
        out["serve_notes"] = [ln.strip() for ln in Path(log.name).read_text(errors="replace").splitlines()
                              if ln.startswith("papers serve:")]
        host, port = urlparse(base).hostname, urlparse(base).port
        for mode in modes:
            name = paths_file(search_paths(queries, mode))
            try:
                _loadgen(host, port, name, clients, 2)  # warm every connection
                r = _loadgen(host, port, name, clients, per_client)
            finally:
                os.unlink(name)
            k = len(r["latencies_ms"])
            out[f"http_{mode}"] = {"clients": clients, **summarize(r["latencies_ms"]),
                                   "requests_per_s": round(k / r["wall_s"], 1) if r["wall_s"] else None,
                                   "errors": len(r["errors"]), "error_sample": r["errors"][:3]}
            out[f"after_{mode}"] = cg.stats()
        out["server_alive"] = proc.poll() is None
        out["process_memory_mb"] = tree_memory_mb(proc.pid) if out["server_alive"] else None
        out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
        return out
    finally:
        if proc is not None:
            out["server_alive_at_stop"] = proc.poll() is None
            Served.stop(proc, log)
        out["final"] = cg.stats()
        cg.remove()


def main(argv: list[str] | None = None) -> None:
    import argparse

    from benchmarks.corpus import read_jsonl
    from benchmarks.queries import make_queries

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a data dir with a published index (the bench's)")
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus JSONL the queries are drawn from")
    ap.add_argument("--limit-mb", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=1, help="0: no --workers, what `papers serve` picks in the limit")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    qs = make_queries(read_jsonl(a.corpus, limit=20_000), 100)
    mixed = [q for shape in ("1w", "3w", "10w") for q in qs[shape]]
    res = bench_memory_limit(a.data, mixed, a.limit_mb, a.workers or None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
