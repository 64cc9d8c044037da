"""The node's Ed25519 server keypair (spec §8.3, §8.4).

The active keypair is the active row with the highest version. Its private
key (the 32-byte seed as lowercase hex) is stored encrypted; rows written by
the reference use the legacy format, ours the envelope sealed to the keypair's row id and public key (ksn3,
shared/crypto/binding.py), so a public key swapped in the database does not open. The public
key is used as stored (not re-derived), as the reference does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from shared.crypto.binding import keypair_binding
from shared.crypto.sealing import Cipher
from shared.errors import CryptoFailure
from shared.store.tables import SERVER_KEYPAIRS


class KeypairError(CryptoFailure):
    """The active keypair could not be loaded or created."""


@dataclass(frozen=True)
class ServerKeypair:
    keypair_id: str
    version: int
    public_key: bytes
    seed: bytes

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    def __repr__(self) -> str:
        return f"ServerKeypair(version={self.version}, public_key={self.public_key_hex})"


@dataclass(frozen=True)
class KeypairRow:
    version: int
    public_key_hex: str
    is_active: bool
    created_at: dt.datetime


def generate() -> tuple[bytes, bytes]:
    """(seed, public_key) of a fresh Ed25519 keypair."""
    # Imported here: the reporter loads the keypair but never makes one, and
    # these modules are ~1.8 MiB of a small program's memory.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return seed, public


def _insert(cur, cipher: Cipher) -> ServerKeypair:
    seed, public = generate()
    keypair_id = str(uuid.uuid4())
    enc = cipher.seal(seed.hex(), keypair_binding(keypair_id, public))
    cur.execute(
        f"INSERT INTO {SERVER_KEYPAIRS} (keypair_id, public_key, enc_private_key, is_active)"
        " VALUES (%s, %s, %s, true) RETURNING version",
        (keypair_id, public, enc),
    )
    version = cur.fetchone()[0]
    return ServerKeypair(keypair_id, version, public, seed)


def load_or_create(db, cipher: Cipher) -> tuple[ServerKeypair, bool]:
    """The active keypair, creating one if there is none. Returns (keypair, created).

    Creation takes a transaction-scoped advisory lock so that the three
    programs starting at once create exactly one keypair.
    """
    with db.transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (0x6B736E6B657970,))
        cur.execute(
            f"SELECT keypair_id::text, version, public_key, enc_private_key FROM {SERVER_KEYPAIRS}"
            " WHERE is_active = true ORDER BY version DESC LIMIT 1"
        )
        row = cur.fetchone()
        if row is None:
            return _insert(cur, cipher), True
    keypair_id, version, public_key, enc_private_key = row
    try:
        seed_hex = cipher.decrypt(enc_private_key, keypair_binding(keypair_id, bytes(public_key)))
        seed = bytes.fromhex(seed_hex)
    except Exception as exc:  # noqa: BLE001 - turned into one clear startup error
        raise KeypairError(
            f"cannot decrypt server keypair version {version}: {exc} "
            "(is ENCRYPTION_SECRET_PATH the secret this database was written with?)"
        ) from None
    if len(seed) != 32:
        raise KeypairError(f"server keypair version {version} has a malformed private key")
    return ServerKeypair(keypair_id, version, bytes(public_key), seed), False


def rotate(db, cipher: Cipher) -> ServerKeypair:
    """Deactivate every active keypair and insert a new active one, atomically."""
    with db.transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (0x6B736E6B657970,))
        cur.execute(
            f"UPDATE {SERVER_KEYPAIRS} SET is_active = false, rotated_at = now(), updated_at = now()"
            " WHERE is_active = true"
        )
        return _insert(cur, cipher)


def list_keypairs(db) -> list[KeypairRow]:
    with db.cursor() as cur:
        cur.execute(
            f"SELECT version, public_key, is_active, created_at FROM {SERVER_KEYPAIRS}"
            " ORDER BY version DESC"
        )
        return [
            KeypairRow(v, bytes(pk).hex(), active, created)
            for v, pk, active, created in cur.fetchall()
        ]


def format_listing(rows: list[KeypairRow]) -> str:
    """The reference's --list table (spec §8.4)."""
    if not rows:
        return "No server keypairs found."
    lines = [f"{'Version':<10}{'Public Key':<68}{'Active':<10}Created At", "-" * 98]
    for row in rows:
        active = "✓ Yes" if row.is_active else "✗ No"
        lines.append(
            f"{row.version:<10}{row.public_key_hex:<68}{active:<10}"
            f"{row.created_at.astimezone(dt.UTC):%Y-%m-%d}"
        )
    lines.append(f"Total: {len(rows)} keypair(s)")
    return "\n".join(lines)
