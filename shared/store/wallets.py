"""``"2_wallets"`` and ``"2_key_shares"`` written together: a wallet always
comes with exactly one key share, in one transaction."""

from __future__ import annotations

import uuid

from shared.crypto.binding import share_binding
from shared.crypto.sealing import Cipher
from shared.errors import DatabaseFailure
from shared.store.tables import KEY_SHARES, WALLETS


class DuplicatePublicKey(DatabaseFailure):
    """A wallet with this public key exists already (owned by anyone)."""


def exists(cur, public_key: bytes) -> bool:
    cur.execute(f"SELECT 1 FROM {WALLETS} WHERE public_key = %s LIMIT 1", (public_key,))
    return cur.fetchone() is not None


def user_has_curve(cur, user_id: str, curve: str) -> bool:
    cur.execute(
        f"SELECT 1 FROM {WALLETS} WHERE user_id = %s AND curve_type = %s LIMIT 1", (user_id, curve)
    )
    return cur.fetchone() is not None


def create_with_share(
    cur,
    cipher: Cipher,
    owner: tuple[str, str, str],
    curve: str,
    public_key: bytes,
    share_hex: str,
) -> str:
    """Insert the wallet and its encrypted share; returns the wallet_id.

    ``owner`` is (user_id, auth_type, user_auth_id) of the user row: the
    share is sealed (ksn3) to that identity, the wallet, its curve and key.

    Raises DuplicatePublicKey (the caller's transaction must roll back) when
    the key is taken, including by a concurrent registration: ON CONFLICT
    waits for the other transaction instead of failing with a 500.
    """
    user_id, auth_type, user_auth_id = owner
    wallet_id = str(uuid.uuid4())
    cur.execute(
        f"INSERT INTO {WALLETS} (wallet_id, user_id, curve_type, public_key)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (public_key) DO NOTHING RETURNING wallet_id",
        (wallet_id, user_id, curve, public_key),
    )
    if cur.fetchone() is None:
        raise DuplicatePublicKey(public_key.hex())
    binding = share_binding(wallet_id, auth_type, user_auth_id, curve, public_key)
    enc = cipher.seal(share_hex.lower(), binding).encode("ascii")
    cur.execute(
        f"INSERT INTO {KEY_SHARES} (share_id, wallet_id, enc_share, status)"
        " VALUES (%s, %s, %s, 'active')",
        (str(uuid.uuid4()), wallet_id, enc),
    )
    return wallet_id
