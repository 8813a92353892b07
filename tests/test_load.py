"""Bounded load on loopback while a nightly run writes: zero errors; p50/p99 reported.

A real uvicorn serving the app on 127.0.0.1 (free port) over a data dir of real sample
papers; 2,000 requests from 8 concurrent async httpx clients (search in two modes,
paper pages, related papers, daily lists, stats, health). Meanwhile a real `papers
nightly` process harvests from the arXiv stand-in, builds and publishes a new version,
then `papers build --full --no-embeddings` reindexes everything. Every request must
answer 200, and the server must end on the newly published version without a restart.

No timing assertions: latencies are printed and written to test-artifacts/load.json.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.arxiv_standin import ArxivStandin
from tests.nightly_support import (
    REPO,
    base_settings,
    cli_env,
    papers_cmd,
    published,
    sample_records,
)

REQUESTS = 2_000
CLIENTS = 8
BASE = 600
SERVER = (
    "import uvicorn\n"
    "from indexer.settings import get_settings\n"
    "from service.app import create_app\n"
    "import sys\n"
    "uvicorn.run(create_app(get_settings()), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning', access_log=False)\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, proc: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("server did not become healthy")


def _urls(n: int) -> list[str]:
    rng = random.Random(6)
    recs = sample_records(BASE)
    words = [w for r in recs[:300] for w in r.title.split() if w.isalpha() and len(w) > 4]
    cats = sorted({r.categories[0] for r in recs})
    urls = []
    for _ in range(n):
        k = rng.random()
        rec = rng.choice(recs)
        if k < 0.40:
            urls.append(f"/api/search?q={' '.join(rng.sample(words, 2))}&mode=bm25")
        elif k < 0.60:
            urls.append(f"/api/search?q={rng.choice(words)}&mode=hybrid&size=10")
        elif k < 0.75:
            urls.append(f"/api/papers/{rec.id}")
        elif k < 0.85:
            urls.append(f"/api/papers/{rec.id}/related")
        elif k < 0.90:
            urls.append(f"/api/daily/{rng.choice(cats)}?date={rec.published.isoformat()}")
        elif k < 0.95:
            urls.append("/api/stats")
        else:
            urls.append("/healthz")
    return urls


async def _load(base: str, urls: list[str], writing: threading.Event) -> tuple[list[float], list[str], int]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for u in urls:
        queue.put_nowait(u)
    latencies: list[float] = []
    errors: list[str] = []
    overlap = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal overlap
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            during = writing.is_set()
            t0 = time.perf_counter()
            try:
                r = await client.get(url)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {url} {r.text[:200]}")
            except httpx.HTTPError as e:
                errors.append(f"{type(e).__name__} {url}")
            latencies.append((time.perf_counter() - t0) * 1000)
            overlap += during

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(CLIENTS))), timeout=300)
    return latencies, errors, overlap


def _report(latencies: list[float], errors: list[str], overlap: int, wall: float) -> None:
    """Print the figures and keep them in test-artifacts/load.json (before any assertion)."""
    q = statistics.quantiles(latencies, n=100)
    kinds: dict[str, int] = {}
    for e in errors:
        status, url = e.split(" ", 2)[:2]
        key = f"{status} {re.sub(r'/api/papers/[^/?]+', '/api/papers/{id}', url.split('?')[0])}"
        kinds[key] = kinds.get(key, 0) + 1
    figures = {
        "requests": len(latencies), "clients": CLIENTS, "errors": len(errors), "error_kinds": kinds,
        "during_writes": overlap, "p50_ms": round(statistics.median(latencies), 2), "p99_ms": round(q[98], 2),
        "max_ms": round(max(latencies), 2), "throughput_rps": round(len(latencies) / wall, 1),
    }
    print("\nload:", json.dumps(figures))
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "load.json").write_text(json.dumps(figures, indent=2) + "\n")


def test_load_while_nightly_writes(tmp_path):
    settings = base_settings(tmp_path / "d", n=BASE)
    v0 = published(settings).version
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    urls = _urls(REQUESTS)
    with ArxivStandin(filter_records=False) as standin:
        env = cli_env(settings, standin)
        log_path = tmp_path / "server.log"  # a file, not a pipe: a full pipe would stall the server
        server_log = open(log_path, "w")  # noqa: SIM115 - closed in finally
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)], env=env, cwd=str(tmp_path),
            stdout=subprocess.DEVNULL, stderr=server_log, text=True,
        )
        try:
            _wait_healthy(base, server, log_path)
            writing = threading.Event()
            writer_rc: list[tuple[str, int, str]] = []

            def writer() -> None:
                writing.set()
                try:
                    for args in (["nightly", "--from", "2014-10-01", "--set", "cs"], ["build", "--full", "--no-embeddings"]):
                        p = subprocess.run(papers_cmd(*args), env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=400)
                        writer_rc.append((args[0], p.returncode, p.stderr[-2000:]))
                finally:
                    writing.clear()

            t = threading.Thread(target=writer, daemon=True)
            t.start()
            t0 = time.perf_counter()
            latencies, errors, overlap = asyncio.run(_load(base, urls, writing))
            wall = time.perf_counter() - t0
            _report(latencies, errors, overlap, wall)
            t.join(timeout=420)
            assert not t.is_alive(), "writer did not finish"
            for name, rc, err in writer_rc:
                assert rc == 0, f"papers {name} failed during the load: {err}"

            # the running server switches to the new version without a restart
            target = published(settings).version
            assert target > v0
            deadline = time.monotonic() + 60
            seen = None
            while time.monotonic() < deadline:
                seen = httpx.get(f"{base}/readyz", timeout=10).json().get("index_version")
                if seen == target:
                    break
                httpx.get(f"{base}/api/search", params={"q": "neural"}, timeout=10)
                time.sleep(0.2)
            assert seen == target, f"server still on version {seen}, published {target}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            server_log.close()

    assert len(latencies) == REQUESTS
    log_tail = log_path.read_text()[-1500:]
    assert errors == [], f"{len(errors)} failed requests, e.g. {errors[:5]}; server log: {log_tail}"
    assert overlap > 0, "no request was made while the nightly was writing; the test proved nothing"
