"""Helpers the key share routes share: decrypting a stored share and turning
a unique-key race into the documented 409."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg2.errors
from flask import Response, after_this_request

from services.api.web.commit_reveal import deferred_marks, refuse_if_committed
from services.api.web.context import node
from services.api.web.errors import RESHARE_MISMATCH_STATUS, ApiError
from shared.crypto.sealing import BindingMismatch, DecryptError, value_format
from shared.store import binding_mismatches, cr_sessions, shares
from shared.store.shares import WalletShare
from shared.store.wallets import DuplicatePublicKey

log = logging.getLogger(__name__)


def decrypt_share(entry: WalletShare) -> str:
    """The stored share's hex text, as the reference returns it.

    A ksn3 share opens only as the identity the request proved (entry.binding,
    the lookup's caller), so only for the identity it was sealed to, whatever
    the users table says; one that refuses it is never served to anybody."""
    assert entry.enc_share is not None and entry.wallet_id is not None
    ctx = node()
    if ctx.config.unbound_shares == "refuse":
        stored_format = value_format(entry.enc_share)[0]
        if stored_format != "ksn3":
            # Every row was bound (the operator says so): an unbound value is
            # an old one written back, which would open for any owner.
            owner_mismatch(entry.wallet_id, f"{stored_format} value refused (UNBOUND_SHARES)")
    try:
        return ctx.cipher.decrypt(entry.enc_share, entry.binding)
    except BindingMismatch:
        owner_mismatch(entry.wallet_id)
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


def owner_mismatch(wallet_id: str, reason: str = "does not open for this owner") -> NoReturn:
    """Log, remember for /health, and answer 409 SHARE_OWNER_MISMATCH. The
    route's audit record carries the code (services/api/ops/audit.py)."""
    log.error(
        "key share refused: its owner or identity was changed in the database",
        extra={"event": "share.owner_mismatch", "wallet_id": wallet_id, "reason": reason},
    )

    # After the route: its transaction (a reshare's) rolls back on this
    # error, and the record must stay.
    @after_this_request
    def remember(response: Response) -> Response:
        try:
            with node().db.transaction() as cur:
                binding_mismatches.record(cur, wallet_id)
        except Exception as exc:  # noqa: BLE001 - the answer and the log line stand
            log.error(
                "could not record a share owner mismatch",
                extra={
                    "event": "share.owner_mismatch_unrecorded",
                    "wallet_id": wallet_id,
                    "reason": type(exc).__name__,
                },
            )
        return response

    raise ApiError(
        "SHARE_OWNER_MISMATCH",
        "Key share is not sealed to this wallet's owner: it was changed in the database",
    )


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


def read_shares(
    cur, lookup_key: tuple[str | None, str | None], keys: list[bytes]
) -> tuple[str | None, list[WalletShare]]:
    """The share lookup of a read route, with the commit-reveal check of a
    bare request (a committed token is refused; a Telegram login also by its
    credential, every spelling of it) in the same statement."""
    marks = deferred_marks()
    if marks is None:
        return shares.lookup(cur, *lookup_key, keys)
    if not keys:  # nothing to look up: the check alone
        refuse_if_committed(cr_sessions.hash_committed(cur, *marks))
        return shares.lookup(cur, *lookup_key, keys)
    committed, user_id, entries = shares.lookup_guarded(cur, *lookup_key, keys, *marks)
    refuse_if_committed(committed)
    return user_id, entries
