"""Progress of an embedding build, written by the build and read by the service and CLI.

Why a file: the build (``papers build`` in the background, or the nightly job) and the
service's workers are separate processes, often started separately. A small JSON file in
the index directory, replaced atomically after every slice of papers, is something every
one of them can read without a lock or a connection: the search page, ``/api/stats`` and
``papers stats`` show how far the build is and when it should end, and a search that
cannot use a dense space yet says so instead of posing as hybrid.

A build that died leaves ``"state": "running"`` behind; :func:`read_progress` reports it
as ``"interrupted"`` when its process is gone (same host) or it has not written for
``STALE_S`` seconds.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from indexer.atomic import atomic_write_bytes

FILE = "embed-progress.json"
STALE_S = 1800.0  # no write for this long: the build is not running any more
WRITE_EVERY_S = 2.0  # at most one write per this many seconds (each replaces a small file)


def progress_path(index_dir: Path) -> Path:
    return Path(index_dir) / FILE


def _now() -> float:
    return time.time()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class ProgressWriter:
    """The embedding phase of one build: ``start_model``, ``advance``, ``finish_model``,
    then ``close`` (``"done"``) or ``fail``. Models not yet started are assumed to need
    as many papers as the first one (the build computes each model's work only when it
    gets to it), so the share and the estimate cover the whole phase."""

    def __init__(self, index_dir: Path, models: list[str]):
        self.path = progress_path(index_dir)
        self.started = _now()
        self.models: list[dict[str, Any]] = [
            {"model": m, "state": "pending", "done": 0, "total": None, "seeded": 0} for m in models
        ]
        self.state = "running"
        self._embed_s = 0.0  # seconds spent embedding (not loading models or seeding)
        self._embedded = 0
        self._slice_t: float | None = None
        self._last_write = 0.0
        self.write(force=True)

    def _model(self, name: str) -> dict[str, Any]:
        return next(m for m in self.models if m["model"] == name)

    def start_model(self, name: str, total: int, seeded: int = 0) -> None:
        """``total`` papers lacked a vector; ``seeded`` of them were taken from a seed file."""
        m = self._model(name)
        m.update(state="running", total=int(total), done=int(seeded), seeded=int(seeded))
        self._slice_t = _now()
        self.write(force=True)

    def advance(self, name: str, n: int) -> None:
        now = _now()
        if self._slice_t is not None:
            self._embed_s += now - self._slice_t
        self._slice_t = now
        self._embedded += n
        self._model(name)["done"] += n
        self.write()

    def finish_model(self, name: str) -> None:
        m = self._model(name)
        m["state"] = "done"
        if m["total"] is not None:
            m["done"] = m["total"]
        self._slice_t = None
        self.write(force=True)

    def close(self) -> None:
        self.state = "done"
        self.write(force=True)

    def fail(self, message: str) -> None:
        self.state = "failed"
        self.write(force=True, message=message[:300])

    def snapshot(self) -> dict[str, Any]:
        known = [m["total"] for m in self.models if m["total"] is not None]
        guess = known[0] if known else 0
        total = sum(m["total"] if m["total"] is not None else guess for m in self.models)
        done = sum(m["done"] for m in self.models)
        rate = self._embedded / self._embed_s if self._embed_s > 0 and self._embedded else None
        left = max(0, total - done)
        eta = round(left / rate, 1) if rate and self.state == "running" else (0.0 if not left else None)
        return {
            "state": self.state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": _iso(self.started),
            "updated_at": _iso(_now()),
            "updated_ts": round(_now(), 3),
            "done": int(done),
            "total": int(total),
            "share": round(done / total, 4) if total else (1.0 if self.state == "done" else 0.0),
            "docs_per_s": round(rate, 2) if rate else None,
            "eta_s": eta,
            "models": [dict(m) for m in self.models],
        }

    def write(self, force: bool = False, **extra: Any) -> None:
        now = _now()
        if not force and now - self._last_write < WRITE_EVERY_S:
            return
        self._last_write = now
        payload = {**self.snapshot(), **extra}
        try:  # readers see the old file or the new one, never half (not fsynced: a progress note)
            atomic_write_bytes(self.path, json.dumps(payload).encode("utf-8"), durable=False)
        except OSError:  # progress is informative: a full disk must not fail the build here
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def read_progress(index_dir: Path) -> dict[str, Any] | None:
    """The last recorded embedding build, or None when none was recorded (or the file is
    unreadable). A ``"running"`` build whose process is gone or that stopped writing
    is reported as ``"interrupted"``."""
    try:
        data = json.loads(progress_path(index_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("state") == "running":
        same_host = data.get("host") == socket.gethostname()
        gone = same_host and isinstance(data.get("pid"), int) and not _alive(data["pid"])
        stale = _now() - float(data.get("updated_ts") or 0) > STALE_S
        if gone or stale:
            data["state"] = "interrupted"
            data["eta_s"] = None
    return data


def describe(progress: dict[str, Any] | None) -> str:
    """One line for people: ``"42% done, about 3 min left"``."""
    if not progress:
        return ""
    share = float(progress.get("share") or 0.0)
    text = f"{share:.0%} done ({progress.get('done', 0):,} of {progress.get('total', 0):,} vectors)"
    eta = progress.get("eta_s")
    if progress.get("state") == "running" and eta is not None:
        text += f", about {format_duration(float(eta))} left"
    elif progress.get("state") in ("interrupted", "failed"):
        text += f", {progress['state']}: run `papers build` to finish it"
    return text


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
