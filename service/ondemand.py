"""A paper by id, fetched from arXiv on demand when it is not in the database yet.

Like Cool Papers' ``/arxiv/<id>``: any valid id can be opened. Only with
``PAPERS_ONLINE_FETCH=true``; otherwise an unknown id is a plain 404. The fetched
record goes through the one write path (``indexer.ingest.store.upsert_papers``), so the next
build indexes it like any harvested paper.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from indexer.errors import NotFound
from indexer.ingest.arxiv_api import fetch_by_ids
from indexer.ingest.store import upsert_papers

if TYPE_CHECKING:
    from indexer.search.engine import SearchEngine
    from indexer.settings import Settings

log = logging.getLogger(__name__)

_fetch_lock = threading.Lock()  # one arXiv request at a time (arXiv's politeness rule)


def paper_or_fetch(engine: SearchEngine, settings: Settings, paper_id: str) -> dict[str, Any]:
    """``engine.paper(id)``; on NotFound, fetch it from arXiv if allowed, else re-raise."""
    try:
        return engine.paper(paper_id)
    except NotFound:
        if not settings.online_fetch:
            raise
    pid = engine.normalize_id(paper_id)
    with _fetch_lock:
        try:
            return engine.paper(pid)  # another request fetched it meanwhile
        except NotFound:
            pass
        records = fetch_by_ids(settings, [pid])
        if not records:
            raise NotFound(f"paper {pid} is neither in the index nor on arXiv")
        upsert_papers(engine.db, records)
        log.info("fetched %s from arXiv on demand", pid)
    return engine.paper(pid)
