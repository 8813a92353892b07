"""`papers serve`: the HTTP API and web UI through uvicorn (app factory mode)."""

from __future__ import annotations

import click

from service.commands import get_settings
from service.sizing import MAX_DEFAULT_WORKERS, default_workers


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 for all)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help=f"Worker processes, each with its own Python objects in memory (≈ 0.33 GB at 1M papers; "
                   f"index, graphs and model weights are shared) [default: one per CPU core, at most "
                   f"{MAX_DEFAULT_WORKERS}, fewer where the index and the workers would not fit in memory]")
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
    if workers is None and not auto_reload:
        plan = default_workers(settings)
        workers = plan.workers
        if plan.reason:
            click.echo(f"papers serve: {plan.reason}", err=True)
    from service.protocol import http_protocol

    uvicorn.run(
        "service.app:create_app",
        factory=True,
        http=http_protocol(),
        host=host,
        port=port,
        workers=1 if auto_reload else workers,
        reload=auto_reload,
        log_level=settings.log_level.lower(),
        access_log=access_log,
        # X-Forwarded-For names the client only when it comes from a configured proxy
        proxy_headers=bool(settings.trusted_proxies.strip()),
        forwarded_allow_ips=settings.trusted_proxies.strip() or None,
        server_header=False,
    )


COMMANDS: list[click.Command] = [serve_command]
