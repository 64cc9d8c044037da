"""Encryption at rest.

Four formats are read:

* **legacy** (the reference node, spec §8.1): base64 of
  ``salt(16) | iv(12) | tag(16) | ciphertext`` with a key derived by
  PBKDF2-HMAC-SHA256(secret, salt, 100 000) for *every* value. Keys derived for
  a legacy salt are cached (bounded), so serving a reference database does not
  cost one PBKDF2 per request.
* **ksn1** (ours, before key versions): ``ksn1.`` +
  urlsafe-base64(nonce(12) | ciphertext | tag)``, AES-256-GCM under one key
  derived once per process, with associated data naming the row the value
  belongs to, so a ciphertext copied into another row fails to decrypt.
* **ksn2** (ours, before owner binding): ``ksn2.<key id>.`` + the same sealed
  bytes as ksn1 under the same key. The key id names the secret that sealed the value
  so a read picks its key without trial decryption. It is derived from the
  secret with its own PBKDF2 salt, so it costs as much to test a guessed
  secret against a key id as against a ciphertext, and says nothing else.
* **ksn3** (ours, written now): ``ksn3.<key id>.`` + sealed bytes as ksn2,
  under the same key, but the associated data names the value's owner
  (shared/crypto/binding.py), not only its row: a share whose wallet was given to
  another user, or whose user's identity was changed, in the database does
  not open (``BindingMismatch``). Its associated data starts with a tag that
  no ksn1/ksn2 associated data has, so relabelling a value cannot move it
  between formats.

The ``.`` never occurs in standard base64, so the formats cannot be confused.
A ``Cipher`` holds the current secret (all writes) and any previous secrets
(reads only, while ``ksnode reencrypt`` moves their rows to the current one).
ksn1 and legacy values do not name their secret: they are tried under the
current secret first, then the previous ones.

Nothing here ever puts the secret, a key or a plaintext into an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.crypto.binding import Binding
from shared.crypto.binding import (
    keypair_aad as keypair_aad,  # re-exported: callers import it from here
)
from shared.crypto.binding import share_aad as share_aad
from shared.errors import CryptoFailure

if TYPE_CHECKING:
    from shared.crypto.aesgcm import Aead

PBKDF2_ITERATIONS = 100_000
KEY_BYTES = 32
LEGACY_SALT_BYTES = 16
LEGACY_IV_BYTES = 12
TAG_BYTES = 16
ENVELOPE_PREFIX = "ksn1."
KEYED_PREFIX = "ksn2."
BOUND_PREFIX = "ksn3."  # same length as KEYED_PREFIX: both heads are KEYED_HEAD_LEN long
NAMED_FORMATS = ("ksn2", "ksn3")  # formats whose head names their key id
ENVELOPE_SALT = b"ksnode/envelope/v1"
KEY_ID_SALT = b"ksnode/key-id/v1"
KEY_ID_HEX = 12
# "ksn2." + key id + "." : how many leading bytes name a value's format and key.
KEYED_HEAD_LEN = len(KEYED_PREFIX) + KEY_ID_HEX + 1
NONCE_BYTES = 12
LEGACY_KEY_CACHE_SIZE = 100_000


class SecretError(CryptoFailure):
    """The encryption secret file is missing, unreadable or empty."""


class DecryptError(CryptoFailure):
    """A stored value could not be decrypted (wrong secret, tampered, wrong row)."""


class AuthenticationFailed(DecryptError):
    """An envelope's tag does not verify under the key and associated data given."""


class BindingMismatch(DecryptError):
    """A ksn3 value does not open with the owner the database names now: its
    owner, identity, wallet, curve or public key changed since it was sealed
    (or the value itself was altered or copied from another row)."""


class UnknownKeyId(DecryptError):
    """A ksn2 value names a key id that no configured secret has."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        super().__init__(f"sealed under key id {key_id}, which no configured secret matches")


def _pbkdf2(secret: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, PBKDF2_ITERATIONS, KEY_BYTES)


def _aead(key: bytes) -> Aead:
    # Imported here, not at the top: see shared/crypto/aesgcm.py.
    from shared.crypto.aesgcm import Aead

    return Aead(key)


def legacy_encrypt(
    plaintext: str, secret: str, *, salt: bytes | None = None, iv: bytes | None = None
) -> str:
    """The reference's format; used by tests and to write reference-style rows."""
    salt = salt if salt is not None else os.urandom(LEGACY_SALT_BYTES)
    return _seal_legacy(_aead(_pbkdf2(secret, salt)), salt, plaintext, iv)


def _seal_legacy(aead: Aead, salt: bytes, plaintext: str, iv: bytes | None = None) -> str:
    """base64(salt | iv | tag | ciphertext), the reference's layout (spec §8.1)."""
    iv = iv if iv is not None else os.urandom(LEGACY_IV_BYTES)
    sealed = aead.seal(iv, plaintext.encode("utf-8"), None)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    return base64.b64encode(salt + iv + tag + ciphertext).decode("ascii")


def key_id(secret: str) -> str:
    """The public name of a secret: hex of a PBKDF2 output under its own salt
    (as costly to test a guess against as a ciphertext; reveals nothing else)."""
    return _pbkdf2(secret, KEY_ID_SALT)[: KEY_ID_HEX // 2].hex()


def value_format(stored: str | bytes | memoryview) -> tuple[str, str | None]:
    """("legacy" | "ksn1" | "ksn2" | "ksn3", key id or None) of a stored value,
    from its head alone (no decryption)."""
    text = _as_text(stored)
    if text.startswith(BOUND_PREFIX):
        return "ksn3", text[len(BOUND_PREFIX) : KEYED_HEAD_LEN - 1]
    if text.startswith(KEYED_PREFIX):
        return "ksn2", text[len(KEYED_PREFIX) : KEYED_HEAD_LEN - 1]
    if text.startswith(ENVELOPE_PREFIX):
        return "ksn1", None
    return "legacy", None


class _Key:
    """One secret's keys: the envelope key, its key id, and legacy keys per
    salt remembered in a bounded LRU. The LRU holds the 32 key bytes, not
    AESGCM objects: an AESGCM holds about 2.7 kB of cipher context, so
    100,000 of them cost 270 MB per API worker, the bytes about 20 MB; making
    the AESGCM again costs microseconds, the PBKDF2 it saves 25 ms. The
    envelope key's AESGCM is made on first use (aesgcm.py says why)."""

    def __init__(self, secret: str):
        if not secret:
            raise SecretError("Encryption secret is empty")
        self._secret = secret
        self.key_id = key_id(secret)
        self._envelope_key = _pbkdf2(secret, ENVELOPE_SALT)
        self._envelope_aead: Aead | None = None
        self._legacy_keys: OrderedDict[bytes, bytes] = OrderedDict()
        self._legacy_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"_Key({self.key_id})"

    @property
    def aead(self) -> Aead:
        aead = self._envelope_aead
        if aead is None:  # two threads may both make one: the same key, either will do
            aead = self._envelope_aead = _aead(self._envelope_key)
        return aead

    def legacy_aead(self, salt: bytes) -> Aead:
        with self._legacy_lock:
            key = self._legacy_keys.get(salt)
            if key is not None:
                self._legacy_keys.move_to_end(salt)
                return _aead(key)
        key = _pbkdf2(self._secret, salt)
        with self._legacy_lock:
            self._legacy_keys[salt] = key
            if len(self._legacy_keys) > LEGACY_KEY_CACHE_SIZE:
                self._legacy_keys.popitem(last=False)
        return _aead(key)


class Cipher:
    """Encrypts under the current secret; decrypts under it or a previous one.

    ``Cipher(secret)`` is a node with one secret; ``previous`` secrets stay
    readable during a rotation. Two configured secrets with the same key id
    (the same secret listed twice) are refused: a rotation needs a new one.
    """

    def __init__(self, secret: str, previous: Sequence[str] = ()):
        keys = [_Key(secret)]
        for number, old in enumerate(previous, 1):
            key = _Key(old)
            if key.key_id == keys[0].key_id:
                raise SecretError(
                    f"previous encryption secret #{number} is the current secret "
                    f"(key id {key.key_id}); write a new current secret to rotate"
                )
            if any(key.key_id == other.key_id for other in keys):
                raise SecretError(
                    f"previous encryption secret #{number} is listed twice (key id {key.key_id})"
                )
            keys.append(key)
        self._keys = keys
        self._by_id = {key.key_id: key for key in keys}
        self._unnamed_order = list(keys)  # replaced whole, never mutated: thread-safe reads

    def __repr__(self) -> str:
        return f"Cipher(current={self.current_key_id}, previous={list(self.previous_key_ids)})"

    @property
    def current_key_id(self) -> str:
        return self._keys[0].key_id

    @property
    def previous_key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self._keys[1:])

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self._keys)

    @property
    def current_head(self) -> str:
        """The leading text of a ksn2 value under the current secret."""
        return f"{KEYED_PREFIX}{self.current_key_id}."

    @property
    def bound_head(self) -> str:
        """The leading text of every value the node writes (ksn3, current secret)."""
        return f"{BOUND_PREFIX}{self.current_key_id}."

    # -- writing -----------------------------------------------------------
    def seal(self, plaintext: str, binding: Binding) -> str:
        """A ksn3 value under the current secret, bound to its owner."""
        return self._envelope(self.bound_head, plaintext, binding.owner)

    def encrypt(self, plaintext: str, aad: str) -> str:
        """A ksn2 value (bound to its row only). The node no longer writes
        these; kept for tools and tests that make a pre-binding database."""
        return self._envelope(self.current_head, plaintext, aad)

    def _envelope(self, head: str, plaintext: str, aad: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[0].aead.seal(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        return head + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def encrypt_legacy(self, plaintext: str, salt: bytes) -> str:
        """The reference's format (spec §8.1) under the current secret, for
        handing a database back. The caller picks the salt: values sharing one
        share its derived key (a fresh random IV each), so a batch costs one
        PBKDF2 instead of one per value."""
        return _seal_legacy(self._keys[0].legacy_aead(salt), salt, plaintext)

    # -- reading -----------------------------------------------------------
    def decrypt(self, stored: str | bytes | memoryview, aad: str | Binding) -> str:
        """Decrypt a stored value in any format. ``aad`` is only used by the
        envelopes (legacy values are not bound to their row); a ksn3 value
        needs a Binding (a row's aad alone cannot open it)."""
        return self.open(stored, aad)[1]

    def open(self, stored: str | bytes | memoryview, aad: str | Binding) -> tuple[str, str]:
        """(key id of the secret that sealed it, plaintext)."""
        text = _as_text(stored)
        row_aad = aad.row if isinstance(aad, Binding) else aad
        if text.startswith(BOUND_PREFIX):
            if not isinstance(aad, Binding):
                raise DecryptError("a ksn3 value opens only with its owner binding")
            key = self._named_key(text)
            try:
                return key.key_id, _open_envelope(key.aead, text[KEYED_HEAD_LEN:], aad.owner)
            except AuthenticationFailed:
                raise BindingMismatch(
                    "the value does not open with the owner, wallet and key the database "
                    "names now (changed in the database, or the value was altered)"
                ) from None
        if text.startswith(KEYED_PREFIX):
            key = self._named_key(text)
            return key.key_id, _open_envelope(key.aead, text[KEYED_HEAD_LEN:], row_aad)
        if text.startswith(ENVELOPE_PREFIX):
            return self._first_that_opens(
                lambda key: _open_envelope(key.aead, text[len(ENVELOPE_PREFIX) :], row_aad)
            )
        parts = _legacy_parts(text)
        return self._first_that_opens(lambda key: _open_legacy(key, *parts))

    def _named_key(self, text: str) -> _Key:
        """The key a ksn2/ksn3 value names in its head."""
        kid = text[len(KEYED_PREFIX) : KEYED_HEAD_LEN - 1]
        if text[KEYED_HEAD_LEN - 1 : KEYED_HEAD_LEN] != ".":
            raise DecryptError("stored value has a malformed key id")
        key = self._by_id.get(kid)
        if key is None:
            raise UnknownKeyId(kid)
        return key

    def _first_that_opens(self, attempt) -> tuple[str, str]:
        # The key that opened the last unnamed value goes first: during a
        # rotation those values are mostly under one secret, and a wrong
        # guess on a legacy value costs a PBKDF2.
        error: DecryptError | None = None
        order = self._unnamed_order
        for key in order:
            try:
                plain = attempt(key)
            except DecryptError as exc:
                error = error or exc
                continue
            if key is not order[0]:
                self._unnamed_order = [key, *(k for k in order if k is not key)]
            return key.key_id, plain
        assert error is not None
        raise error


def _open_envelope(aead: Aead, body: str, aad: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(body)
    except (binascii.Error, ValueError):
        raise DecryptError("stored value is not valid base64") from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptError("stored value is too short")
    plain = aead.open(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode("utf-8"))
    if plain is None:
        raise AuthenticationFailed(
            "authentication failed (wrong secret, tampered value or wrong row)"
        )
    return _utf8(plain)


def _legacy_parts(text: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(salt, iv, tag, ciphertext) of a reference value."""
    try:
        # Lenient like Node's Buffer.from(x, "base64"): ignore stray characters.
        raw = base64.b64decode(_pad(text.strip()), validate=False)
    except (binascii.Error, ValueError):
        raise DecryptError("stored value is not valid base64") from None
    head = LEGACY_SALT_BYTES + LEGACY_IV_BYTES + TAG_BYTES
    if len(raw) < head:
        raise DecryptError("stored value is too short")
    salt = raw[:LEGACY_SALT_BYTES]
    iv = raw[LEGACY_SALT_BYTES : LEGACY_SALT_BYTES + LEGACY_IV_BYTES]
    tag = raw[LEGACY_SALT_BYTES + LEGACY_IV_BYTES : head]
    return salt, iv, tag, raw[head:]


def _open_legacy(key: _Key, salt: bytes, iv: bytes, tag: bytes, ciphertext: bytes) -> str:
    plain = key.legacy_aead(salt).open(iv, ciphertext + tag, None)
    if plain is None:
        raise DecryptError("authentication failed (wrong secret or tampered value)")
    return _utf8(plain)


def _as_text(stored: str | bytes | memoryview) -> str:
    if isinstance(stored, memoryview):
        stored = stored.tobytes()
    if isinstance(stored, bytes):
        try:
            return stored.decode("ascii")
        except UnicodeDecodeError:
            raise DecryptError("stored value is not ASCII text") from None
    return stored


def _pad(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isalnum() or ch in "+/")
    return cleaned + "=" * (-len(cleaned) % 4)


def _utf8(plain: bytes) -> str:
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptError("decrypted value is not UTF-8 text") from None
