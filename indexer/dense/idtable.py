"""Paper ids of a served embedding store, row → id and id → row, in two numpy arrays.

Why not a list and a dict: at 1M papers a list of str plus a dict of str → int is about
0.15 GB of Python objects in every service worker (measured: the two spaces' stores took
0.25 GB of anonymous memory per worker even with one shared table). Here the ids are one
fixed-width bytes array, and the id → row map is the order that sorts it plus the sorted
copy, searched by bisection: about 36 MB at 1M and a few microseconds a lookup. Builders
keep the list and dict (they append and remove); only read-only stores use this.

A store saves its table as one ``.npy`` (ids by row, then sorted) that the service maps
read-only: no JSON of a million ids to parse (its garbage left ~0.1 GB of fragmented heap
in every worker), and the pages are the page cache's, shared by the workers. Only the
sorting order (4 bytes an id) is recomputed in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class IdTable:
    """Immutable ids by row, with ``get(pid)`` → row (``None`` when absent)."""

    __slots__ = ("_ids", "_order", "_sorted")

    def __init__(self, ids: Sequence[str]):
        try:
            arr = np.array(ids, dtype=np.bytes_) if len(ids) else np.zeros(0, dtype="S1")
        except UnicodeEncodeError:  # not ASCII (never an arXiv id): store UTF-8 bytes
            arr = np.array([i.encode("utf-8") for i in ids], dtype=np.bytes_)
        self._set(arr, None)

    def _set(self, arr: np.ndarray, sorted_ids: np.ndarray | None) -> None:
        self._ids = arr
        self._order = np.argsort(arr, kind="stable").astype(np.int64 if len(arr) >= 2**31 else np.int32)
        self._sorted = arr[self._order] if sorted_ids is None else sorted_ids
        if len(arr) > 1 and bool((self._sorted[1:] == self._sorted[:-1]).any()):
            raise ValueError("ids are not unique")

    def save(self, file) -> None:
        """Write ids by row and sorted, as one (2, n) bytes array in ``.npy`` format
        (``file``: a path or a binary file object)."""
        np.save(file, np.stack([self._ids, self._sorted]) if len(self) else np.zeros((2, 0), dtype="S1"), allow_pickle=False)

    @classmethod
    def load(cls, path) -> IdTable:
        """A table saved by :meth:`save`, memory-mapped read-only."""
        both = np.load(path, mmap_mode="r", allow_pickle=False)
        if both.ndim != 2 or both.shape[0] != 2 or both.dtype.kind != "S":
            raise ValueError(f"{path} is not an id table")
        table = cls.__new__(cls)
        table._set(both[0], both[1])
        if len(table) and not np.array_equal(table._ids[table._order], table._sorted):
            raise ValueError(f"{path}: the sorted ids do not match the ids")
        return table

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, row: int) -> str:
        return bytes(self._ids[row]).decode("utf-8")

    def __iter__(self):
        return (bytes(b).decode("utf-8") for b in self._ids)

    def get(self, pid: str) -> int | None:
        try:
            key = pid.encode("utf-8")
        except (AttributeError, UnicodeEncodeError):
            return None
        if len(key) > self._ids.dtype.itemsize or not len(self._ids):
            return None
        i = int(np.searchsorted(self._sorted, key))
        if i < len(self._sorted) and self._sorted[i] == key:
            return int(self._order[i])
        return None

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and self.get(pid) is not None

    def rows(self, pids: Iterable[str]) -> set[int]:
        return {r for p in pids if (r := self.get(p)) is not None}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdTable):
            return self._ids.dtype == other._ids.dtype and np.array_equal(self._ids, other._ids)
        if isinstance(other, list | tuple):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container semantics: not hashable

    @property
    def nbytes(self) -> int:
        return int(self._ids.nbytes + self._order.nbytes + self._sorted.nbytes)
