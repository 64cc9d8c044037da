"""Helpers the key share routes share: decrypting a stored share and turning
a unique-key race into the documented 409."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.errors

from services.api.context import node
from services.api.errors import RESHARE_MISMATCH_STATUS, ApiError
from shared.crypto import DecryptError, share_aad
from shared.store import shares
from shared.store.shares import WalletShare
from shared.store.wallets import DuplicatePublicKey

log = logging.getLogger(__name__)


def decrypt_share(entry: WalletShare) -> str:
    """The stored share's hex text, as the reference returns it."""
    assert entry.enc_share is not None and entry.wallet_id is not None
    try:
        return node().cipher.decrypt(entry.enc_share, share_aad(entry.wallet_id))
    except DecryptError as exc:
        log.error(
            "key share does not decrypt",
            extra={
                "event": "share.decrypt_failed",
                "wallet_id": entry.wallet_id,
                "reason": str(exc),
            },
        )
        raise ApiError("UNKNOWN_ERROR", "Failed to decrypt key share") from None


@contextmanager
def unique_violation_as_duplicate(msg: str) -> Iterator[None]:
    """A registration that lost a race (or found the key taken) is a 409."""
    try:
        yield
    except DuplicatePublicKey:
        raise ApiError("DUPLICATE_PUBLIC_KEY", msg) from None
    except psycopg2.errors.UniqueViolation as exc:
        if exc.diag.constraint_name in ("2_wallets_public_key_key", "2_key_shares_unique"):
            raise ApiError("DUPLICATE_PUBLIC_KEY", msg) from None
        raise


def check_owned(entry: WalletShare, user_id: str, curve: str) -> None:
    """v2's per-curve checks, in the reference's order."""
    if entry.wallet_id is None:
        raise ApiError("WALLET_NOT_FOUND", f"Wallet not found for curve_type: {curve}")
    if entry.owner_id != user_id:
        raise ApiError("UNAUTHORIZED", "Unauthorized: wallet belongs to different user")
    if entry.enc_share is None:
        raise ApiError("KEY_SHARE_NOT_FOUND", f"Key share not found for curve_type: {curve}")


def confirm_reshare(
    cur, entry: WalletShare, submitted: bytes, mismatch: str, not_stamped: str
) -> None:
    """The submitted share must equal the stored one (constant time, case
    insensitive); then the reshare time is stamped."""
    stored = decrypt_share(entry)
    if not hmac.compare_digest(stored.lower().encode(), submitted.hex().encode()):
        raise ApiError("RESHARE_FAILED", mismatch, status=RESHARE_MISMATCH_STATUS)
    assert entry.wallet_id is not None
    if not shares.stamp_reshare(cur, entry.wallet_id):
        raise ApiError("RESHARE_FAILED", not_stamped)
