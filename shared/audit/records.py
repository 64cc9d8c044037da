"""Audit records: what one says, how it is sealed into the chain, and how a
chain is checked.

A record names an event (``keyshare.v1.get``, ``admin.restore`` ...), its
outcome (``ok`` or the error code answered), the request id, the client
address, the auth type, a keyed hash of the caller's ``user_auth_id`` (never
the identity itself), the public keys concerned and, for admin events, a
short reason. Shares, tokens, passwords and secrets have no field to go in.

Each stored record carries a sequence number (contiguous, so a deleted
record leaves a gap), the hash of the record before it, and its own hash:
HMAC-SHA256 under a per-node key over all of that. The key is derived from
the node's encryption secret, so someone who can write the table but does
not hold the secret cannot re-seal an edited record, and replicas sharing a
database (and its secret) share one chain. Each record names the key that
sealed it (``key_id``): after a secret rotation new records are sealed under
the new secret's key, and an ``AuditKeyring`` holding the previous secrets'
keys too still checks and searches the older ones (shared/audit/verify.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.errors import AuditFailure

GENESIS = "0" * 64
KEY_SALT = b"ksnode/audit/v1"
KEY_ITERATIONS = 100_000
USER_REF_HEX = 32  # 128 bits: no collisions in practice, shorter rows
RETENTION_EVENT = "audit.retention"


class AuditError(AuditFailure):
    """The audit trail cannot be written or read (message is safe to show)."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(at: dt.datetime) -> str:
    """Microsecond UTC ISO time: what Postgres stores exactly, so a record
    read back hashes to the same value."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# slots, not frozen: a frozen dataclass costs ~2 µs to build, a slotted one
# ~0.2 µs, and one is built for every share read. Treat them as read-only.
@dataclass(slots=True)
class Record:
    event: str
    outcome: str
    at: dt.datetime = field(default_factory=utc_now)
    request_id: str | None = None
    client: str | None = None
    auth_type: str | None = None
    user_ref: str | None = None
    public_keys: tuple[str, ...] = ()
    detail: dict[str, Any] | None = None  # short strings and integers only


@dataclass(slots=True)
class Sealed:
    """A record in the chain, as stored."""

    seq: int
    record: Record
    key_id: str
    prev_hash: str
    hash: str
    text: str = ""  # row_text(), when sealed here (what COPY sends)

    def as_json(self) -> dict[str, Any]:
        """The record as one JSON object (``audit find``/``export``, SIEM)."""
        return {
            "seq": self.seq,
            **_fields(self.record),
            "key_id": self.key_id,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _fields(record: Record) -> dict[str, Any]:
    return {
        "time": format_time(record.at),
        "event": record.event,
        "outcome": record.outcome,
        "request_id": record.request_id,
        "client": record.client,
        "auth_type": record.auth_type,
        "user_ref": record.user_ref,
        "public_keys": list(record.public_keys),
        "detail": record.detail,
    }


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
NULL = "\\N"


def copy_text(value: str | None) -> str:
    """One field in Postgres COPY text format (NULL as ``\\N``)."""
    if value is None:
        return NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def copy_array(values: tuple[str, ...] | list[str]) -> str:
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return copy_text("{" + ",".join(f'"{v}"' for v in quoted) + "}")


def row_text(seq: int, record: Record, key_id: str, prev_hash: str) -> str:
    """A record as one line of COPY text without its hash: the exact text
    the hash covers, and what the table receives (one serialisation for
    both keeps a share read's record cheap). ``record.at`` is UTC."""
    r = record
    detail = NULL if r.detail is None else copy_text(_ENCODER.encode(r.detail))
    return (
        f"{seq}\t{r.at.isoformat()}\t{copy_text(r.event)}\t{copy_text(r.outcome)}"
        f"\t{copy_text(r.request_id)}\t{copy_text(r.client)}\t{copy_text(r.auth_type)}"
        f"\t{copy_text(r.user_ref)}\t{copy_array(r.public_keys)}\t{detail}\t{key_id}\t{prev_hash}"
    )


class AuditKey:
    """The per-node key: seals records and hashes identities."""

    def __init__(self, secret: str):
        # Stretched like the share key: a weak secret must not let someone
        # holding the trail guess it, then reverse the identity hashes.
        self._key = hashlib.pbkdf2_hmac(
            "sha256", secret.encode("utf-8"), KEY_SALT, KEY_ITERATIONS, 32
        )
        # HMAC-SHA256 with its two keyed states computed once: copying them
        # costs far less than hmac.digest() setting the key up on every call.
        block = self._key.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self.key_id = self._mac(b"key-id")[:8]

    def __repr__(self) -> str:
        return f"AuditKey(key_id={self.key_id})"

    def _mac(self, data: bytes) -> str:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def user_ref(self, user_auth_id: str | None) -> str | None:
        """What the trail stores instead of a ``user_auth_id``."""
        if user_auth_id is None:
            return None
        return self._mac(b"user\x00" + _bytes(user_auth_id))[:USER_REF_HEX]

    def seal(self, seq: int, record: Record, prev_hash: str) -> Sealed:
        text = row_text(seq, record, self.key_id, prev_hash)
        return Sealed(seq, record, self.key_id, prev_hash, self._mac(_bytes(text)), text)

    def stage_mac(self, record: Record) -> str:
        """What shows that a staged record (ksn_audit_staged) was made by a
        node holding this key, not written into the table by someone holding
        only the database: a MAC over the record's text."""
        return self._mac(b"staged\x00" + _bytes(row_text(0, record, "", "")))

    def staged_intact(self, record: Record, mac: str | None) -> bool:
        return mac is not None and hmac.compare_digest(self.stage_mac(record), mac)

    def intact(self, sealed: Sealed) -> bool:
        text = row_text(sealed.seq, sealed.record, sealed.key_id, sealed.prev_hash)
        return hmac.compare_digest(self._mac(_bytes(text)), sealed.hash)


class AuditKeyring:
    """The current key (seals new records) and the keys of the previous
    secrets (check and search older records only), by key id."""

    def __init__(self, current: AuditKey, previous: Iterable[AuditKey] = ()):
        self.current = current
        self._by_id = {current.key_id: current}
        for key in previous:
            self._by_id.setdefault(key.key_id, key)

    @classmethod
    def from_secrets(cls, current: str, previous: Iterable[str] = ()) -> AuditKeyring:
        return cls(AuditKey(current), [AuditKey(secret) for secret in previous])

    def __repr__(self) -> str:
        return f"AuditKeyring({', '.join(self.describe())})"

    def get(self, key_id: str) -> AuditKey | None:
        return self._by_id.get(key_id)

    def describe(self) -> list[str]:
        """Each key id with its role, current first (for messages)."""
        return [
            f"{kid} ({'current' if key is self.current else 'previous'})"
            for kid, key in self._by_id.items()
        ]

    def user_refs(self, user_auth_id: str) -> list[str]:
        """The user's reference under every key: records sealed before a
        rotation carry the one computed under the secret of their time."""
        return [key.user_ref(user_auth_id) or "" for key in self._by_id.values()]


def _bytes(text: str) -> bytes:
    # surrogatepass: a hostile identity with a lone surrogate still hashes
    return text.encode("utf-8", "surrogatepass")


def seal_chain(
    key: AuditKey, head: tuple[int, str] | None, records: Iterable[Record]
) -> list[Sealed]:
    """Seal ``records`` after ``head`` (the last stored seq and hash, or None)."""
    seq, prev = head if head is not None else (0, GENESIS)
    sealed = []
    for record in records:
        seq += 1
        item = key.seal(seq, record, prev)
        sealed.append(item)
        prev = item.hash
    return sealed


def iter_json(records: Iterable[Sealed]) -> Iterator[str]:
    for item in records:
        yield json.dumps(item.as_json(), separators=(",", ":"), ensure_ascii=False)
