"""A closed-loop HTTP/1.1 load generator for the service bench, run as its own process.

Why not threads with a sync client inside the bench: eight Python threads sharing one
GIL with the benchmark (and an HTTP client that costs about as much CPU per request as
the server) measured the client as much as the server. Here ``clients`` coroutines each
hold one keep-alive connection and send their next request as soon as the previous
answer is read, on one event loop (uvloop when installed) in a separate process, with
requests written and responses read by hand: a few tens of microseconds of CPU each.

    python -m benchmarks.loadgen HOST PORT PATHS.json CLIENTS PER_CLIENT [STAGGER_S]

PATHS.json is a list of request targets (``/api/search?q=...``); client k sends
``paths[(k * PER_CLIENT + i) % len(paths)]`` for i < PER_CLIENT. Prints one JSON object:
per-request latencies in ms, errors, wall seconds and this process's CPU seconds.
Responses are asked for gzipped, like a browser or httpx would, and are not decoded.

Client k starts (and connects) ``k * STAGGER_S`` seconds after the first (default 10 ms):
with several uvicorn workers on one listening socket, the worker that wakes first
accepts every connection pending, so 8 connections opened in one burst would all land on
one worker and stay there (keep-alive) — a worst case no real traffic has, where
clients arrive over time and a busy worker is not the one that accepts.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time


class HttpError(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one response; handles Content-Length and chunked."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HttpError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    length = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if chunked:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # the last chunk's CRLF (no trailers sent)
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
        return status, bytes(body), keep_alive
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep_alive


async def run(host: str, port: int, paths: list[str], clients: int, per_client: int, stagger_s: float = 0.01) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    head = (
        f"Host: {host}:{port}\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\n"
        "User-Agent: papers-bench\r\n\r\n"
    ).encode()

    async def client(k: int) -> None:
        await asyncio.sleep(k * stagger_s)
        reader = writer = None
        for i in range(per_client):
            path = paths[(k * per_client + i) % len(paths)]
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + head)
                status, body, keep_alive = await _read_response(reader)
                if status != 200:
                    errors.append(f"{status} {path[:120]}")
                if not keep_alive:
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError) as e:
                errors.append(f"{type(e).__name__} {path[:120]}")
                if writer is not None:
                    writer.close()
                reader = writer = None
            latencies.append((time.perf_counter() - t0) * 1000.0)
        if writer is not None:
            writer.close()

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    return {"latencies_ms": latencies, "errors": errors, "wall_s": wall, "client_cpu_s": _cpu_s() - cpu0}


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    host, port, paths_file, clients, per_client = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    stagger_s = float(sys.argv[6]) if len(sys.argv) > 6 else 0.01
    with open(paths_file, encoding="utf-8") as f:
        paths = json.load(f)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(host, port, paths, clients, per_client, stagger_s))))


if __name__ == "__main__":
    main()
