"""AES-256-GCM, the one primitive sealing.py needs from cryptography.

A module of its own so that sealing.py imports it only when a value is
sealed or opened: every program builds a ``Cipher`` at start (key ids are
PBKDF2, from hashlib), but the backup worker never opens a value on a
database of ksn2/ksn3 rows, and loading cryptography costs a process about
3 MiB of memory of its own (its Rust library's relocated pages and
OpenSSL's state), which the node's memory goal counts.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Aead:
    """One key's AES-GCM; ``open`` answers None when the tag does not match."""

    __slots__ = ("_aesgcm",)

    def __init__(self, key: bytes):
        self._aesgcm = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes | None) -> bytes:
        """ciphertext | tag"""
        return self._aesgcm.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, sealed: bytes, aad: bytes | None) -> bytes | None:
        try:
            return self._aesgcm.decrypt(nonce, sealed, aad)
        except InvalidTag:
            return None
