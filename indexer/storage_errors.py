"""Recognise a failure of the storage itself (disk full, permission denied, read-only
file system, I/O error) wherever it surfaces, and describe it in one line.

Why one place: the same full disk reaches the code as an ``OSError`` (Python writes),
as SQLite's "database or disk is full" inside a SQLAlchemy ``OperationalError``, or as
a ``ValueError`` whose text carries tantivy's ``IoError``. Every `papers` command maps
all three to :class:`indexer.errors.StorageError` (exit code 6, ``error: …``, no
traceback); see :func:`as_storage_error`. A run that publishes (build, nightly, backfill)
says so in its own words through :func:`storage_errors`; an ``OSError`` is described by
:func:`os_error_reason` wherever it is turned into a StorageError.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

from indexer.errors import PapersError, StorageError

#: OSError numbers that mean "the storage refused": what an operator has to fix.
STORAGE_ERRNOS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EIO: "I/O error",
    errno.ENOTDIR: "a path component is not a directory",
    errno.EISDIR: "is a directory",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files",
}

#: Texts of SQLite (and of tantivy's IoError) that carry the same meaning.
STORAGE_TEXTS = (
    ("database or disk is full", "disk full"),
    ("no space left on device", "disk full"),
    ("storagefull", "disk full"),
    ("readonly database", "read-only database or file system"),
    ("read-only file system", "read-only file system"),
    ("readonlyfilesystem", "read-only file system"),
    ("permission denied", "permission denied"),
    ("permissiondenied", "permission denied"),
    ("unable to open database file", "the database file cannot be opened"),
    ("disk i/o error", "I/O error"),
)


def _chain(exc: BaseException, limit: int = 12):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < limit:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def storage_reason(exc: BaseException) -> str | None:
    """Why ``exc`` (or an exception it was raised from) is a storage failure, or None."""
    for e in _chain(exc):
        if isinstance(e, StorageError):
            return e.message
        if isinstance(e, OSError) and not isinstance(e, ConnectionError | TimeoutError):
            if e.errno in STORAGE_ERRNOS:
                where = f" ({e.filename})" if getattr(e, "filename", None) else ""
                return STORAGE_ERRNOS[e.errno] + where
        text = str(getattr(e, "orig", None) or e).lower()
        if isinstance(e, OSError | ValueError) or type(e).__name__ in ("OperationalError", "DatabaseError"):
            for needle, reason in STORAGE_TEXTS:
                if needle in text:
                    return reason
    return None


def as_storage_error(exc: BaseException, what: str = "the command") -> StorageError | None:
    """A StorageError for ``exc`` when it is a storage failure (else None)."""
    if isinstance(exc, StorageError):
        return exc
    reason = storage_reason(exc)
    if reason is None:
        return None
    return StorageError(f"{what} failed: {reason}; nothing that was committed is lost, re-run after fixing the storage")


def os_error_reason(e: OSError) -> str:
    """What went wrong, in the system's words ("disk full" for a full disk)."""
    return "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn disk-full / unreadable-directory failures into one clear StorageError."""
    try:
        yield
    except PapersError:
        raise
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        raise StorageError(f"{what} failed: {os_error_reason(e)}{where}; the published index was left as it was") from e
    except OperationalError as e:
        msg = str(e.orig) if e.orig is not None else str(e)
        raise StorageError(f"{what} failed: database error: {msg}; nothing was lost") from e
