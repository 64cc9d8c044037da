"""Rewrap stored values under the current secret and sealed to their owner
(ksn3, shared/crypto/binding.py), or into the reference's legacy format (``ksnode
reencrypt --to legacy``, which gives the binding up), while the node keeps
serving. ksn1, ksn2 and adopted legacy rows are bound to the owner the
database names when they are rewritten.

Per batch of rows, in id order:

1. read the next values not in the target format (no lock);
2. decrypt them outside any transaction (a legacy value costs one PBKDF2:
   row locks must not wait for that);
3. in one transaction, lock those rows ``FOR UPDATE SKIP LOCKED``; a row that
   another transaction holds, or whose value or owner changed since step 1
   (the API, another run), is left for a later pass; each new value is decrypted back
   and compared with the plaintext before it is written; commit.

Every committed batch leaves each row in its old or its new format, both
readable, so a run killed at any point is resumed by running it again, and
two runs at once share the rows instead of doing them twice. A value is only
ever sealed from its decrypted plaintext, never from its ciphertext, so
nothing can be wrapped twice. Passes repeat until no row is left (rows the
API holds are retried for up to ``idle_seconds``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shared.crypto.binding import Binding
from shared.crypto.sealing import LEGACY_SALT_BYTES, Cipher, DecryptError
from shared.errors import CryptoFailure
from shared.keys.keycheck import KeyUsage
from shared.store import sealed
from shared.store.sealed import SealedColumn, SealedRow

log = logging.getLogger("ksnode.reencrypt")

CURRENT = "current"
MAX_CATCH_UP_SECONDS = 1.0  # --max-rate: how far behind the pace may be made up
LEGACY = "legacy"


class ReencryptError(CryptoFailure):
    """The run cannot start or did not finish; the message says why (no secrets)."""


class VerifyFailed(ReencryptError):
    """A rewritten value did not decrypt back to its plaintext; nothing was written."""


@dataclass
class Outcome:
    rewritten: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # row id -> reason
    remaining: int = 0
    stopped: bool = False

    @property
    def complete(self) -> bool:
        return self.remaining == 0 and not self.failed and not self.stopped


def target_head(cipher: Cipher, target: str) -> str | None:
    """The head of values already in the target (None: the legacy format)."""
    return cipher.bound_head if target == CURRENT else None


def check_target(cipher: Cipher, target: str) -> None:
    if target == LEGACY and cipher.previous_key_ids:
        # A legacy value does not say which secret sealed it: with previous
        # secrets configured, one under an old secret would look finished.
        raise ReencryptError(
            "--to legacy needs one secret: finish the rotation first (ksnode reencrypt), "
            "then remove ENCRYPTION_SECRET_PREVIOUS_PATHS"
        )


def count_pending(db, cipher: Cipher, target: str) -> dict[str, int]:
    head = target_head(cipher, target)
    with db.cursor() as cur:
        return {c.name: sealed.count_pending(cur, c, head) for c in sealed.COLUMNS}


def pending_in(usage: list[KeyUsage], cipher: Cipher, target: str) -> dict[str, int]:
    """count_pending's answer from a usage count already made (keycheck.read_usage):
    values not in the target, per table, without another scan."""
    pending = {c.name: 0 for c in sealed.COLUMNS}
    for u in usage:
        if target == CURRENT:
            done = u.format == "ksn3" and u.key_id == cipher.current_key_id
        else:
            done = u.format == "legacy"
        if not done:
            pending[u.column] = pending.get(u.column, 0) + u.rows
    return pending


class Reencryptor:
    """One run. ``progress(rewritten, failed)`` is called after each batch."""

    def __init__(
        self,
        db,
        cipher: Cipher,
        target: str = CURRENT,
        *,
        batch_size: int = 200,
        jobs: int = 1,
        idle_seconds: float = 30.0,
        max_rate: float = 0.0,
        stop: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ):
        check_target(cipher, target)
        self.db = db
        self.cipher = cipher
        self.target = target
        self.head = target_head(cipher, target)
        self.batch_size = batch_size
        self.jobs = max(1, jobs)
        self.idle_seconds = idle_seconds
        self.max_rate = max_rate  # rows per second, 0: as fast as it goes
        self.started = time.monotonic()
        # The pace is kept from this point (rows done then, time then).
        self._pace_from = (0, self.started)
        self.stop = stop or threading.Event()
        self.progress = progress or (lambda _done, _failed: None)
        self.outcome = Outcome()

    def run(self) -> Outcome:
        out = self.outcome
        idle_since: float | None = None
        with ThreadPoolExecutor(self.jobs) as pool:
            while not self.stop.is_set():
                before = out.rewritten
                for column in sealed.COLUMNS:
                    self._pass(column, pool)
                remaining = sum(count_pending(self.db, self.cipher, self.target).values())
                out.remaining = max(0, remaining - len(out.failed))
                if out.remaining == 0 or self.stop.is_set():
                    break
                if out.rewritten > before:
                    idle_since = None
                    continue
                # Nothing moved: the rows left are locked by someone else.
                # Wait for them with a growing pause (each pass is a scan).
                idle_since = idle_since or time.monotonic()
                idle = time.monotonic() - idle_since
                if idle > self.idle_seconds:
                    break
                self.stop.wait(min(0.2 + idle / 4, 2.0))
        out.stopped = self.stop.is_set() and out.remaining > 0
        return out

    def _pass(self, column: SealedColumn, pool: ThreadPoolExecutor) -> None:
        after = sealed.ZERO_UUID
        while not self.stop.is_set():
            with self.db.cursor() as cur:
                rows = sealed.pending_after(cur, column, self.head, after, self.batch_size)
            if not rows:
                return
            after = rows[-1].row_id
            rows = [r for r in rows if r.row_id not in self.outcome.failed]
            opened = list(pool.map(lambda r: self._open(column, r), rows))
            done = self._write(
                column, [(r, p) for r, p in zip(rows, opened, strict=True) if p is not None]
            )
            self.outcome.rewritten += done
            self.progress(self.outcome.rewritten, len(self.outcome.failed))
            self._throttle()

    def _throttle(self) -> None:
        """Stay at or below max_rate rows/s, leaving the API its share of the CPU.
        Time lost (rows locked by others, a paused process) is not made up
        for with a burst above max_rate: past a second behind, the pace is
        kept from now on."""
        if self.max_rate <= 0:
            return
        rows, since = self._pace_from
        now = time.monotonic()
        ahead = (self.outcome.rewritten - rows) / self.max_rate - (now - since)
        if ahead > 0:
            self.stop.wait(ahead)
        elif ahead < -MAX_CATCH_UP_SECONDS:
            self._pace_from = (self.outcome.rewritten, now)

    def _open(self, column: SealedColumn, row: SealedRow) -> str | None:
        try:
            return self.cipher.decrypt(row.value, row.binding)
        except DecryptError as exc:
            self.outcome.failed[row.row_id] = str(exc)
            log.error(
                "value does not decrypt, left as it is",
                extra={
                    "event": "reencrypt.decrypt_failed",
                    "table": column.name,
                    "row_id": row.row_id,
                    "reason": str(exc),
                },
            )
            return None

    def _seal(self, plaintext: str, binding: Binding, salt: bytes) -> str:
        if self.target == LEGACY:
            return self.cipher.encrypt_legacy(plaintext, salt)
        return self.cipher.seal(plaintext, binding)

    def _write(self, column: SealedColumn, opened: list[tuple[SealedRow, str]]) -> int:
        if not opened:
            return 0
        # One legacy salt per batch: its key is derived once (crypto.encrypt_legacy).
        salt = os.urandom(LEGACY_SALT_BYTES)
        written = 0
        with self.db.transaction() as cur:
            current = sealed.lock(cur, column, [row.row_id for row, _ in opened])
            for row, plaintext in opened:
                now = current.get(row.row_id)
                if now is None or now.value != row.value or now.binding != row.binding:
                    continue  # held by another transaction, or rewritten meanwhile
                new = self._seal(plaintext, row.binding, salt)
                try:
                    check = self.cipher.decrypt(new, row.binding)
                except DecryptError:
                    check = None
                if check != plaintext:
                    raise VerifyFailed(
                        f"{column.name} {row.row_id}: the rewritten value does not decrypt "
                        "back to the original; nothing in this batch was written"
                    )
                sealed.rewrite(cur, column, row.row_id, new)
                written += 1
        return written
