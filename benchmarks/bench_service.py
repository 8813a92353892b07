"""The running service: resident memory at idle, HTTP search latency under 8 concurrent
clients on loopback, and the bytes of a first page load.

Why a real `papers serve` subprocess: memory and latency of the deployed shape (uvicorn,
one worker, the index loaded lazily) are what operators see; an in-process TestClient
would hide both. Memory is VmRSS from /proc after a warm-up of real queries.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

from benchmarks.measure import summarize, vm_rss_mb

_REF = re.compile(r"""(?:href|src)=["']([^"'#]+)["']""")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


class Served:
    """`papers serve` on a free loopback port over ``data_dir``."""

    @staticmethod
    def start(data_dir: Path, ready_timeout: float = 300.0, extra_env: dict[str, str] | None = None):
        import socket

        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ)
        env.update({"PAPERS_DATA_DIR": str(data_dir), "PAPERS_EMBEDDING_MODEL": "fake", "PAPERS_MULTILINGUAL_MODEL": "",
                    "PAPERS_LOG_LEVEL": "WARNING", "PAPERS_RATE_LIMIT": "0", "HF_HUB_OFFLINE": "1"})
        env.update(extra_env or {})
        exe = Path(sys.executable).with_name("papers")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
        log = open(Path(data_dir) / f"serve-{port}.log", "w")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen([*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
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


def bench_service(data_dir: Path, queries: list[str], per_client: int, clients: int = 8, mode: str = "bm25") -> dict:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not (Path(data_dir) / "index" / "manifest.json").exists():
        raise RuntimeError(f"no published index under {data_dir}: run the build bench first")
    proc, base, log = Served.start(data_dir)
    try:
        out: dict = {"rss_ready_mb": vm_rss_mb(proc.pid)}
        with httpx.Client(base_url=base, timeout=60) as c:
            for q in queries[:30]:
                c.get("/api/search", params={"q": q, "mode": mode})
            c.get("/")
        time.sleep(1.0)
        out["rss_idle_after_warmup_mb"] = vm_rss_mb(proc.pid)
        out["page_load"] = page_bytes(base)
        times: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(k: int) -> None:
            mine: list[float] = []
            with httpx.Client(base_url=base, timeout=60) as c:
                for i in range(per_client):
                    q = queries[(k * per_client + i) % len(queries)]
                    t = time.perf_counter()
                    r = c.get("/api/search", params={"q": q, "mode": mode, "size": 10})
                    mine.append((time.perf_counter() - t) * 1000.0)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {q}")
            with lock:
                times.extend(mine)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        out["http_search"] = {"mode": mode, "clients": clients, **summarize(times), "requests_per_s": round(len(times) / wall, 1),
                              "errors": len(errors), "error_sample": errors[:3]}
        out["rss_after_load_mb"] = vm_rss_mb(proc.pid)
        return out
    finally:
        Served.stop(proc, log)


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
