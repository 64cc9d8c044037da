"""Back-off after wrong admin passwords, per client and for the whole node.

The per-route admin limits (ratelimit.ADMIN_LIMITS) bound how often one
address may ask; this bounds guessing itself. Each admin password check is
counted *before* its PBKDF2 runs, so parallel guesses cannot slip past the
count, and a client in back-off is answered 429 without any PBKDF2. After
``CLIENT_FREE`` wrong passwords in a row a client waits 1 s, then 2 s, 4 s,
... up to ADMIN_BACKOFF_MAX_SECONDS before its next check; after
``TOTAL_FREE`` wrong passwords from anyone the whole node does, so an
attacker spread over many addresses slows down too. A right password clears
its client's count; counts are forgotten ``FORGET_SECONDS`` after the
longest wait has run out with no check (so a wait longer than
FORGET_SECONDS does not wipe the count that caused it).

State lives in an anonymous shared mapping made before the API's workers
are forked, under one cross-process lock, like shared_limiter.py: slot 0 is
the node's total, the others a hash table of clients.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import struct
import time

from services.api.web.shared_limiter import slot_hash

SLOT = struct.Struct("=QddI4x")  # key hash, last check, next check allowed, failures
SLOTS = 65536
PROBES = 16
CLIENT_FREE = 5
TOTAL_FREE = 20
FORGET_SECONDS = 900.0
TOTAL = 0  # slot of the node-wide count


def wait_after(failures: int, free: int, cap: float) -> float:
    """Seconds before the next check after ``failures`` wrong passwords in a row."""
    if failures < free:
        return 0.0
    return min(2.0 ** min(failures - free, 62), cap)


class AdminBackoff:
    def __init__(self, cap: float, *, slots: int = SLOTS, clock=time.monotonic):
        self.cap = cap
        self.forget = cap + FORGET_SECONDS
        self._slots = slots
        self._clock = clock
        self._memory = mmap.mmap(-1, SLOT.size * (slots + 1))  # MAP_SHARED | MAP_ANONYMOUS
        self._lock = multiprocessing.get_context("fork").Lock()

    def _client_offset(self, key_hash: int) -> int:
        """The client's slot, or a free/stale one to claim, or the stalest."""
        memory, size = self._memory, SLOT.size
        first = key_hash % self._slots
        now = self._clock()
        stalest, stalest_last = -1, math.inf
        for probe in range(PROBES):
            offset = (1 + (first + probe) % self._slots) * size
            stored, last, _, _ = SLOT.unpack_from(memory, offset)
            if stored == key_hash:
                return offset
            if stored == 0 or now - last >= self.forget:
                SLOT.pack_into(memory, offset, key_hash, now, 0.0, 0)
                return offset
            if last < stalest_last:
                stalest, stalest_last = offset, last
        SLOT.pack_into(memory, stalest, key_hash, now, 0.0, 0)
        return stalest

    def _read(self, offset: int, now: float) -> tuple[int, float, float, int]:
        key_hash, last, allowed, failures = SLOT.unpack_from(self._memory, offset)
        if now - last >= self.forget:
            allowed, failures = 0.0, 0
        return key_hash, last, allowed, failures

    def admit(self, client: str) -> int:
        """0 when ``client`` may have its password checked now (the check is
        counted as a failure until ``succeeded``), else the whole seconds to
        wait (Retry-After)."""
        key_hash = slot_hash(client)
        now = self._clock()
        with self._lock:
            own = self._client_offset(key_hash)
            slots = ((own, CLIENT_FREE), (TOTAL * SLOT.size, TOTAL_FREE))
            states = [self._read(offset, now) for offset, _ in slots]
            wait = max(allowed - now for _, _, allowed, _ in states)
            if wait > 0:
                return max(1, math.ceil(wait))
            for (offset, free), (stored, _, _, failures) in zip(slots, states, strict=True):
                failures += 1
                allowed = now + wait_after(failures, free, self.cap)
                SLOT.pack_into(self._memory, offset, stored, now, allowed, failures)
        return 0

    def succeeded(self, client: str) -> None:
        """The password was right: the client starts afresh; the node's count
        loses only this check (a right password does not excuse others')."""
        key_hash = slot_hash(client)
        now = self._clock()
        with self._lock:
            own = self._client_offset(key_hash)
            SLOT.pack_into(self._memory, own, key_hash, now, 0.0, 0)
            _, last, _, failures = self._read(TOTAL * SLOT.size, now)
            failures = max(failures - 1, 0)
            allowed = last + wait_after(failures, TOTAL_FREE, self.cap)
            SLOT.pack_into(self._memory, TOTAL * SLOT.size, 1, last, allowed, failures)
