"""Nearest-neighbour search over L2-normalised float32 vectors (cosine = dot product).

Why two implementations: an exact numpy matrix product over a few hundred thousand
384-dim vectors takes tens of milliseconds and has perfect recall, so it is the default.
Above ``ANN_THRESHOLD`` rows the scan cost grows linearly and a usearch HNSW graph takes
over (measured recall@10 against exact is in docs/quality-retrieval.md). Both answer
the same ``search(vec, k, exclude_rows)`` so the store does not care which one it holds.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from pathlib import Path

import numpy as np

ANN_THRESHOLD = 300_000  # rows; below it exact search is fast enough and exact
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 128


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


class HNSWIndex:
    """usearch HNSW graph keyed by row number; cosine metric on the stored vectors."""

    kind = "hnsw"

    def __init__(self, index, matrix: np.ndarray):
        self.index = index
        self.matrix = matrix

    @classmethod
    def build(cls, matrix: np.ndarray, threads: int = 0) -> HNSWIndex:
        from usearch.index import Index

        index = Index(
            ndim=int(matrix.shape[1]),
            metric="ip",
            dtype="f32",
            connectivity=HNSW_CONNECTIVITY,
            expansion_add=HNSW_EXPANSION_ADD,
            expansion_search=HNSW_EXPANSION_SEARCH,
        )
        if len(matrix):
            index.add(np.arange(len(matrix), dtype=np.uint64), matrix, threads=threads or (os.cpu_count() or 1))
        return cls(index, matrix)

    @classmethod
    def load(cls, path: Path, matrix: np.ndarray) -> HNSWIndex:
        from usearch.index import Index

        index = Index.restore(str(path), view=False)
        if index is None or len(index) != len(matrix):
            raise ValueError(f"ANN index {path} does not match the vectors ({0 if index is None else len(index)} vs {len(matrix)})")
        index.expansion_search = HNSW_EXPANSION_SEARCH
        return cls(index, matrix)

    def save(self, path: Path) -> None:
        """Atomic: save to a temp file in the same directory, fsync, rename."""
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            self.index.save(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def search(self, vec: np.ndarray, k: int, exclude_rows: Collection[int] = ()) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        want = min(len(self), k + len(exclude_rows))
        matches = self.index.search(np.asarray(vec, dtype=np.float32), want)
        out = []
        for key, dist in zip(matches.keys, matches.distances, strict=False):
            row = int(key)
            if row in exclude_rows:
                continue
            out.append((row, float(1.0 - dist)))  # usearch "ip" distance = 1 - dot
            if len(out) == k:
                break
        return out

    def search_many(self, vecs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        return [self.search(v, k) for v in vecs]


def build_index(matrix: np.ndarray, ann_threshold: int = ANN_THRESHOLD) -> ExactIndex | HNSWIndex:
    """Exact below the threshold, HNSW at or above it."""
    if len(matrix) >= ann_threshold:
        return HNSWIndex.build(matrix)
    return ExactIndex(matrix)
