"""Helpers the key share routes share: decrypting a stored share and turning
a unique-key race into the documented 409."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.errors

from services.api.context import node
from services.api.errors import ApiError
from shared.crypto import DecryptError, share_aad
from shared.store.shares import WalletShare
from shared.store.wallets import DuplicatePublicKey

log = logging.getLogger(__name__)


def decrypt_share(entry: WalletShare) -> str:
    """The stored share's hex text, as the reference returns it."""
    assert entry.enc_share is not None and entry.wallet_id is not None
    try:
        return node().cipher.decrypt(entry.enc_share, share_aad(entry.wallet_id))
    except DecryptError as exc:
        log.error("key share does not decrypt", extra={"event": "share.decrypt_failed",
                                                       "wallet_id": entry.wallet_id,
                                                       "reason": str(exc)})
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
