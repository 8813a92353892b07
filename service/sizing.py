"""How many worker processes `papers serve` starts when it is not told: one per core
(at most :data:`MAX_DEFAULT_WORKERS`), fewer where memory is too small for them.

Why one per core: the engine's Python holds the GIL for most of a search, so one process
keeps about one core busy (the service bench times 1 worker and the default).

Why memory enters: every worker holds its own Python objects (≈ 0.2 GB at 100k papers,
0.33 GB at 1M), while the index files a search reads (HNSW graphs, BM25 segments) are
shared page cache. Measured at 1M in a hard 2 GB limit (performance.md): one worker
serves hybrid search at full speed, two leave too little page cache for both graphs and
hybrid slows to less than half. So the default stops adding workers once the mapped
index plus the workers' own memory would pass the memory this process may use (its
cgroup limit, else the machine's RAM).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.errors import IndexUnavailable

if TYPE_CHECKING:  # `papers serve --help` should not pay for pydantic-settings
    from indexer.settings import Settings

#: Most worker processes `papers serve` starts by itself (one per core up to this).
MAX_DEFAULT_WORKERS = 2
#: A worker's own (anonymous) memory: fitted to the service bench, 201 MB at 100k papers
#: and 335 MB at 1M with both dense spaces → 186 MB + 149 bytes a paper.
WORKER_BASE_BYTES = 186 * 2**20
WORKER_BYTES_PER_PAPER = 149
_NO_LIMIT = 2**60  # cgroup v1 reports "no limit" as a huge number


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _NO_LIMIT else None


def memory_limit_bytes(proc: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory this process may use: the smallest limit of its memory cgroup and the
    cgroup's ancestors (v2 ``memory.max``, v1 ``memory.limit_in_bytes``), and the
    machine's RAM; None when none can be read (not Linux)."""
    limits: list[int] = []
    try:
        for line in (proc / "self" / "cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":  # v2 unified hierarchy
                base, name = cgroup_root, "memory.max"
            elif "memory" in controllers.split(","):
                base, name = cgroup_root / "memory", "memory.limit_in_bytes"
            else:
                continue
            here = Path(path.strip("/"))
            for part in [here, *here.parents]:
                value = _read_int(base / part / name)
                if value is not None:
                    limits.append(value)
    except (OSError, ValueError):
        pass
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                limits.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    return min(limits) if limits else None


def index_bytes(settings: Settings) -> tuple[int, int]:
    """(bytes of the published index files a search maps or reads — the BM25 directory,
    the HNSW graphs and their projections — and the number of papers); (0, 0) before
    the first build. The manifest is the one the engine serves (the previous one when
    the current is corrupt)."""
    from indexer.paths import (  # heavy: pydantic (papers --help)
        bm25_path,
        current_manifest,
        embeddings_path,
    )

    try:
        manifest = current_manifest(settings)
    except IndexUnavailable:  # both manifests corrupt: the engine reports it; size as empty
        return 0, 0
    total = 0
    bm25 = bm25_path(settings)
    if manifest.version and bm25.is_dir():
        total += sum(p.stat().st_size for p in bm25.rglob("*") if p.is_file())
    for model, info in manifest.embeddings.items():
        for name in info.get("files", {}):
            if name.startswith(("ann-", "proj-")):
                try:
                    total += (embeddings_path(settings, model) / name).stat().st_size
                except OSError:
                    pass
    return total, int(manifest.docs)


@dataclass(frozen=True)
class WorkerPlan:
    workers: int
    cores: int
    memory_limit: int | None
    index_bytes: int
    worker_bytes: int

    @property
    def reason(self) -> str:
        """Why fewer workers than cores ('' when not)."""
        want = min(self.cores, MAX_DEFAULT_WORKERS)
        if self.workers >= want or self.memory_limit is None:
            return ""
        gb = 2**30
        return (f"{self.workers} worker{'s' if self.workers > 1 else ''} instead of {want}: the index files searches read "
                f"({self.index_bytes / gb:.1f} GB) and {want} workers' own memory ({want * self.worker_bytes / gb:.1f} GB) "
                f"would pass the {self.memory_limit / gb:.1f} GB this process may use; --workers overrides")


def plan_workers(cores: int, memory_limit: int | None, index: int, papers: int) -> WorkerPlan:
    per_worker = WORKER_BASE_BYTES + WORKER_BYTES_PER_PAPER * papers
    n = max(1, min(cores, MAX_DEFAULT_WORKERS))
    if memory_limit is not None:
        while n > 1 and index + n * per_worker > memory_limit:
            n -= 1
    return WorkerPlan(n, cores, memory_limit, index, per_worker)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_workers(settings: Settings | None = None) -> WorkerPlan:
    """The worker plan for this host and, when given, the index ``settings`` publish to."""
    index, papers = index_bytes(settings) if settings is not None else (0, 0)
    return plan_workers(usable_cores(), memory_limit_bytes(), index, papers)
