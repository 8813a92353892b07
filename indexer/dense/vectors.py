"""Nearest-neighbour search over L2-normalised float32 vectors (cosine = dot product).

Why two implementations: an exact numpy matrix product over a few hundred thousand
384-dim vectors takes tens of milliseconds and has perfect recall, so it is the default.
Above ``ANN_THRESHOLD`` rows the scan cost grows linearly and a usearch HNSW graph takes
over (recall@10 against exact, latency, build time and memory: ``papers bench --only
vectors``, benchmarks/bench_dense.py). Both answer the same ``search(vec, k, exclude_rows)``
so the store does not care which one it holds.

Why usearch with int8 graph vectors + exact re-scoring: at 100k (connectivity 32,
expansion_add 128, same vectors and queries) it matched hnswlib and faiss HNSWFlat on
recall@10 (0.9945 vs 0.9968 / 0.9947 at expansion 320) and latency (0.68 vs 0.71 /
0.83 ms), built fastest (20 s vs 35 / 33 CPU s) and keeps 1 byte per dimension instead of
4. Without re-scoring int8 plateaus at recall 0.92 (quantisation reorders close
neighbours); the 32 re-scored candidates fix that. Spaces wider than 256 dimensions keep
PCA projections in the graph instead (``HNSW_GRAPH_DIMS``, :class:`Projection`): a
fifth to a third less graph memory for 0.017 of recall@10, see the constants below.
"""

from __future__ import annotations

import io
import mmap
import os
from collections.abc import Collection
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from indexer.atomic import atomic_write_bytes, replacing

ANN_THRESHOLD = 300_000  # rows; below it exact search is fast enough and exact
# Measured at 1M MiniLM-like vectors, real-text queries (benchmarks/bench_dense.py sweep,
# docs/architecture.md "Dense search at scale"): connectivity 16 reached recall@10 0.952
# only at expansion 384; 32 reaches 0.961 at 256 and 0.977 at 384 for +100 MB. int8 graph
# vectors: same recall as f16, half the build time (512 vs 961 CPU s) and memory.
HNSW_CONNECTIVITY = 32
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 320
HNSW_DTYPE = "i8"  # the graph's copy of the vectors; exact float32 re-scoring restores the scores
HNSW_RERANK = 32  # candidates taken from the graph and re-scored exactly (at least k)
# The graph's copy of each vector is its PCA projection to this many dimensions when the
# space has more (MiniLM 384, USE 512), re-normalised; the float32 rows re-score the
# candidates, so returned scores stay exact cosines. Why: the int8 vectors are over half the
# graph (384 and 512 of its ~0.66 and ~0.79 KB per paper), and the graphs are most of the
# service's memory at 1M. Measured at 1M (docs/architecture.md "Dense search at scale").
HNSW_GRAPH_DIMS = 256
# A projected graph orders candidates less exactly: search wider, re-score more. At 1M
# (MiniLM-like vectors, 400 real-text queries; `papers bench --corpus 1m --only vectors`):
# recall@10 0.954 at expansion 512 with 256 re-scored (0.917 at 256; 0.868 re-scoring 32),
# p50 1.69 ms; the full-dimension graph had 0.971 at expansion 320 with 32, 1.41 ms.
# Deep lists (the engine fuses 200 candidates a run) need 3k: recall@200 0.854 (0.60 with
# 200 re-scored, 0.76 with 400; full-dimension graph 0.860 with 200), p50 2.08 ms.
# Graph file 532 MB instead of 660 (MiniLM) and 786 (USE).
HNSW_EXPANSION_SEARCH_PROJECTED = 512
HNSW_RERANK_PROJECTED = 256
HNSW_OVERSAMPLE_PROJECTED = 3  # a projected graph re-scores at least 3k candidates for k
PCA_SAMPLE = 100_000  # rows the projection is fitted on (seeded sample; the full matrix below it)
PCA_SEED = 20261127


_BLAS = None


def one_blas_thread():
    """Context: numpy's BLAS on one thread (threadpoolctl; ~10 µs). One query is a
    memory-bound matrix-vector product: a second thread buys little when a core is free
    and, on this shared 2-core machine, costs a lot when it is not (1M rows: 111 ms with
    1 thread vs 118 ms with 2; 300k: 17 vs 33 ms, load ~6.6). The other core is left to
    the next request."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import (
                ThreadpoolController,  # heavy: optional (a missing package means no limit)
            )

            _BLAS = ThreadpoolController().select(user_api="blas")
        except Exception:  # noqa: BLE001 - threadpoolctl missing or odd BLAS: no limit
            _BLAS = False
    if _BLAS is False:
        return nullcontext()
    return _BLAS.limit(limits=1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (argpartition, then a small sort)."""
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class ExactIndex:
    """Brute-force cosine search: one matrix-vector product."""

    kind = "exact"

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def search(self, vec: np.ndarray, k: int, exclude_rows: Collection[int] = ()) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        with one_blas_thread():
            scores = self.matrix @ np.asarray(vec, dtype=np.float32)
        if exclude_rows:
            scores = scores.copy()
            scores[np.fromiter(exclude_rows, dtype=np.int64)] = -np.inf
        rows = top_k(scores, k + len(exclude_rows))
        return [(int(r), float(scores[r])) for r in rows if np.isfinite(scores[r])][:k]

    def search_many(self, vecs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Batch queries (evaluation): one matrix-matrix product per chunk of queries."""
        out: list[list[tuple[int, float]]] = []
        for s in range(0, len(vecs), 256):
            scores = np.asarray(vecs[s : s + 256], dtype=np.float32) @ self.matrix.T
            for row in scores:
                idx = top_k(row, k)
                out.append([(int(r), float(row[r])) for r in idx])
        return out


class RowFile:
    """Rows of a float32 ``.npy`` matrix read on demand (one row with ``pread``, a search's
    rows through a mapping that lives for one call, see :meth:`_gather`): what a served
    store with a graph re-scores from.

    Why not a memory map: a search re-scores a few hundred scattered rows, but every
    fault on a mapping of cached file pages maps the 64 KB around it too (the kernel's
    fault-around, which ignores MADV_RANDOM), so after a thousand searches a 1M-row
    mapping had 1.4 GB of the 1.5 GB file in the process's resident set. Copying just the
    rows keeps the file in the page cache, shared and reclaimable, and out of every
    worker's RSS.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = npy.read_magic(f)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self._offset = f.tell()
        if fortran or len(shape) != 2 or np.dtype(dtype) != np.float32:
            raise ValueError(f"{path}: expected a C-ordered 2-d float32 array, got {dtype} {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(np.float32)
        self._row_bytes = self.shape[1] * 4
        self._fd = os.open(self.path, os.O_RDONLY)
        if hasattr(os, "posix_fadvise"):  # rows are read at random: no readahead around each one,
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)  # which filled the page cache with unread rows

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _row(self, r: int) -> bytes:
        if not 0 <= r < self.shape[0]:
            raise IndexError(f"row {r} outside 0..{self.shape[0] - 1}")
        data = os.pread(self._fd, self._row_bytes, self._offset + r * self._row_bytes)
        if len(data) != self._row_bytes:
            raise OSError(f"{self.path}: short read at row {r} (file truncated?)")
        return data

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            return np.frombuffer(self._row(int(rows)), dtype=np.float32).copy()
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(idx) == 0:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        if int(idx.min()) < 0 or int(idx.max()) >= self.shape[0]:
            bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
            raise IndexError(f"row {bad} outside 0..{self.shape[0] - 1}")
        return self._gather(idx)

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        """The rows ``idx`` copied out of a mapping that lives for this call only.

        Why not one ``pread`` per row: each releases and retakes the GIL, and a related
        lookup re-scores its 256 embedding candidates on a side thread while the request's
        own thread runs Python; every retake then waited for that thread's switch interval
        (5 ms), so the 1M re-scoring took ~25 ms instead of ~2.5. One numpy gather holds
        the GIL once. Unmapped on return, the mapping leaves nothing in the resident set
        (the reason the rows are not mapped for good, above)."""
        need = self._offset + self.shape[0] * self._row_bytes
        if os.fstat(self._fd).st_size < need:
            raise OSError(f"{self.path}: short read: the file ends before row {self.shape[0] - 1} (file truncated?)")
        with mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) as mm:
            view = np.frombuffer(mm, dtype=np.float32, count=self.shape[0] * self.shape[1], offset=self._offset)
            out = view.reshape(self.shape)[idx]  # fancy indexing copies
            del view
        return out

    def read_all(self) -> np.ndarray:
        return np.load(self.path, allow_pickle=False)


class Projection:
    """PCA projection of a space onto its top principal directions, for the graph only.

    ``apply`` centres, projects and re-normalises, so inner products in the projected
    space approximate cosines in the full one well enough to nominate candidates, which
    the full vectors then re-score. Saved as one float32 array: the (D, d) basis with the
    (d,) offset ``mean @ basis`` as its last row."""

    def __init__(self, basis: np.ndarray, offset: np.ndarray):
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)
        self.offset = np.ascontiguousarray(offset, dtype=np.float32).reshape(-1)
        if self.basis.ndim != 2 or self.offset.shape[0] != self.basis.shape[1]:
            raise ValueError(f"projection basis {self.basis.shape} and offset {self.offset.shape} disagree")

    @property
    def dims(self) -> int:
        return int(self.basis.shape[1])

    @property
    def source_dims(self) -> int:
        return int(self.basis.shape[0])

    @classmethod
    def fit(cls, matrix: np.ndarray, dims: int, sample: int = PCA_SAMPLE, seed: int = PCA_SEED) -> Projection:
        n = len(matrix)
        if n < 2 or not 0 < dims < matrix.shape[1]:
            raise ValueError(f"cannot project {n} rows of {matrix.shape[1]} dims to {dims}")
        rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)) if n > sample else slice(None)
        x = np.asarray(matrix[rows], dtype=np.float64)
        mean = x.mean(axis=0)
        x -= mean
        _, vecs = np.linalg.eigh(x.T @ x)  # ascending eigenvalues: the last columns lead
        basis = vecs[:, ::-1][:, :dims]
        return cls(basis, mean @ basis)

    def apply(self, vecs: np.ndarray) -> np.ndarray:
        out = np.asarray(vecs, dtype=np.float32).reshape(-1, self.source_dims) @ self.basis - self.offset
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.maximum(norms, 1e-12, out=norms)
        return np.ascontiguousarray(out / norms, dtype=np.float32)

    def save(self, path: Path) -> None:
        """Atomic, like the graph: temp file, fsync, rename (a few hundred KB)."""
        buf = io.BytesIO()
        np.save(buf, np.vstack([self.basis, self.offset[None, :]]), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> Projection:
        arr = np.load(path, allow_pickle=False)
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise ValueError(f"{path}: not a projection (shape {arr.shape})")
        return cls(arr[:-1], arr[-1])


class HNSWIndex:
    """usearch HNSW graph keyed by row number, re-scored exactly against the matrix.

    The graph holds its own int8 copy of the vectors, PCA-projected when a
    :class:`Projection` is given; it only nominates candidates. The top candidates are
    re-scored with the float32 matrix, so returned scores are exact cosines and
    ties/order match :class:`ExactIndex`.
    """

    kind = "hnsw"

    def __init__(self, index, matrix: np.ndarray, expansion_search: int | None = None,
                 projection: Projection | None = None):
        self.index = index
        self.matrix = matrix
        self.projection = projection
        if expansion_search is None:
            expansion_search = HNSW_EXPANSION_SEARCH_PROJECTED if projection is not None else HNSW_EXPANSION_SEARCH
        self.expansion_search = int(expansion_search)
        self.index.expansion_search = self.expansion_search
        self.rerank = HNSW_RERANK_PROJECTED if projection is not None else HNSW_RERANK

    @property
    def params(self) -> dict:
        return {"connectivity": int(self.index.connectivity), "expansion_add": int(self.index.expansion_add),
                "expansion_search": self.expansion_search, "dtype": str(self.index.dtype).rsplit(".", 1)[-1].lower(),
                "rerank": self.rerank, "graph_dims": int(self.index.ndim)}

    def _graph_vectors(self, vecs: np.ndarray) -> np.ndarray:
        if self.projection is None:
            return np.ascontiguousarray(vecs, dtype=np.float32)
        return self.projection.apply(vecs)

    @classmethod
    def build(cls, matrix: np.ndarray, threads: int = 0, connectivity: int | None = None, expansion_add: int | None = None,
              expansion_search: int | None = None, dtype: str | None = None, graph_dims: int | None = None) -> HNSWIndex:
        """``graph_dims``: project to this many dimensions when the matrix has more
        (default ``HNSW_GRAPH_DIMS``; 0 keeps the full vectors)."""
        from usearch.index import Index  # heavy: 0.1 s, only where a graph is built or loaded

        dims = HNSW_GRAPH_DIMS if graph_dims is None else int(graph_dims)
        # (a covariance needs clearly more rows than dimensions; real stores have 300k+)
        projection = Projection.fit(matrix, dims) if 0 < dims < matrix.shape[1] <= len(matrix) // 2 else None
        index = Index(
            ndim=projection.dims if projection is not None else int(matrix.shape[1]),
            metric="ip",
            dtype=dtype or HNSW_DTYPE,
            connectivity=connectivity or HNSW_CONNECTIVITY,
            expansion_add=expansion_add or HNSW_EXPANSION_ADD,
            expansion_search=expansion_search or HNSW_EXPANSION_SEARCH,
        )
        built = cls(index, matrix, expansion_search, projection)
        step = 65_536  # projected in slices: never a second full-size copy of the matrix
        for start in range(0, len(matrix), step):
            rows = np.arange(start, min(start + step, len(matrix)), dtype=np.uint64)
            index.add(rows, built._graph_vectors(matrix[start : start + step]), threads=threads or (os.cpu_count() or 1))
        return built

    @classmethod
    def load(cls, path: Path, matrix: np.ndarray, view: bool = False, projection: Projection | None = None) -> HNSWIndex:
        """``view``: memory-map the graph file read-only instead of reading it. The
        serving path uses it: the graph (0.66 GB at 1M MiniLM vectors) then lives in the
        page cache, shared by every worker, instead of in each worker's own memory. A
        viewed graph cannot be updated; the builder loads it fully. ``projection``: the
        one the graph was built with (saved beside it), else the graph holds full vectors."""
        from usearch.index import Index  # heavy: 0.1 s, only where a graph is built or loaded

        index = Index.restore(str(path), view=view)
        if index is None or len(index) != len(matrix):
            raise ValueError(f"ANN index {path} does not match the vectors ({0 if index is None else len(index)} vs {len(matrix)})")
        want = projection.dims if projection is not None else int(matrix.shape[1])
        if int(index.ndim) != want or (projection is not None and projection.source_dims != matrix.shape[1]):
            raise ValueError(f"ANN index {path} has {index.ndim} dims, its vectors and projection give {want}")
        return cls(index, matrix, None, projection)

    def save(self, path: Path) -> None:
        """Atomic: save to a temp file in the same directory, fsync, rename."""
        with replacing(path) as tmp:
            self.index.save(str(tmp))

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def update(self, rows: np.ndarray, matrix: np.ndarray, threads: int = 0) -> None:
        """Insert (or replace) ``rows`` of ``matrix``, the grown/updated store matrix;
        rows keep their numbers, so only appended or rewritten rows are allowed."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(matrix)):
            raise ValueError("rows outside the matrix")
        keys = rows.astype(np.uint64)
        present = keys[np.asarray(self.index.contains(keys), dtype=bool)] if keys.size else keys
        if present.size:
            self.index.remove(present)
        if keys.size:
            self.index.add(keys, self._graph_vectors(matrix[rows]), threads=threads or (os.cpu_count() or 1))
        self.matrix = matrix
        if len(self.index) != len(matrix):
            raise ValueError(f"ANN index holds {len(self.index)} rows, the matrix {len(matrix)}")

    def drop(self, rows: np.ndarray, keep: np.ndarray, matrix: np.ndarray) -> None:
        """Delete ``rows`` and renumber the kept rows ``keep`` (ascending) to 0..len-1, the
        row numbers of the compacted ``matrix``. Renaming in ascending order never
        collides: each new key is below every key not yet renamed."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = np.asarray(keep, dtype=np.int64)
        if len(keep) != len(matrix):
            raise ValueError("keep and matrix disagree")
        if rows.size:
            self.index.remove(rows.astype(np.uint64))
        new = np.arange(len(keep), dtype=np.int64)
        moved = keep != new
        if moved.any():
            renamed = self.index.rename(keep[moved].astype(np.uint64), new[moved].astype(np.uint64))
            if int(np.sum(renamed)) != int(moved.sum()):
                raise ValueError("ANN index is missing rows that should be renamed")
        self.matrix = matrix
        if len(self.index) != len(matrix):
            raise ValueError(f"ANN index holds {len(self.index)} rows, the matrix {len(matrix)}")

    def _rescore(self, vec: np.ndarray, keys: np.ndarray, k: int, exclude_rows: Collection[int]) -> list[tuple[int, float]]:
        rows = np.asarray(keys, dtype=np.int64)
        if exclude_rows:
            rows = rows[~np.isin(rows, np.fromiter(exclude_rows, dtype=np.int64, count=len(exclude_rows)))]
        if rows.size == 0:
            return []
        scores = self.matrix[rows] @ vec
        order = np.lexsort((rows, -scores))[:k]  # best first; equal scores by row, like ExactIndex
        return [(int(rows[i]), float(scores[i])) for i in order]

    def _want(self, k: int, excluded: int) -> int:
        depth = k * HNSW_OVERSAMPLE_PROJECTED if self.projection is not None else k
        return min(len(self), max(depth, self.rerank) + excluded)

    def search(self, vec: np.ndarray, k: int, exclude_rows: Collection[int] = ()) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        vec = np.asarray(vec, dtype=np.float32).reshape(-1)
        matches = self.index.search(self._graph_vectors(vec)[0] if self.projection else vec, self._want(k, len(exclude_rows)))
        return self._rescore(vec, matches.keys, k, exclude_rows)

    def search_many(self, vecs: np.ndarray, k: int, threads: int = 0) -> list[list[tuple[int, float]]]:
        """Batch queries (evaluation): one usearch batch call on ``threads`` threads."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if len(self) == 0 or k <= 0 or len(vecs) == 0:
            return [[] for _ in range(len(vecs))]
        matches = self.index.search(self._graph_vectors(vecs), self._want(k, 0), threads=threads or (os.cpu_count() or 1))
        keys, counts = np.atleast_2d(matches.keys), np.atleast_1d(matches.counts)
        return [self._rescore(v, keys[i, : counts[i]], k, ()) for i, v in enumerate(vecs)]


def build_index(matrix: np.ndarray, ann_threshold: int = ANN_THRESHOLD) -> ExactIndex | HNSWIndex:
    """Exact below the threshold, HNSW at or above it."""
    if len(matrix) >= ann_threshold:
        return HNSWIndex.build(matrix)
    return ExactIndex(matrix)
