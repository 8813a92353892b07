"""How routes reach the search engine and the settings.

The engine is opened lazily and kept in ``app.state``: a service started before the first
build (or over a broken data directory) still answers ``/healthz`` and says why it is not
ready, and becomes ready by itself once an index is published — every request first
asks the engine to follow the published manifest (a cheap stat).

:func:`get_engine` is an async dependency: when the engine is open and the manifest has
not changed since it was last followed (a stat, microseconds), it answers on the event
loop; opening and reloading (slow, blocking) go to the threadpool. A sync dependency
would cost every request an extra threadpool round trip. Routes take the engine as
:data:`EngineDep` (``engine: EngineDep``): typed, so a reader (and mypy) follows the route
into :class:`indexer.search.engine.SearchEngine`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from indexer.errors import IndexUnavailable, PapersError, StorageError
from indexer.manifest import manifest_stamp
from indexer.search.engine import SearchEngine
from indexer.settings import Settings

log = logging.getLogger(__name__)

RETRY_OPEN_AFTER_S = 5.0


class EngineHolder:
    """Opens :class:`indexer.search.engine.SearchEngine` on first use and retries after failures."""

    def __init__(self, settings: Settings, engine: SearchEngine | None = None):
        self.settings = settings
        self._engine = engine
        self._lock = threading.Lock()
        self._last_error: PapersError | None = None
        self._last_try = 0.0
        # (engine, manifest stamp it has followed): what current() may hand out unchecked
        self._followed: tuple[SearchEngine, tuple[int, int] | None] | None = None

    def get(self) -> SearchEngine:
        """The engine, opened and following the published manifest (may block: threadpool)."""
        engine = self._engine
        if engine is None:
            engine = self._open()
        try:
            stamp = manifest_stamp(self.settings.index_dir)  # before: a change after it is seen next time
            engine.reload_if_changed()
        except PapersError as e:  # a corrupt new version: keep serving the loaded one
            log.warning("index reload refused: %s", e.message)
        except OSError as e:
            log.warning("index reload failed: %s", e)
        else:
            self._followed = (engine, stamp)
        return engine

    def current(self) -> SearchEngine | None:
        """The engine without blocking: when it is open and the manifest is the one it
        followed last; None when :meth:`get` has work to do (open, reload, retry)."""
        followed = self._followed
        if followed is None:
            return None
        try:
            stamp = manifest_stamp(self.settings.index_dir)
        except OSError:
            return None
        return followed[0] if stamp == followed[1] else None

    def _open(self) -> SearchEngine:
        with self._lock:
            if self._engine is not None:
                return self._engine
            if self._last_error is not None and time.monotonic() - self._last_try < RETRY_OPEN_AFTER_S:
                raise self._last_error
            self._last_try = time.monotonic()
            try:
                self._engine = SearchEngine.open(self.settings)
                self._last_error = None
                return self._engine
            except PapersError as e:
                self._last_error = e
            except OSError as e:
                reason = e.strerror or str(e)
                where = f": {e.filename}" if getattr(e, "filename", None) else ""
                self._last_error = StorageError(f"data directory unusable ({reason}{where})")
            except Exception as e:  # e.g. sqlalchemy OperationalError on a broken data dir
                log.exception("could not open the search engine")
                self._last_error = IndexUnavailable(f"the index could not be opened: {type(e).__name__}")
            raise self._last_error


async def get_engine(request: Request) -> SearchEngine:
    """FastAPI dependency: the current engine (raises a 503 PapersError when unavailable)."""
    holder: EngineHolder = request.app.state.engines
    engine = holder.current()
    if engine is None:
        engine = await run_in_threadpool(holder.get)
    return engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


#: A route's engine parameter: ``engine: EngineDep``.
EngineDep = Annotated[SearchEngine, Depends(get_engine)]
