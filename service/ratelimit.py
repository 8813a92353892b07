"""Token buckets shared by every worker process of a server, keyed by client address.

Why shared: buckets kept per worker let a client through N times the limit (a new
connection per request lands on another worker: 143 of 300 requests passed a limit of
60/min on 4 workers). The buckets live in a small memory-mapped file under
``data_dir/locks/`` that every worker maps; each take locks only its own slot
(``fcntl.lockf`` on 32 bytes), so workers never queue behind one another.

Layout: :data:`SLOTS` slots of ``(key hash, tokens, last refill time)``; a client's
address hashes to a slot and probes the next :data:`PROBES` ones, taking the first
that is its own, free, or full again (a bucket that has refilled completely holds no
state worth keeping). The clock is wall time (the same in every process, and across a
reboot); a clock that went backwards refills the bucket rather than freezing it. The
file name carries the limit, so changing ``PAPERS_RATE_LIMIT`` starts with full buckets.

The file is only bookkeeping: when it cannot be created (read-only data directory) the
limiter falls back to buckets in the worker's own memory and says so in the log.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SLOT = struct.Struct("<Qdd")  # key hash, tokens, last refill (monotonic seconds)
SLOT_BYTES = 32  # SLOT.size (24) padded: one slot never shares a lock range with another
SLOTS = 1 << 16
PROBES = 4


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest(), "little") or 1


class SharedTokenBuckets:
    """``per_minute`` requests a minute per key, bursts up to the same; see the module docstring."""

    def __init__(self, path: Path, per_minute: int, clock: Callable[[], float] = time.time):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        size = SLOTS * SLOT_BYTES
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)  # zero-filled: every slot free
        self._map = mmap.mmap(self._fd, size)
        self._local = threading.Lock()  # lockf ranges are per process: threads take this too

    def take(self, key: str) -> float:
        """0 when allowed (a token is used), else the seconds until one is available."""
        h = _key_hash(key)
        first = h % SLOTS
        now = self.clock()
        with self._local:
            for probe in range(PROBES):
                offset = ((first + probe) % SLOTS) * SLOT_BYTES
                fcntl.lockf(self._fd, fcntl.LOCK_EX, SLOT_BYTES, offset, os.SEEK_SET)
                try:
                    owner, tokens, last = SLOT.unpack_from(self._map, offset)
                    refill = (now - last) * self.rate if now >= last else self.capacity
                    if owner == h:
                        tokens = min(self.capacity, tokens + refill)
                    elif owner == 0 or tokens + refill >= self.capacity:
                        tokens = self.capacity  # a free slot, or one whose bucket is full again
                    else:
                        continue  # another client's live bucket: probe on
                    if tokens >= 1.0:
                        SLOT.pack_into(self._map, offset, h, tokens - 1.0, now)
                        return 0.0
                    SLOT.pack_into(self._map, offset, h, tokens, now)
                    return (1.0 - tokens) / self.rate
                finally:
                    fcntl.lockf(self._fd, fcntl.LOCK_UN, SLOT_BYTES, offset, os.SEEK_SET)
        # every probed slot holds another live client (an address flood): refuse briefly
        # rather than give this address a fresh bucket
        return 1.0 / self.rate

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class SharedClientSlots:
    """At most ``per_client`` requests of one client address in progress on the whole
    server (every worker), the others waiting their turn.

    Why across workers: a cap per worker still lets one client keep a heavy request
    running in every worker, and then every other client shares its worker's CPU with
    one. Each (address hash bucket, slot) is a lock file under ``directory``; a request
    holds one with a non-blocking ``flock`` (released by the kernel if the worker dies,
    so a crash never leaks a slot), and a request that finds all of its client's slots
    taken polls again a few milliseconds later. Two addresses sharing a bucket (1 in
    :data:`CLIENT_BUCKETS`) share its slots.
    """

    def __init__(self, directory: Path, per_client: int, max_open: int = 512):
        self.directory = directory
        self.per_client = per_client
        self.max_open = max_open
        directory.mkdir(parents=True, exist_ok=True)
        self._fds: dict[tuple[int, int], int] = {}
        self._held: set[tuple[int, int]] = set()  # flock is per open file: this process's holds

    def _fd(self, slot: tuple[int, int]) -> int:
        fd = self._fds.get(slot)
        if fd is None:
            if len(self._fds) >= self.max_open:  # close descriptors of slots not held
                for other in [s for s in self._fds if s not in self._held][: self.max_open // 2]:
                    os.close(self._fds.pop(other))
            fd = os.open(self.directory / f"{slot[0]:04x}.{slot[1]}", os.O_RDWR | os.O_CREAT, 0o644)
            self._fds[slot] = fd
        return fd

    def try_acquire(self, key: str) -> tuple[int, int] | None:
        """A free slot of ``key``'s client, now held; None when all are taken."""
        bucket = _key_hash(key) % CLIENT_BUCKETS
        for j in range(self.per_client):
            slot = (bucket, j)
            if slot in self._held:
                continue
            try:
                fcntl.flock(self._fd(slot), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self._held.add(slot)
            return slot
        return None

    async def acquire(self, key: str, timeout: float) -> tuple[int, int] | None:
        """Wait (polling) up to ``timeout`` seconds for a slot; None when none came free."""
        slot = self.try_acquire(key)
        pause, waited = 0.002, 0.0
        while slot is None and waited < timeout:
            await asyncio.sleep(pause)
            waited += pause
            pause = min(0.02, pause * 2)
            slot = self.try_acquire(key)
        return slot

    def release(self, slot: tuple[int, int]) -> None:
        self._held.discard(slot)
        fd = self._fds.get(slot)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)


CLIENT_BUCKETS = 4096
