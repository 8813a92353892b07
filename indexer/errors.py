"""Errors that users can cause. One hierarchy, mapped once to HTTP (service/errors.py)
and once to CLI exit codes (service/cli.py): never a stack trace for bad input."""

from __future__ import annotations


class PapersError(Exception):
    """Base class: ``code`` is a stable machine-readable slug."""

    code = "error"
    http_status = 400
    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidInput(PapersError):
    code = "invalid_input"
    http_status = 422
    exit_code = 2


class InvalidQuery(InvalidInput):
    code = "invalid_query"


class NotFound(PapersError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class PayloadTooLarge(PapersError):
    code = "payload_too_large"
    http_status = 413
    exit_code = 2


class IndexUnavailable(PapersError):
    """No index built yet, or the index on disk failed its checksum."""

    code = "index_unavailable"
    http_status = 503
    exit_code = 4


class DenseUnavailable(IndexUnavailable):
    """``mode=dense`` while the dense space the query needs is not built (yet): a clear
    503 saying why and how far the embedding build is, never 200 with nothing."""

    code = "dense_unavailable"
    public = True  # the engine writes this message for users (mode, progress): no paths or internals


class UpstreamError(PapersError):
    """arXiv (or a stand-in) failed after retries."""

    code = "upstream_error"
    http_status = 502
    exit_code = 5


class HarvestDeadline(UpstreamError):
    """A harvest ran past ``PAPERS_HARVEST_DEADLINE``; its progress is stored (resumable)."""

    code = "harvest_deadline"


class AlreadyRunning(PapersError):
    """Another nightly/build holds the lock. Exit code 75 (EX_TEMPFAIL) for cron."""

    code = "already_running"
    http_status = 409
    exit_code = 75


class StorageError(PapersError):
    """Data directory unreadable, unwritable or full."""

    code = "storage_error"
    http_status = 503
    exit_code = 6
