"""Limits of a real `papers serve` (uvicorn, 2 workers, on loopback), on by default.

* HEAD answers wherever GET does (status and headers of the GET, no body);
* a long URL gets the documented JSON 414 (not uvicorn's plain-text 400);
* oversized request heads (one endless header, too many headers) get a JSON 431 and the
  connection is closed, and the workers' memory stays flat while 4 connections each
  try to send 64 MB of headers;
* the rate limit holds across workers with a new connection per request, and a spoofed
  ``X-Forwarded-For`` does not open a new bucket (no proxy is configured).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.nightly_support import base_settings, cli_env, papers_cmd

WORKERS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, settings, tmp_path: Path, **env: str):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (tmp_path / f"serve-{self.port}.log").open("w")
        self.proc = subprocess.Popen(
            papers_cmd("serve", "--port", str(self.port), "--workers", str(WORKERS)),
            env=cli_env(settings, **env), cwd=str(tmp_path), stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200 and len(self.workers()) == WORKERS:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail("server did not become ready")

    def workers(self) -> list[int]:
        kids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    kids.append(int(d))
        return [k for k in kids if "spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")]

    def rss_mb(self) -> float:
        total = 0
        for pid in self.workers():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return base_settings(tmp_path_factory.mktemp("limits") / "d", n=200)


@pytest.fixture(scope="module")
def server(data, tmp_path_factory):
    s = Server(data, tmp_path_factory.mktemp("serve"), PAPERS_RATE_LIMIT="0")
    yield s
    s.stop()


def _raw(port: int, head: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_head_works_where_get_does(server):
    for path in ("/healthz", "/readyz", "/api/search?q=neural", "/api/stats", "/", "/static/app.css", "/openapi.json"):
        get = httpx.get(server.base + path)
        head = httpx.head(server.base + path)
        assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
        assert head.content == b""
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
    assert httpx.head(server.base + "/api/keywords").status_code == 405  # POST only


@pytest.mark.parametrize("kb", [33, 40, 64, 1024])
def test_long_urls_get_the_json_414(server, kb):
    out = _raw(server.port, b"GET /api/search?q=" + b"x" * (kb * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414"), out[:200]
    assert b"application/json" in out.split(b"\r\n\r\n")[0]
    assert b'"uri_too_long"' in out


def test_too_many_headers_get_a_json_431(server):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    out = _raw(server.port, head)
    assert out.startswith(b"HTTP/1.1 431"), out[:200]
    assert b'"headers_too_large"' in out


def _flood(port: int, total: int, results: list) -> None:
    """Send a request head that never ends: one header of ``total`` bytes."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent, block = 0, b"a" * 65536
            try:
                while sent < total:
                    sock.sendall(block)
                    sent += len(block)
            except OSError:
                pass  # the server closed the connection: what we want
            try:
                results.append((sent, sock.recv(4096)))
            except OSError as e:
                results.append((sent, repr(e).encode()))
    except OSError as e:
        results.append((0, repr(e).encode()))


def test_oversized_headers_are_refused_with_flat_worker_memory(server):
    before = server.rss_mb()
    results: list = []
    threads = [threading.Thread(target=_flood, args=(server.port, 64 << 20, results)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = server.rss_mb()
    print(f"\nworkers' RSS {before:.0f} MB before, {after:.0f} MB after 4 x 64 MB header floods")
    assert len(results) == 4
    for sent, answer in results:
        # what the server read and dropped, plus the sockets' buffers: far from 64 MB
        assert sent < (32 << 20), f"the server read {sent} bytes of one header"
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"" or b"Reset" in answer, answer[:200]
    assert after - before < 50, f"workers grew from {before:.0f} to {after:.0f} MB"
    # an oversized head that the client stops sending gets its JSON 431
    out = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 << 10) + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431") and b'"headers_too_large"' in out, out[:200]
    assert httpx.get(server.base + "/healthz").status_code == 200


def test_rate_limit_is_shared_by_the_workers_and_ignores_spoofed_forwarding(data, tmp_path):
    s = Server(data, tmp_path, PAPERS_RATE_LIMIT="60")
    try:
        t0 = time.monotonic()
        codes, retry = [], []
        for i in range(150):  # a new connection per request: spread over both workers
            r = httpx.get(f"{s.base}/api/stats", headers={"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "rate_limited"
                retry.append(int(r.headers["Retry-After"]))
        elapsed = time.monotonic() - t0
        allowed = codes.count(200)
        assert set(codes) <= {200, 429}
        assert allowed <= 60 + elapsed + 2, f"{allowed} of 150 through in {elapsed:.1f}s with a limit of 60/min"
        assert allowed >= 55 and retry and min(retry) >= 1
        assert httpx.get(f"{s.base}/healthz").status_code == 200  # health checks are never limited
    finally:
        s.stop()
