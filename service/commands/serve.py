"""`papers serve`: the HTTP API and web UI through uvicorn (app factory mode)."""

from __future__ import annotations

import click

from indexer.settings import get_settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 for all)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes")
@click.option("--reload", "auto_reload", is_flag=True, help="Restart on code changes (development)")
def serve_command(host: str, port: int, workers: int, auto_reload: bool) -> None:
    """Serve the JSON API (/api, /openapi.json), web UI and Atom feeds.

    The index is opened lazily and followed as `papers build`/`nightly` publish new
    versions; /readyz says when it is loaded.
    """
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers if not auto_reload else 1,
        reload=auto_reload,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
    )


COMMANDS: list[click.Command] = [serve_command]
