"""Artifacts are published atomically: written beside their final name, then renamed.

Why one helper: every file a reader may open while a writer replaces it (the manifest,
the embedding stores' files, the ANN graphs, the embedding progress file, the tokenizer
stamp, the learnt term table) must be seen whole or not at all. ``os.replace`` within one
directory gives that; ``fsync`` of the file before, and of the directory after, makes the
new contents survive a power cut too (``durable``). A failed write removes its temp file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def fsync_dir(path: Path) -> None:
    """Make the renames in directory ``path`` durable (best effort: not every file
    system can fsync a directory)."""
    try:
        fd = os.open(path, os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextmanager
def replacing(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """A temp path beside ``path`` for the ``with`` block to write (by name: for
    libraries that save to a path); on success it replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, durable: bool = True) -> None:
    """``write(file_object)`` into a temp file beside ``path``, then replace ``path``."""
    with replacing(path, durable=durable) as tmp, open(tmp, "wb") as f:
        write(f)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``."""
    atomic_write(path, lambda f: f.write(data), durable=durable)
