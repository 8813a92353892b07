"""The running service: resident memory at idle, HTTP search latency under 8 concurrent
clients on loopback, and the bytes of a first page load.

Why a real `papers serve` subprocess: memory and latency of the deployed shape (uvicorn,
the index loaded lazily) are what operators see; an in-process TestClient would hide
both. Memory is VmRSS from /proc after a warm-up of real queries (summed over the worker
processes, with PSS beside it: workers share the index files' page cache).

Why a separate load-generator process (benchmarks/loadgen.py): 8 sync-client threads in
the bench process competed with the server for the GIL-bound CPU and measured the client
as much as the server. The CPU seconds both sides spent are reported per request: on a
shared 2-core machine latency depends on the load of others, CPU per request does not.
The search is timed once per worker count in ``workers`` (``papers serve --workers``);
``http_search`` is the one `papers serve` runs by default. With several workers the
clients connect 10 ms apart (see loadgen.py), and ``cpu_s_per_process`` shows how the
work fell on the workers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlparse

from benchmarks.measure import summarize, vm_rss_mb

_REF = re.compile(r"""(?:href|src)=["']([^"'#]+)["']""")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


class Served:
    """`papers serve` on a free loopback port over ``data_dir``."""

    @staticmethod
    def start(data_dir: Path, ready_timeout: float = 300.0, extra_env: dict[str, str] | None = None, workers: int | None = None,
              models: tuple[str, str] = ("fake", ""), wrapper: list[str] | None = None):
        """``wrapper``: a prefix for the command line (bench_memlimit: join a memory cgroup)."""
        import socket

        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ)
        env.update({"PAPERS_DATA_DIR": str(data_dir), "PAPERS_EMBEDDING_MODEL": models[0], "PAPERS_MULTILINGUAL_MODEL": models[1],
                    "PAPERS_LOG_LEVEL": "WARNING", "PAPERS_RATE_LIMIT": "0", "HF_HUB_OFFLINE": "1"})
        env.update(extra_env or {})
        exe = Path(sys.executable).with_name("papers")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
        log = open(Path(data_dir) / f"serve-{port}.log", "w")  # noqa: SIM115 - closed in stop()
        args = [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers is not None:
            args += ["--workers", str(workers)]
        proc = subprocess.Popen([*(wrapper or []), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"papers serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("papers serve did not become ready")
            time.sleep(0.3)
        return proc, base, log

    @staticmethod
    def stop(proc, log) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        path = Path(log.name)
        if path.exists() and path.stat().st_size == 0:  # nothing to read: leave no litter
            path.unlink()


def bench_service(data_dir: Path, queries: list[str], per_client: int, serve_workers: Callable[[Path], int],
                  clients: int = 8, mode: str = "bm25", workers: tuple[int, ...] | None = None,
                  models: tuple[str, str] = ("fake", ""), also: tuple[str, ...] = ()) -> dict:
    """Memory, page weight and HTTP search latency; the search once per worker count.

    ``serve_workers``: what `papers serve` runs without --workers on this machine over
    ``data_dir``'s index (service/sizing.py's plan, passed in by `papers bench`: the
    benchmarks measure the service as a program and never import it).

    ``models``: the (main, multilingual) embedding models the server is configured with;
    ``also``: further search modes (e.g. ``hybrid``) timed by the same server after
    ``mode``, reported as ``http_<mode>``. Memory is taken after every mode has warmed."""
    if not (Path(data_dir) / "index" / "manifest.json").exists():
        raise RuntimeError(f"no published index under {data_dir}: run the build bench first")
    default = serve_workers(Path(data_dir))
    counts = workers or tuple(sorted({1, default}))
    paths = search_paths(queries, mode)
    out: dict = {"serve_default_workers": default, "by_workers": {}}
    for n in counts:
        res = _bench_one(Path(data_dir), queries, paths, per_client, clients, mode, n, measure_page=n == default,
                         models=models, also=also)
        out["by_workers"][str(n)] = res
        if n == default:
            out.update({k: v for k, v in res.items() if k != "workers"})
    if "http_search" not in out:  # the default count was not among ``workers``
        out.update({k: v for k, v in out["by_workers"][str(counts[-1])].items() if k != "workers"})
    return out


def _bench_one(data_dir: Path, queries: list[str], paths: list[str], per_client: int, clients: int, mode: str,
               workers: int, measure_page: bool, models: tuple[str, str] = ("fake", ""), also: tuple[str, ...] = ()) -> dict:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    proc, base, log = Served.start(data_dir, workers=workers, models=models)
    others = {m: search_paths(queries, m) for m in also}
    try:
        out: dict = {"workers": workers, "models": list(models), "rss_ready_mb": tree_rss_mb(proc.pid)}
        with httpx.Client(base_url=base, timeout=60) as c:
            for m in (mode, *also):
                for q in queries[:30]:
                    c.get("/api/search", params={"q": q, "mode": m})
            c.get("/")
        host, port = urlparse(base).hostname, urlparse(base).port
        files = {m: paths_file(ps) for m, ps in ((mode, paths), *others.items())}
        try:
            # every worker and connection warmed (the kernel spreads connections over workers)
            for name in files.values():
                _loadgen(host, port, name, clients, 2)
            time.sleep(1.0)
            out["rss_idle_after_warmup_mb"] = tree_rss_mb(proc.pid)
            out["pss_idle_after_warmup_mb"] = tree_pss_mb(proc.pid)
            out["memory_idle_after_warmup"] = tree_memory_mb(proc.pid)
            out["rss_per_process_mb"] = [vm_rss_mb(p) for p in tree_pids(proc.pid)]
            if measure_page:
                out["page_load"] = page_bytes(base)
            load_before = os.getloadavg()
            cpu0, each0 = tree_cpu_s(proc.pid), process_cpu_s(proc.pid)
            run = _loadgen(host, port, files[mode], clients, per_client)
            server_cpu, each1 = tree_cpu_s(proc.pid) - cpu0, process_cpu_s(proc.pid)
            for m in also:
                t0 = tree_cpu_s(proc.pid)
                r = _loadgen(host, port, files[m], clients, per_client)
                k = len(r["latencies_ms"])
                out[f"http_{m}"] = {"mode": m, "clients": clients, "workers": workers, **summarize(r["latencies_ms"]),
                                    "requests_per_s": round(k / r["wall_s"], 1),
                                    "server_cpu_ms_per_request": round(1000 * (tree_cpu_s(proc.pid) - t0) / k, 3) if k else None,
                                    "errors": len(r["errors"]), "error_sample": r["errors"][:3]}
        finally:
            for name in files.values():
                os.unlink(name)
        times, errors, n = run["latencies_ms"], run["errors"], len(run["latencies_ms"])
        out["http_search"] = {
            "mode": mode, "clients": clients, "workers": workers, **summarize(times),
            "requests_per_s": round(n / run["wall_s"], 1),
            "server_cpu_ms_per_request": round(1000 * server_cpu / n, 3) if n else None,
            "client_cpu_ms_per_request": round(1000 * run["client_cpu_s"] / n, 3) if n else None,
            # how the work fell on the processes: keep-alive connections stay with the worker
            # that accepted them, so 8 clients can split 6:2 between two workers
            "cpu_s_per_process": sorted((round(each1[p] - each0.get(p, 0.0), 2) for p in each1), reverse=True),
            "load_avg_before": [round(x, 2) for x in load_before], "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "errors": len(errors), "error_sample": errors[:3],
            "client": "benchmarks/loadgen.py: one process, asyncio keep-alive connections",
        }
        out["rss_after_load_mb"] = tree_rss_mb(proc.pid)
        out["memory_after_load"] = tree_memory_mb(proc.pid)
        return out
    finally:
        Served.stop(proc, log)


def search_paths(queries: list[str], mode: str) -> list[str]:
    """The `/api/search` request targets the load generator sends, one per query."""
    return [f"/api/search?{urlencode({'q': q, 'mode': mode, 'size': 10})}" for q in queries]


def paths_file(paths: list[str]) -> str:
    """A temporary JSON file of request targets for benchmarks/loadgen.py (caller unlinks)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(paths, f)
    return f.name


def _loadgen(host: str, port: int, paths_file: str, clients: int, per_client: int) -> dict:
    """benchmarks/loadgen.py in its own interpreter; its JSON result."""
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "benchmarks.loadgen", host, str(port), paths_file, str(clients), str(per_client)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"load generator failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


# -- the server's process tree (uvicorn --workers N: a supervisor and N workers) ----------------

def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def process_cpu_s(pid: int) -> dict[int, float]:
    """User + system CPU seconds of ``pid`` and each of its (live) descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (the live ones)."""
    return sum(process_cpu_s(pid).values())


def tree_rss_mb(pid: int) -> float | None:
    vals = [v for v in (vm_rss_mb(p) for p in tree_pids(pid)) if v is not None]
    return round(sum(vals), 1) if vals else None


def tree_memory_mb(pid: int) -> dict[str, float]:
    """The tree's memory split: anonymous (the processes' own heaps: Python objects, model
    weights, allocator) vs file-backed (mapped index files, shared libraries, model files:
    page cache, shared between workers and reclaimable when clean), as RSS and as PSS."""
    keys = {"RssAnon:": "rss_anon_mb", "RssFile:": "rss_file_mb"}
    rollup = {"Pss_Anon:": "pss_anon_mb", "Pss_File:": "pss_file_mb"}
    out = dict.fromkeys([*keys.values(), *rollup.values()], 0.0)
    for p in tree_pids(pid):
        for path, names in ((f"/proc/{p}/status", keys), (f"/proc/{p}/smaps_rollup", rollup)):
            try:
                for line in Path(path).read_text().splitlines():
                    parts = line.split()
                    if parts and parts[0] in names:
                        out[names[parts[0]]] += int(parts[1]) / 1024.0
            except OSError:
                continue
    return {k: round(v, 1) for k, v in out.items()}


def tree_pss_mb(pid: int) -> float | None:
    """Proportional set size summed over the tree: shared pages counted once in total."""
    total, seen = 0, False
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    seen = True
                    break
        except OSError:
            continue
    return round(total / 1024.0, 1) if seen else None


def page_bytes(base: str) -> dict:
    """Bytes of the home page plus the same-origin CSS, JS, fonts and images it references."""
    import httpx

    seen: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=30, headers={"Accept-Encoding": "identity"}) as c:
        home = c.get("/")
        seen["/"] = len(home.content)
        todo = [u for u in _REF.findall(home.text) if _asset(u)]
        while todo:
            u = todo.pop()
            path = urlparse(urljoin(base + "/", u)).path
            if path in seen or urlparse(urljoin(base + "/", u)).netloc not in ("", urlparse(base).netloc):
                continue
            r = c.get(path)
            seen[path] = len(r.content) if r.status_code == 200 else 0
            if path.endswith(".css"):
                todo.extend(urljoin(path, x) for x in _CSS_URL.findall(r.text) if not x.startswith("data:"))
    return {"total_bytes": sum(seen.values()), "files": seen}


def _asset(u: str) -> bool:
    p = urlparse(u).path
    return p.endswith((".css", ".js", ".woff", ".woff2", ".ttf", ".png", ".svg", ".ico", ".webp", ".jpg")) and not u.startswith(("http://", "https://", "//"))
