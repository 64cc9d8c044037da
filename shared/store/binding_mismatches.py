"""``ksn_binding_mismatches``: wallets whose sealed share refused the owner
the database names (shared/crypto/binding.py). Written by the API when a read
meets one; read by /health, which drops a wallet once its share opens again
(the database was put back) or is gone."""

from __future__ import annotations

from shared.store import sealed
from shared.store.sealed import SealedRow
from shared.store.tables import BINDING_MISMATCHES

# /health rechecks at most this many: each is one decryption.
RECHECK_LIMIT = 100


def record(cur, wallet_id: str) -> None:
    cur.execute(
        f"INSERT INTO {BINDING_MISMATCHES} (wallet_id) VALUES (%s)"
        " ON CONFLICT (wallet_id) DO UPDATE SET last_seen = now(),"
        f" times = {BINDING_MISMATCHES}.times + 1",
        (wallet_id,),
    )


def recorded(cur) -> list[tuple[str, SealedRow | None]]:
    """(wallet_id, its share row as it is now or None) of recorded wallets,
    oldest first, in one query."""
    column = sealed.SHARES
    cur.execute(
        f"SELECT m.wallet_id::text, {column.select} FROM {BINDING_MISMATCHES} m"
        f" LEFT JOIN ({column.source}) ON s.wallet_id = m.wallet_id"
        " ORDER BY m.first_seen LIMIT %s",
        (RECHECK_LIMIT,),
    )
    found = []
    for wallet_id, *row in cur.fetchall():
        share = sealed.row_of(column, tuple(row)) if row[0] is not None else None
        found.append((wallet_id, share))
    return found


def forget(cur, wallet_ids: list[str]) -> None:
    cur.execute(
        f"DELETE FROM {BINDING_MISMATCHES} WHERE wallet_id = ANY(%s::uuid[])", (wallet_ids,)
    )
