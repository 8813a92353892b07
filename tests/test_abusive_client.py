"""Bounded load test: one abusive client cannot starve another (issue 14: 16 heavy
requests from one client moved another client's search p50 from 10 ms to 1.1 s).

A real `papers serve` (2 workers, default limits) on loopback. The victim (127.0.0.1)
runs sequential searches: first alone (the baseline, measured in the same run), then
while the abuser (127.0.0.2, a different client address on the same loopback) keeps 16
heavy requests in flight (keyword extraction over 200,000 characters of fresh text each
time), in 3 alternating rounds of 15 searches each. The victim's p50 under load must
stay within 3x of its p50 alone. Bounded: 90 searches, the abuser stops at the end of
each round; figures are printed and kept in test-artifacts/abusive_client.json with
the machine's load average.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.nightly_support import REPO, base_settings, sample_records
from tests.test_server_limits import Server

ROUNDS = 3
PER_ROUND = 15
ABUSERS = 16
RATIO = 3.0


def _victim_urls(n: int) -> list[str]:
    rng = random.Random(14)
    words = [w for r in sample_records(300) for w in r.title.split() if w.isalpha() and len(w) > 4]
    return [f"/api/search?q={'%20'.join(rng.sample(words, 2))}&mode=bm25" for _ in range(n)]


def _heavy_texts(n: int) -> list[str]:
    rng = random.Random(7)
    abstracts = [r.abstract for r in sample_records(600)]
    return [" ".join(rng.sample(abstracts, 200))[:200_000] for _ in range(n)]


async def _victim(base: str, urls: list[str]) -> list[float]:
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    out = []
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=60) as c:
        for u in urls:
            t0 = time.perf_counter()
            r = await c.get(u)
            out.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, (r.status_code, r.text[:200])
    return out


ABUSER = r"""
import asyncio, json, sys
import httpx
base, n, texts = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
codes = []

async def main():
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=120,
                                 limits=httpx.Limits(max_connections=n)) as c:
        async def one(k):
            while True:
                try:
                    r = await c.post("/api/keywords", json={"text": texts[k % len(texts)], "k": 50})
                    print(r.status_code, flush=True)
                    if r.status_code == 429:
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                except httpx.HTTPError:
                    print(0, flush=True)
                k += n
        await asyncio.gather(*(one(i) for i in range(n)))

asyncio.run(main())
"""


def _start_abuser(base: str, texts_file: Path, out: Path) -> subprocess.Popen:
    """The abusive client in a process of its own: its work never delays the victim's
    event loop (which would count as server latency)."""
    return subprocess.Popen([sys.executable, "-c", ABUSER, base, str(ABUSERS), str(texts_file)],
                            stdout=out.open("a"), stderr=subprocess.STDOUT)


async def _measure(base: str, workdir: Path) -> dict:
    """ROUNDS of (victim alone, victim under abuse), alternating, so that a change in the
    machine's other load during the test weighs on both sides alike."""
    urls = _victim_urls(2 * ROUNDS * PER_ROUND + 5)
    await _victim(base, urls[:5])  # warm-up
    texts_file, out = workdir / "texts.json", workdir / "abuser.out"
    texts_file.write_text(json.dumps(_heavy_texts(64)))
    alone: list[float] = []
    loaded: list[float] = []
    at = 5
    for _ in range(ROUNDS):
        alone += await _victim(base, urls[at : at + PER_ROUND])
        at += PER_ROUND
        abuser = _start_abuser(base, texts_file, out)
        try:
            await asyncio.sleep(2.0)  # let the abuser fill the server
            loaded += await _victim(base, urls[at : at + PER_ROUND])
        finally:
            abuser.kill()
            abuser.wait(30)
        at += PER_ROUND
    codes = [int(x) for x in out.read_text().split() if x.isdigit()]
    return {"alone_ms": alone, "loaded_ms": loaded, "abuser_codes": codes}


_DEFAULT_LIMITS = {"PAPERS_RATE_LIMIT": "600"}  # cli_env turns the limit off unless told: the default


def test_one_abusive_client_does_not_starve_another(tmp_path):
    settings = base_settings(tmp_path / "d", n=600)
    server = Server(settings, tmp_path, **_DEFAULT_LIMITS)
    try:
        figures = asyncio.run(_measure(server.base, tmp_path))
    finally:
        server.stop()
    p50_alone = statistics.median(figures["alone_ms"])
    p50_loaded = statistics.median(figures["loaded_ms"])
    codes = figures.pop("abuser_codes")
    summary = {
        "p50_alone_ms": round(p50_alone, 1), "p50_loaded_ms": round(p50_loaded, 1),
        "ratio": round(p50_loaded / p50_alone, 2), "abuser_requests": len(codes),
        "abuser_429": codes.count(429), "abuser_200": codes.count(200), "loadavg": os.getloadavg(),
    }
    print(f"\nabusive client: {summary}")
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "abusive_client.json").write_text(json.dumps({**summary, **figures}, indent=1))
    assert codes.count(200) > 0, "the abuser never got through: not a load test"
    assert p50_loaded <= RATIO * p50_alone, summary


@pytest.fixture(autouse=True)
def _loopback_alias():
    """127.0.0.2 is loopback on Linux; skip where it is not."""
    import socket

    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    yield

