"""Where the published artifacts live, and which version is published.

Why a module of its own, beside :mod:`indexer.manifest`: the read path (the search
engine, ``papers`` sizing, the verifier, nightly's backlog count) needs to find the BM25
index, the embedding stores and the current manifest, and must not import the builder
(:mod:`indexer.pipeline.build`) for three helpers. Both sides import these from here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from indexer.errors import IndexUnavailable
from indexer.manifest import Manifest, read_manifest, read_previous_manifest
from indexer.settings import Settings

log = logging.getLogger(__name__)


def dense_models(settings: Settings) -> list[str]:
    """Embedding spaces the build maintains: the main model and the multilingual one."""
    names = [settings.embedding_model]
    if settings.multilingual_model and settings.multilingual_model not in names:
        names.append(settings.multilingual_model)
    return [n for n in names if n]


#: The BM25 index's schema version (indexer.lexical.bm25's fields). A tantivy index keeps the schema
#: it was created with, so each version lives in its own directory: a new build fills the new
#: one from the database while a running service keeps answering from the old one. Stated
#: here, not in indexer.lexical.bm25, so the read path finds the index without importing tantivy.
BM25_SCHEMA_VERSION = 2
BM25_INDEX_DIR = f"bm25-s{BM25_SCHEMA_VERSION}"


def bm25_path(settings: Settings) -> Path:
    return settings.index_dir / BM25_INDEX_DIR


def embeddings_path(settings: Settings, model: str) -> Path:
    safe = model.replace("/", "_").replace(":", "_")
    return settings.index_dir / "embeddings" / safe


def current_manifest(settings: Settings) -> Manifest:
    """The published manifest, falling back to the previous one if it is corrupt (and to
    "nothing published" when both are)."""
    try:
        m = read_manifest(settings.index_dir)
    except IndexUnavailable as e:
        log.error("%s; falling back to the previous version", e)
        try:
            m = read_previous_manifest(settings.index_dir)
        except IndexUnavailable as e2:  # both broken: as if nothing was published (build repairs)
            log.error("%s; no readable index version", e2)
            m = None
    return m or Manifest()
