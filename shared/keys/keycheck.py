"""Which secrets the stored values are under, and whether this node can read them.

``verify_keys`` runs before anything is served (``ksnode up`` and each
program's start): a ksn2/ksn3 value names its key id, so rows under a key id that
no configured secret matches are counted exactly and refused in one line.
ksn1 and legacy values do not name their secret; one of each (per table) is
test-decrypted, which catches a wrong secret on a database that has no ksn2
rows yet. ``rotation_reason`` is what /health shows while rows under previous
secrets remain; ``unbound_reason`` while rows are in a format not sealed to
their owner (legacy, ksn1, ksn2: shared/crypto/binding.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from shared.crypto.sealing import NAMED_FORMATS, Cipher, DecryptError, value_format
from shared.db.pool import DatabaseUnavailable
from shared.errors import CryptoFailure
from shared.infra.errortext import first_line
from shared.store import sealed

SETTINGS = "ENCRYPTION_SECRET_PATH / ENCRYPTION_SECRET_PREVIOUS_PATHS"


class KeyCheckFailed(CryptoFailure):
    """Stored values are under secrets this node does not have (one line, no secrets)."""

    refusal = True  # a check saying no, not a breakage: `ksnode reencrypt refused: ...`


@dataclass(frozen=True)
class KeyUsage:
    column: str  # "key_shares" | "server_keypairs"
    format: str  # "ksn3" | "ksn2" | "ksn1" | "legacy"
    key_id: str  # "" when the format does not name its key
    rows: int

    def state(self, cipher: Cipher) -> str:
        """current | previous | unknown (ksn2, ksn3), or unnamed (ksn1, legacy)."""
        if self.format not in NAMED_FORMATS:
            return "unnamed"
        if self.key_id == cipher.current_key_id:
            return "current"
        return "previous" if self.key_id in cipher.previous_key_ids else "unknown"


def read_usage(cur) -> list[KeyUsage]:
    usage = []
    for column, head, rows in sealed.count_by_head(cur):
        fmt, key_id = value_format(head)
        usage.append(KeyUsage(column, fmt, key_id or "", rows))
    return sorted(usage, key=lambda u: (u.column, u.format, u.key_id))


def _label(column: str, rows: int) -> str:
    noun = "key share" if column == "key_shares" else "server keypair"
    return f"{rows} {noun}{'s' if rows != 1 else ''}"


def unknown_key_problem(usage: list[KeyUsage], cipher: Cipher) -> str | None:
    found = [u for u in usage if u.state(cipher) == "unknown"]
    if not found:
        return None
    what = "; ".join(f"{_label(u.column, u.rows)} under key id {u.key_id}" for u in found)
    return (
        f"{what}: no configured secret has that key id ({SETTINGS}); "
        "add the secret they were written with"
    )


def sample_problem(cur, usage: list[KeyUsage], cipher: Cipher) -> str | None:
    """Decrypt one ksn1 and one legacy value per table with the configured secrets."""
    for u in usage:
        if u.format in NAMED_FORMATS:
            continue
        column = sealed.SHARES if u.column == sealed.SHARES.name else sealed.KEYPAIRS
        row = sealed.first_of_format(cur, column, u.format)
        if row is not None:
            try:
                cipher.decrypt(row.value, row.binding)
            except DecryptError:
                return (
                    f"{_label(u.column, u.rows)} in the {u.format} format: one checked "
                    f"({column.id_column} {row.row_id}) does not decrypt with any configured "
                    f"secret ({SETTINGS})"
                )
    return None


def verify_keys(db, cipher: Cipher) -> list[KeyUsage]:
    """Raise KeyCheckFailed unless every stored value is under a configured secret."""
    with db.cursor() as cur:
        usage = read_usage(cur)
        problem = unknown_key_problem(usage, cipher) or sample_problem(cur, usage, cipher)
    if problem:
        raise KeyCheckFailed(problem)
    return usage


def rotation_reason(usage: list[KeyUsage], cipher: Cipher) -> str | None:
    """Why /health is degraded during a rotation, or None.

    Rows under a previous key id count; so do ksn1 and legacy rows while
    previous secrets are configured (they may be under one of them).
    """
    if not cipher.previous_key_ids:
        return None
    waiting = sum(
        u.rows
        for u in usage
        if u.column == sealed.SHARES.name and u.state(cipher) in ("previous", "unnamed")
    )
    if waiting == 0:
        return None
    return (
        f"key rotation unfinished: {waiting} key shares are not yet under the current secret "
        f"(key id {cipher.current_key_id}); run `ksnode reencrypt`"
    )


def unbound_counts(usage: list[KeyUsage]) -> dict[str, int]:
    """Rows per table in a format not sealed to their owner (all but ksn3)."""
    counts = {c.name: 0 for c in sealed.COLUMNS}
    for u in usage:
        if u.format != "ksn3":
            counts[u.column] = counts.get(u.column, 0) + u.rows
    return counts


def unbound_reason(usage: list[KeyUsage]) -> str | None:
    """Why /health is degraded while rows are not sealed to their owner, or None."""
    counts = unbound_counts(usage)
    if not any(counts.values()):
        return None
    what = " and ".join(_label(column, rows) for column, rows in counts.items() if rows)
    return (
        f"{what} not yet sealed to their owner (legacy, ksn1 or ksn2 format): "
        "someone who can write the database could hand them to another login; "
        "run `ksnode reencrypt`"
    )


class UsageProbe:
    """read_usage at most once per ``ttl`` seconds per process (a scan of the
    key share table; /health and /metrics are polled). A failed read is not
    tried again for ``retry`` seconds: a monitor polling a node whose
    database is stuck must not queue a scan behind every poll."""

    def __init__(self, ttl: float = 30.0, retry: float = 5.0, timeout: float | None = 5.0):
        self.ttl = ttl
        self.retry = retry
        self.timeout = timeout  # for the scan (Database.cursor)
        self._lock = threading.Lock()
        self._value: list[KeyUsage] = []
        self._next_read = float("-inf")
        self._error: str | None = None

    def read(self, db) -> list[KeyUsage]:
        if not self._lock.acquire(blocking=False):
            # Another thread is scanning: answer from what is known rather
            # than queue a monitor's poll behind the scan.
            return self._known()
        try:
            if time.monotonic() >= self._next_read:
                try:
                    with db.cursor(timeout=self.timeout) as cur:
                        self._value = read_usage(cur)
                    self._error = None
                    self._next_read = time.monotonic() + self.ttl
                except Exception as exc:
                    self._error = first_line(exc)
                    self._next_read = time.monotonic() + self.retry
            return self._known()
        finally:
            self._lock.release()

    def _known(self) -> list[KeyUsage]:
        if self._error is not None:
            raise DatabaseUnavailable(self._error)  # a fresh exception for each caller
        return self._value
