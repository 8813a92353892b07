"""`papers serve`: the HTTP API and web UI through uvicorn (app factory mode)."""

from __future__ import annotations

import os

import click

from indexer.settings import get_settings

#: Most worker processes `papers serve` starts by itself. Each holds its own Python objects
#: (≈ 0.2 GB at 100k papers, 0.33 GB at 1M with both embedding spaces); the BM25 index, the
#: vectors, the HNSW graphs, the id table and the query models' weights are files shared
#: through the page cache.
MAX_DEFAULT_WORKERS = 2


def default_workers() -> int:
    """Worker processes when --workers is not given: one per CPU this process may use, at
    most MAX_DEFAULT_WORKERS. The engine's Python holds the GIL for most of a search, so
    one process keeps about one core busy; the service bench times 1 and this many."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 for all)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help=f"Worker processes, each with its own Python objects in memory (≈ 0.33 GB at 1M papers; "
                   f"index, graphs and model weights are shared) [default: one per CPU core, at most {MAX_DEFAULT_WORKERS}]")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (a reverse proxy usually does; it costs CPU per request)")
@click.option("--reload", "auto_reload", is_flag=True, help="Restart on code changes (development)")
def serve_command(host: str, port: int, workers: int | None, access_log: bool, auto_reload: bool) -> None:
    """Serve the JSON API (/api, /openapi.json), web UI and Atom feeds.

    The index is opened lazily and followed as `papers build`/`nightly` publish new
    versions (by every worker on its own); /readyz says when it is loaded. --reload
    runs one worker.
    """
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1 if auto_reload else (workers or default_workers()),
        reload=auto_reload,
        log_level=settings.log_level.lower(),
        access_log=access_log,
        proxy_headers=True,
        server_header=False,
    )


COMMANDS: list[click.Command] = [serve_command]
