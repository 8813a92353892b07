"""PublishedIndex: the published index version a reader follows, loaded and warm.

Why apart from the engine: following ``manifest.json`` (a cheap stat per request), loading
a new version beside the old one and swapping it in by one attribute assignment, and
keeping the query models loaded are the same whatever is ranked; the engine
(:mod:`indexer.search.engine`) only asks for the loaded version (:meth:`PublishedIndex.require`).
A running service switches versions without a restart or a failed request; a corrupt new
version is refused and the loaded one keeps serving.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from indexer.embed_progress import describe, read_progress
from indexer.errors import IndexUnavailable
from indexer.lexical.bm25 import BM25Index
from indexer.manifest import Manifest, manifest_stamp
from indexer.paths import bm25_path, current_manifest, embeddings_path
from indexer.search.caches import SERVING_ENTRIES
from indexer.settings import Settings
from indexer.text.keywords import DocFreqs, KeywordExtractor

# Logged under the engine's name, as before PublishedIndex was split out of it: operators
# (and tests/test_cli_startup.py) read "indexer.search.engine loaded index version N".
log = logging.getLogger("indexer.search.engine")


@dataclass
class PublishedVersion:
    """Everything that belongs to one published version."""

    manifest: Manifest
    stamp: tuple[int, int] | None
    bm25: Any
    stores: dict[str, Any]


class PublishedIndex:
    """The loaded version (:attr:`state`: None before the first build) and the models that
    answer queries against it (embedders per space, the keyword extractor)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self.state: PublishedVersion | None = None
        self._embedders: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._warm_on_switch = False  # set by warm_up(): only a service that warmed up once
        self._extractor = None
        self._extractor_version = -1
        self.load()

    # -- versions --------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state is not None and self.state.manifest.version > 0

    @property
    def version(self) -> int:
        return self.state.manifest.version if self.state else 0

    def require(self) -> PublishedVersion:
        state = self.state
        if state is None:
            raise IndexUnavailable("no index has been built yet: run `papers build`")
        return state

    def index_problem(self) -> str | None:
        """Why the loaded version cannot answer what its manifest promises (None: it can).
        More papers than the manifest is fine: a build committed and has not published yet."""
        state = self.state
        if state is None:
            return "no index has been published yet"
        docs = state.bm25.num_docs
        if docs < state.manifest.docs:
            return f"the BM25 index holds {docs} papers but version {state.manifest.version} has {state.manifest.docs}"
        return None

    def reload_if_changed(self) -> bool:
        stamp = manifest_stamp(self.settings.index_dir)
        if self.state is not None and stamp == self.state.stamp:
            return False
        with self._lock:
            if self.state is not None and manifest_stamp(self.settings.index_dir) == self.state.stamp:
                return False
            return self.load()

    def load(self) -> bool:
        """Load the published version if it is not the loaded one; True when it switched."""
        stamp = manifest_stamp(self.settings.index_dir)
        manifest = current_manifest(self.settings)
        if self.state is not None and manifest.version == self.state.manifest.version:
            self.state.stamp = stamp
            return False
        if manifest.version == 0:
            self.state = None
            return False
        stores = self._load_stores(manifest)
        new_spaces = set(stores) - set(self._embedders)
        self.state = PublishedVersion(manifest=manifest, stamp=stamp, bm25=self._load_bm25(), stores=stores)
        log.info("loaded index version %d (%d docs)", manifest.version, manifest.docs)
        if new_spaces and self._warm_on_switch:
            # a version that brings a new embedding space (the first build with embeddings):
            # load its model beside the serving threads, not inside the next search
            threading.Thread(target=self._warm_up_quietly, name="papers-warm-up", daemon=True).start()
        return True

    def _load_stores(self, manifest: Manifest) -> dict[str, Any]:
        """The embedding stores of ``manifest``; a refused one keeps the loaded version of that space."""
        stores: dict[str, Any] = {}
        for model, info in manifest.embeddings.items():
            try:
                # heavy: numpy and the vector indexes, loaded once a dense space is published
                from indexer.dense.embeddings import EmbeddingStore

                store = EmbeddingStore(embeddings_path(self.settings, model), model)
                store.load(info, readonly=True)
                stores[model] = store
            except IndexUnavailable as e:
                old = self.state.stores.get(model) if self.state else None
                log.error("embeddings for %s refused (%s); %s", model, e, "keeping the loaded version" if old else "dense search off")
                if old is not None:
                    stores[model] = old
        loaded = list(stores.values())
        for i, store in enumerate(loaded):  # one id list for spaces over the same papers
            any(store.share_ids(first) for first in loaded[:i])
        return stores

    def _load_bm25(self) -> Any:
        """The BM25 index: the loaded one reloaded when it is the same directory, else opened."""
        if self.state is not None and self.state.bm25.path == bm25_path(self.settings):
            bm25 = self.state.bm25
            bm25.reload()
            return bm25
        return BM25Index.open(bm25_path(self.settings), readonly=True)

    # -- models ---------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load each embedding model the published version uses, and the keyword
        extractor, so the first search does not pay seconds of model loading."""
        self._warm_on_switch = True
        state = self.state
        if state is None:
            return
        for space in state.stores:
            self.embedder(space).encode(["warm up"])
        self.extractor()

    def _warm_up_quietly(self) -> None:
        try:
            self.warm_up()
        except Exception:  # noqa: BLE001 - a failed warm-up only means the next search loads it
            log.warning("background model warm-up failed", exc_info=True)

    def embedder(self, model: str):
        found = self._embedders.get(model)
        if found is not None:
            return found
        with self._model_lock:  # one load per model, whichever thread asks first
            if model not in self._embedders:
                # heavy: numpy, and the model's own libraries
                from indexer.dense.embeddings import get_query_embedder

                self._embedders[model] = get_query_embedder(
                    model, device=self.settings.embedding_device, encoder=self.settings.query_encoder,
                    cache_dir=self.settings.data_dir / "cache", precision=self.settings.embed_precision,
                    threads=self.settings.embed_threads)
            return self._embedders[model]

    def extractor(self):
        """The keyword extractor over the loaded version's document frequencies (rebuilt when the version changes)."""
        state = self.state
        version = state.manifest.version if state else 0
        if self._extractor is None or self._extractor_version != version:
            if state is not None and state.bm25.num_docs:
                df = DocFreqs.from_index(state.bm25, cache_limit=SERVING_ENTRIES)
            else:
                df = DocFreqs.shipped()
            self._extractor = KeywordExtractor(df, cache_limit=SERVING_ENTRIES)  # indexer.search.caches
            self._extractor_version = version
        return self._extractor

    def embedding_build(self) -> dict[str, Any] | None:
        """The last embedding build's progress (:mod:`indexer.embed_progress`), if any."""
        build = read_progress(self.settings.index_dir)
        return None if build is None else {**build, "summary": describe(build)}
