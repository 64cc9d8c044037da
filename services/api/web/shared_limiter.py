"""A fixed-window rate limiter whose counters live in shared memory, so the
API's worker processes (API_WORKERS > 1) enforce one limit per client
together instead of one each.

Counters sit in an anonymous shared mapping created before the workers are
forked: a hash table of ``SLOTS`` entries (client hash, window start,
count), probed linearly; a full probe run evicts its oldest window. All
access is under one cross-process lock (a POSIX semaphore); a hit costs a
few microseconds. CLOCK_MONOTONIC is system-wide on Linux, so window starts
compare across processes.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import multiprocessing
import struct
import time

from services.api.web.ratelimit import Decision, decide

SLOT = struct.Struct("=QdI4x")  # key hash, window start, hit count
SLOTS = 65536
PROBES = 16


def slot_hash(key: str) -> int:
    """A client key's 64-bit slot hash in a shared-memory table, never 0
    (0 marks an empty slot). Also used by routes/admin_backoff.py."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") | 1


class SharedFixedWindowLimiter:
    def __init__(self, limit: int, window: int = 60, *, slots: int = SLOTS, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self._slots = slots
        self._clock = clock
        self._memory = mmap.mmap(-1, SLOT.size * slots)  # MAP_SHARED | MAP_ANONYMOUS
        self._lock = multiprocessing.get_context("fork").Lock()

    def _slot_for(self, key_hash: int, now: float) -> tuple[int, float, int]:
        """(offset, start, count) of the key's slot, claiming one if needed."""
        memory, size = self._memory, SLOT.size
        first = key_hash % self._slots
        oldest_offset, oldest_start = -1, math.inf
        for probe in range(PROBES):
            offset = ((first + probe) % self._slots) * size
            stored_hash, start, count = SLOT.unpack_from(memory, offset)
            if stored_hash == key_hash:
                return offset, start, count
            if stored_hash == 0 or now - start >= self.window:
                return offset, now, 0
            if start < oldest_start:
                oldest_offset, oldest_start = offset, start
        return oldest_offset, now, 0

    def hit(self, key: str) -> Decision:
        key_hash = slot_hash(key)
        now = self._clock()
        with self._lock:
            offset, start, count = self._slot_for(key_hash, now)
            if now - start >= self.window:
                start, count = now, 0
            count += 1
            SLOT.pack_into(self._memory, offset, key_hash, start, count)
        return decide(self.limit, self.window, start, count, now)
