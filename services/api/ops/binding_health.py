"""/health's share_binding_mismatch: recorded wallets (shared/store/
binding_mismatches.py) whose share still refuses the owner the database
names. A wallet whose share opens again (the database was put back) or is
gone is forgotten, so the reason clears by itself."""

from __future__ import annotations

import logging

from shared.crypto.sealing import DecryptError, value_format
from shared.store import binding_mismatches

log = logging.getLogger(__name__)


def mismatched_wallets(ctx, timeout_seconds: float) -> int:
    """How many recorded wallets still do not open (0 when unknown: the
    database reasons of /health report an outage)."""
    try:
        with ctx.db.cursor(timeout=timeout_seconds) as cur:
            found = binding_mismatches.recorded(cur)
        if not found:
            return 0
        settled = [wallet_id for wallet_id, row in found if row is None or _opens(ctx, row)]
        if settled:
            with ctx.db.transaction() as cur:
                binding_mismatches.forget(cur, settled)
        return len(found) - len(settled)
    except Exception as exc:  # noqa: BLE001 - /health never fails on this part
        log.warning(
            "could not check recorded share owner mismatches",
            extra={"event": "health.binding_check_failed", "reason": type(exc).__name__},
        )
        return 0


def _opens(ctx, row) -> bool:
    """Whether the API would serve the row now (routes/shares.decrypt_share)."""
    if ctx.config.unbound_shares == "refuse" and value_format(row.value)[0] != "ksn3":
        return False
    try:
        ctx.cipher.decrypt(row.value, row.binding)
    except DecryptError:
        return False
    return True
