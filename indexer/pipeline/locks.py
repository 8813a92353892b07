"""One index writer at a time: an ``fcntl.flock`` lock file under ``data_dir/locks/``.

Why flock and not a PID file: the kernel drops the lock when the holder dies, even on
SIGKILL or a power cut, so a crashed nightly never blocks the next one and no stale
lock has to be cleaned by hand. ``papers build`` and ``papers nightly`` both take the
``index`` lock; a second one fails at once with :class:`AlreadyRunning` (exit code 75,
``EX_TEMPFAIL``: cron wrappers treat it as "try again later", not as a failure).

The lock file is never deleted: unlinking a lock file while another process waits on
it lets two processes hold "the" lock on two different inodes.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from indexer.errors import AlreadyRunning, StorageError
from indexer.settings import Settings

LOCK_DIR_NAME = "locks"


def lock_path(settings: Settings, name: str = "index") -> Path:
    """Where the lock called ``name`` lives (``data_dir/locks/<name>.lock``)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid lock name {name!r}")
    return settings.data_dir / LOCK_DIR_NAME / f"{name}.lock"


def holder(settings: Settings, name: str = "index") -> str:
    """What the current holder wrote into the lock file ("pid=... started=..."), or ''."""
    try:
        return lock_path(settings, name).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _open_lock_file(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno in (errno.ENOTDIR, errno.EEXIST):
            reason = "a path component is not a directory"
        raise StorageError(f"cannot create lock file {path}: {reason}") from e


@contextmanager
def run_lock(settings: Settings, name: str = "index") -> Iterator[Path]:
    """Hold the ``name`` lock for the ``with`` block, or raise AlreadyRunning at once.

    Non-blocking by design: a nightly that finds another run in progress has nothing
    to add, so it should exit immediately rather than queue up behind it.
    """
    path = lock_path(settings, name)
    fd = _open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(settings, name)
            detail = f" ({who})" if who else ""
            raise AlreadyRunning(
                f"another index run holds {path}{detail}; this run exits without doing anything"
            ) from None
        stamp = f"pid={os.getpid()} started={datetime.now(UTC).isoformat(timespec='seconds')}\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, stamp.encode(), 0)
        except OSError:
            pass  # the note is informational only; the flock is what counts
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
