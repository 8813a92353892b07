"""The FastAPI application factory: JSON API, web UI, feeds and static files in one app.

``papers serve`` runs ``create_app`` through uvicorn (factory mode); tests call it with
their own settings and engine. Middleware order, outermost first: security headers →
catch-all 500 → HEAD as GET → size limits → rate limit → time budget → CORS → gzip → routes.
Limits on the request head (URL length, header size and count) are enforced earlier, by
the HTTP protocol ``papers serve`` runs (:mod:`service.protocol`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from indexer.search.caches import size_for_serving
from indexer.search.engine import SearchEngine
from indexer.settings import Settings, get_settings
from service import api, feeds, web
from service.api_docs import mount_api_docs
from service.deps import EngineHolder
from service.errors import CatchAllMiddleware, install_error_handlers
from service.middleware import (
    HeadAsGetMiddleware,
    RateLimitMiddleware,
    SecurityHeadersMiddleware,
    SizeLimitMiddleware,
    TimeBudgetMiddleware,
)

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger(__name__)

DESCRIPTION = """Search and recommendation for arXiv papers.

Every error has the shape `{"error": {"code": "...", "message": "..."}}`.
Limits: `q` ≤ 1000 characters, `size` ≤ 100, `page × size` ≤ 1000 (the result window),
request bodies ≤ 256 KB (413), `text` ≤ 200,000 characters, `liked`/`disliked` ≤ 100 ids,
query strings ≤ 32 KB (414), request headers ≤ 100 and 64 KB (431). A per-client rate limit
(600 a minute by default) answers 429 with Retry-After. HEAD is answered wherever GET is.
See docs/api.md for examples."""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the index at start-up so the first request does not pay for it; a failure is
    not fatal (the service reports it on /readyz and retries on later requests)."""
    try:
        engine = await run_in_threadpool(app.state.engines.get)
        warm_up = getattr(engine, "warm_up", None)
        if warm_up is not None:
            await run_in_threadpool(warm_up)
    except Exception as e:  # noqa: BLE001 - reported by /readyz
        log.warning("search engine not available at start-up: %s", getattr(e, "message", e))
    # Long-lived objects (index readers, tokenizer and snippet caches) would otherwise be
    # re-traversed by every full garbage collection: tens of ms at the tail of latency.
    # Freeze what start-up built and collect the young generation less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(SWITCH_INTERVAL)
    yield


#: How long a thread holding the GIL runs before a waiting one gets it (Python's default:
#: 5 ms). A search releases and retakes the GIL many times (tantivy, SQLite, the socket);
#: beside a CPU-bound request in the same worker (keyword extraction over 200k characters),
#: each retake waited up to 5 ms, and another client's search p50 went from 6 ms to 25-31
#: ms in 2 of 4 runs of tests/test_abusive_client.py. With 1 ms the heavy request gives
#: way sooner.
SWITCH_INTERVAL = 0.001


#: glibc malloc arenas a worker may create. By default every thread that allocates can get
#: its own (up to 8 per core), and the threadpool's threads each keep theirs: measured
#: at 1M (one worker, 8 clients, BM25 then hybrid), two arenas hold 333 MB of anonymous
#: memory against 357 MB, at the same latency and CPU per request.
MALLOC_ARENAS = 2


def limit_malloc_arenas(n: int = MALLOC_ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, n)`` on glibc; False elsewhere (musl, macOS): nothing to do."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-8, n))  # -8: M_ARENA_MAX in <malloc.h>
    except (OSError, AttributeError):
        return False


def create_app(settings: Settings | None = None, engine: SearchEngine | None = None) -> FastAPI:
    """Build the app. ``engine`` (a SearchEngine) is opened lazily from ``settings`` when omitted."""
    settings = settings or get_settings()
    limit_malloc_arenas()
    size_for_serving()  # a worker's text caches stay small (indexer.search.caches)
    app = FastAPI(
        lifespan=_lifespan,
        title="papers",
        version="1.0",
        description=DESCRIPTION,
        docs_url=None,  # /docs is Swagger UI from local files (service/api_docs.py)
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engines = EngineHolder(settings, engine)

    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(web.router)
    mount_api_docs(app)  # before /static: its assets live under /static/api-docs
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_error_handlers(app, html_renderer=web.render_error)

    # added innermost first
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type"],
            max_age=600,
        )
    if settings.request_timeout > 0:
        app.add_middleware(TimeBudgetMiddleware, seconds=settings.request_timeout)
    if settings.rate_limit > 0:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit,
                           shared_path=settings.data_dir / "locks" / f"ratelimit-{settings.rate_limit}.buckets",
                           concurrency=settings.client_concurrency)
    app.add_middleware(SizeLimitMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: even a 500 carries the headers
    return app
