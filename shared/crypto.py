"""Encryption at rest.

Two formats are read:

* **legacy** (the reference node, spec §8.1): base64 of
  ``salt(16) | iv(12) | tag(16) | ciphertext`` with a key derived by
  PBKDF2-HMAC-SHA256(secret, salt, 100 000) for *every* value. Keys derived for
  a legacy salt are cached (bounded), so serving a reference database does not
  cost one PBKDF2 per request.
* **ksn1** (ours): ``ksn1.`` + urlsafe-base64(nonce(12) | ciphertext | tag)``,
  AES-256-GCM under one key derived once per process, with associated data
  naming the row the value belongs to, so a ciphertext copied into another row
  fails to decrypt. The ``.`` never occurs in standard base64, so the two
  formats cannot be confused.

Nothing here ever puts the secret, a key or a plaintext into an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PBKDF2_ITERATIONS = 100_000
KEY_BYTES = 32
LEGACY_SALT_BYTES = 16
LEGACY_IV_BYTES = 12
TAG_BYTES = 16
ENVELOPE_PREFIX = "ksn1."
ENVELOPE_SALT = b"ksnode/envelope/v1"
LEGACY_KEY_CACHE_SIZE = 100_000


class SecretError(Exception):
    """The encryption secret file is missing, unreadable or empty."""


class DecryptError(Exception):
    """A stored value could not be decrypted (wrong secret, tampered, wrong row)."""


def load_secret(path: Path) -> str:
    """Read the secret file verbatim (spec §8.2: no trimming, a trailing
    newline is part of the secret)."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SecretError(f"Failed to load encryption secret: {exc.strerror} ({path})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"Encryption secret is not UTF-8 text ({path})") from None
    if text == "":
        raise SecretError(f"Encryption secret is empty ({path})")
    return text


def create_dev_secret(path: Path) -> bool:
    """Create a random secret file with mode 0600 unless one exists.
    Returns True when a file was created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(os.urandom(32).hex())
    return True


def _pbkdf2(secret: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, PBKDF2_ITERATIONS, KEY_BYTES)


def legacy_encrypt(
    plaintext: str, secret: str, *, salt: bytes | None = None, iv: bytes | None = None
) -> str:
    """The reference's format; used by tests and to write reference-style rows."""
    salt = salt if salt is not None else os.urandom(LEGACY_SALT_BYTES)
    iv = iv if iv is not None else os.urandom(LEGACY_IV_BYTES)
    sealed = AESGCM(_pbkdf2(secret, salt)).encrypt(iv, plaintext.encode("utf-8"), None)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    return base64.b64encode(salt + iv + tag + ciphertext).decode("ascii")


class Cipher:
    """Encrypts and decrypts share-sized values for one secret.

    The envelope key is derived once here; legacy keys are derived per salt
    and remembered in a bounded LRU.
    """

    def __init__(self, secret: str):
        if not secret:
            raise SecretError("Encryption secret is empty")
        self._secret = secret
        self._aead = AESGCM(_pbkdf2(secret, ENVELOPE_SALT))
        self._legacy_keys: OrderedDict[bytes, AESGCM] = OrderedDict()
        self._legacy_lock = threading.Lock()

    def __repr__(self) -> str:
        return "Cipher(<secret hidden>)"

    # -- ksn1 envelope ---------------------------------------------------
    def encrypt(self, plaintext: str, aad: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        return ENVELOPE_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, stored: str | bytes | memoryview, aad: str) -> str:
        """Decrypt a stored value in either format. ``aad`` is only used by
        the envelope (legacy values are not bound to their row)."""
        text = _as_text(stored)
        if text.startswith(ENVELOPE_PREFIX):
            return self._decrypt_envelope(text, aad)
        return self._decrypt_legacy(text)

    def _decrypt_envelope(self, text: str, aad: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(text[len(ENVELOPE_PREFIX) :])
        except (binascii.Error, ValueError):
            raise DecryptError("stored value is not valid base64") from None
        if len(raw) < 12 + TAG_BYTES:
            raise DecryptError("stored value is too short")
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], aad.encode("utf-8"))
        except InvalidTag:
            raise DecryptError(
                "authentication failed (wrong secret, tampered value or wrong row)"
            ) from None
        return _utf8(plain)

    # -- legacy (reference) format -----------------------------------------
    def _legacy_aead(self, salt: bytes) -> AESGCM:
        with self._legacy_lock:
            aead = self._legacy_keys.get(salt)
            if aead is not None:
                self._legacy_keys.move_to_end(salt)
                return aead
        aead = AESGCM(_pbkdf2(self._secret, salt))
        with self._legacy_lock:
            self._legacy_keys[salt] = aead
            if len(self._legacy_keys) > LEGACY_KEY_CACHE_SIZE:
                self._legacy_keys.popitem(last=False)
        return aead

    def _decrypt_legacy(self, text: str) -> str:
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
        ciphertext = raw[head:]
        try:
            plain = self._legacy_aead(salt).decrypt(iv, ciphertext + tag, None)
        except InvalidTag:
            raise DecryptError("authentication failed (wrong secret or tampered value)") from None
        return _utf8(plain)


def share_aad(wallet_id: str) -> str:
    """Associated data binding a key share ciphertext to its wallet row."""
    return f'"2_key_shares".wallet_id={wallet_id}'


def keypair_aad(keypair_id: str) -> str:
    """Associated data binding a server private key to its keypair row."""
    return f'"2_server_keypairs".keypair_id={keypair_id}'


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
