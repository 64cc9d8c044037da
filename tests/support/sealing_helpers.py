"""Helpers for the key rotation and reencrypt tests.

``spec_legacy_*`` implement the reference's format from the spec (§8.1)
alone, with hashlib and the AES-GCM primitive, on purpose without
shared.crypto.sealing: they judge what ``ksnode reencrypt --to legacy`` writes.
``spec_ksn1_seal`` writes the pre-rotation ``ksn1.`` envelope as documented
in shared/crypto/sealing.py, standing for rows written by an earlier ksnode.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.store.tables import KEY_SHARES, USERS, WALLETS
from tests.support.keyshare_helpers import Wallet, new_user_id, secp_key, share_hex
from tests.support.node_process import KSNODE, run_ksnode

ROOT = Path(__file__).resolve().parents[2]


def spec_legacy_encrypt(plaintext: str, password: str) -> str:
    salt, iv = os.urandom(16), os.urandom(12)
    key = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 100_000, 32)
    sealed = AESGCM(key).encrypt(iv, plaintext.encode("utf-8"), None)
    return base64.b64encode(salt + iv + sealed[-16:] + sealed[:-16]).decode("ascii")


def spec_legacy_decrypt(stored: str, password: str) -> str:
    """Spec §8.1 decrypt: base64 → salt(16) | iv(12) | tag(16) | ciphertext."""
    raw = base64.b64decode(stored)
    salt, iv, tag, ciphertext = raw[:16], raw[16:28], raw[28:44], raw[44:]
    key = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 100_000, 32)
    return AESGCM(key).decrypt(iv, ciphertext + tag, None).decode("utf-8")


def spec_ksn1_seal(plaintext: str, password: str, aad: str) -> str:
    key = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), b"ksnode/envelope/v1", 100_000, 32
    )
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
    return "ksn1." + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


@dataclass(frozen=True)
class Seeded:
    user_id: str
    public_key: str
    share: str
    wallet_id: str
    share_id: str


def seed_shares(db, count: int, seal) -> list[Seeded]:
    """``count`` users with one secp256k1 wallet each and a share stored as
    ``seal(share_hex, wallet_id)`` returns (reference-style rows)."""
    out = []
    with db.transaction() as cur:
        for _ in range(count):
            user_id, key, share = new_user_id(), secp_key(), share_hex()
            wallet_id, share_id = str(uuid.uuid4()), str(uuid.uuid4())
            cur.execute(
                f"INSERT INTO {USERS} (auth_type, user_auth_id) VALUES ('telegram', %s)",
                (f"telegram_{user_id}",),
            )
            cur.execute(
                f"INSERT INTO {WALLETS} (wallet_id, user_id, curve_type, public_key)"
                f" SELECT %s, user_id, 'secp256k1', %s FROM {USERS} WHERE user_auth_id = %s",
                (wallet_id, bytes.fromhex(key), f"telegram_{user_id}"),
            )
            cur.execute(
                f"INSERT INTO {KEY_SHARES} (share_id, wallet_id, enc_share, status)"
                " VALUES (%s, %s, %s, 'active')",
                (share_id, wallet_id, seal(share, wallet_id).encode("ascii")),
            )
            out.append(Seeded(user_id, key, share, wallet_id, share_id))
    return out


def register_via_api(api, count: int) -> list[Seeded]:
    out = []
    for _ in range(count):
        wallet, key, share = Wallet(api), secp_key(), share_hex()
        r = wallet.post(
            "/keyshare/v1/register", {"curve_type": "secp256k1", "public_key": key, "share": share}
        )
        assert r.status_code == 200, r.text
        out.append(Seeded(wallet.user_id, key, share, "", ""))
    return out


def served(api, entry: Seeded) -> str | None:
    r = Wallet(api, entry.user_id).post("/keyshare/v1/", {"public_key": entry.public_key})
    return r.json()["data"]["share"] if r.status_code == 200 else None


def all_served(api, entries: list[Seeded]) -> list[Seeded]:
    """The entries the API does NOT serve back exactly (empty: all good)."""
    return [e for e in entries if served(api, e) != e.share]


def stored_values(db) -> dict[str, str]:
    """wallet_id -> enc_share text, for every key share."""
    with db.cursor() as cur:
        cur.execute(f"SELECT wallet_id::text, enc_share FROM {KEY_SHARES}")
        return {w: bytes(v).decode("ascii") for w, v in cur.fetchall()}


def opened_values(db, cipher) -> dict[str, str]:
    """wallet_id -> plaintext of every key share, each opened with what it is
    sealed to as the database says now (its row, or for ksn3 its owner)."""
    from shared.store.sealed import SHARES, row_of

    with db.cursor() as cur:
        cur.execute(f"SELECT {SHARES.select} FROM {SHARES.source}")
        rows = [row_of(SHARES, row) for row in cur.fetchall()]
    return {row.row_key: cipher.decrypt(row.value, row.binding) for row in rows}


def write_secret(folder: Path, name: str, value: str) -> Path:
    path = folder / name
    path.write_text(value)
    path.chmod(0o600)
    return path


def ksnode(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_ksnode({"PATH": os.environ.get("PATH", ""), **env}, *args, timeout=timeout)


def spawn_ksnode(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*KSNODE, *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
