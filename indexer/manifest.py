"""The published index version: ``data_dir/index/manifest.json``.

Why a manifest: the BM25 index (tantivy) commits atomically on its own, but a "version"
of the product spans several artifacts (BM25 commit, embedding files, keyword rows).
The builder writes every artifact first, then replaces the manifest in one
``os.replace``; readers only ever switch to what a manifest names, and verify the
checksums it records, so a crash or a truncated file never becomes visible.

The previous manifest is kept as ``manifest.prev.json`` so a reader that finds the
current one corrupt can fall back to it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexer.atomic import atomic_write_bytes
from indexer.errors import IndexUnavailable

MANIFEST_NAME = "manifest.json"
PREVIOUS_NAME = "manifest.prev.json"


@dataclass
class Manifest:
    version: int = 0
    built_seq: int = 0
    created_at: str = ""
    docs: int = 0
    bm25_dir: str = "bm25"
    # model name -> {"dir", "files": {name: sha256}, "count", "dim"}
    embeddings: dict[str, dict[str, Any]] = field(default_factory=dict)
    checksum: str = ""

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("checksum", None)
        return d


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20, drop_cache: bool = False) -> str:
    """``drop_cache``: tell the kernel the pages just read are not needed again, for a
    multi-GB file that is only checksummed (a served store's vectors, read row by row
    later): otherwise verifying it at start-up fills the page cache, and a memory limit,
    with pages that push out the ones searches need (the graphs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
        if drop_cache and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return h.hexdigest()


def _parse(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexUnavailable(f"index manifest {path} is unreadable: {e}") from e
    if not isinstance(raw, dict):
        raise IndexUnavailable(f"index manifest {path} is not an object")
    checksum = raw.pop("checksum", "")
    if checksum != _digest(raw):
        raise IndexUnavailable(f"index manifest {path} failed its checksum (truncated or edited)")
    known = {k: raw[k] for k in Manifest.__dataclass_fields__ if k in raw}
    return Manifest(**known, checksum=checksum)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The current manifest; None when nothing was published yet.

    Raises IndexUnavailable when the manifest exists but is corrupt (callers may then
    try :func:`read_previous_manifest`).
    """
    path = index_dir / MANIFEST_NAME
    if not path.exists():
        return None
    return _parse(path)


def read_previous_manifest(index_dir: Path) -> Manifest | None:
    path = index_dir / PREVIOUS_NAME
    if not path.exists():
        return None
    return _parse(path)


def write_manifest(index_dir: Path, manifest: Manifest) -> Manifest:
    """Publish ``manifest`` atomically; the old one becomes ``manifest.prev.json``."""
    manifest.created_at = datetime.now(UTC).isoformat(timespec="seconds")
    body = manifest.body()
    manifest.checksum = _digest(body)
    data = json.dumps({**body, "checksum": manifest.checksum}, indent=2, sort_keys=True).encode()
    current = index_dir / MANIFEST_NAME
    if current.exists():
        try:
            _parse(current)
            atomic_write_bytes(index_dir / PREVIOUS_NAME, current.read_bytes())
        except IndexUnavailable:
            pass  # never keep a corrupt manifest as the fallback
    atomic_write_bytes(current, data)
    return manifest


def manifest_stamp(index_dir: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of the manifest: a cheap per-request change check."""
    try:
        st = (index_dir / MANIFEST_NAME).stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)
