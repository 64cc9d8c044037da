"""Reading key shares: user, wallet and share of each requested public key in
one round trip, so a fetch costs one query however the checks turn out. The
same query reads the wallet's curve and public key: with the identity the
request proved, what a ksn3 share is opened as (shared/crypto/binding.py)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.crypto.binding import Binding, share_binding
from shared.db.pool import execute_prepared
from shared.store.cr_sessions import committed_condition
from shared.store.tables import KEY_SHARES, USERS, WALLETS


@dataclass(frozen=True)
class WalletShare:
    """What the database holds for one public key (None where missing)."""

    wallet_id: str | None
    owner_id: str | None
    curve_type: str | None
    share_id: str | None
    enc_share: bytes | None
    # The identity the lookup was made for (the caller's, proved by its
    # token) and the wallet's public key: with wallet_id and curve_type, what
    # a ksn3 share is opened as. Not the owner the users table names: whoever
    # can write that table (a duplicated user_id, a re-pointed row) must not
    # decide whom a share opens for; the share opens only for the identity it
    # was sealed to.
    caller_auth_type: str | None = None
    caller_user_auth_id: str | None = None
    public_key: bytes | None = None

    @property
    def binding(self) -> Binding:
        assert self.wallet_id is not None
        return share_binding(
            self.wallet_id,
            self.caller_auth_type,
            self.caller_user_auth_id,
            self.curve_type,
            self.public_key,
        )


# LATERAL ... LIMIT 1 keeps each key's wallet, owner and share index lookups
# whatever the table sizes: the pool runs prepared statements' generic plans
# (pool.py), made once per connection, and a plain join of the shares table
# gets a hash join over all of it in that plan while the table is small.
LOOKUP_SQL = (
    f"SELECT (SELECT user_id::text FROM {USERS} WHERE auth_type = $1 AND user_auth_id = $2 LIMIT 1),"
    " k.ord, w.wallet_id::text, w.user_id::text, w.curve_type, w.share_id::text, w.enc_share,"
    " w.public_key"
    " FROM unnest($3::bytea[]) WITH ORDINALITY AS k(public_key, ord)"
    " LEFT JOIN LATERAL (SELECT ww.wallet_id, ww.user_id, ww.curve_type, ww.public_key,"
    "  s.share_id, s.enc_share"
    f"  FROM {WALLETS} ww LEFT JOIN {KEY_SHARES} s ON s.wallet_id = ww.wallet_id"
    "  WHERE ww.public_key = k.public_key LIMIT 1) w ON true"
    " ORDER BY k.ord"
)


# The same lookup, also asking whether a bearer token's hash is committed
# for commit-reveal, or its Telegram login bound (cr_sessions.hash_committed,
# same conditions; $5 is NULL for other providers): a bare share read then
# costs one round trip instead of two. An uncorrelated subquery: Postgres
# runs it once per statement, not per row.
GUARDED_LOOKUP_SQL = LOOKUP_SQL.replace(
    " FROM unnest(", f", {committed_condition('$4', '$5')} FROM unnest(", 1
)


def lookup_guarded(
    cur,
    auth_type: str | None,
    user_auth_id: str | None,
    public_keys: list[bytes],
    token_hash: str,
    credential: bytes | None = None,
) -> tuple[bool, str | None, list[WalletShare]]:
    """lookup() and, in the same statement, whether ``token_hash`` is
    committed (a session or a live reservation) or the Telegram login's
    ``credential`` bound: (committed, user_id, entries). ``public_keys`` must
    not be empty."""
    execute_prepared(
        cur,
        "ksn_share_lookup_guarded",
        GUARDED_LOOKUP_SQL,
        (auth_type, user_auth_id, public_keys, token_hash, credential),
    )
    rows = cur.fetchall()
    committed = bool(rows[0][8]) if rows else False
    user_id, entries = _entries([row[:8] for row in rows], auth_type, user_auth_id)
    return committed, user_id, entries


def lookup(
    cur, auth_type: str | None, user_auth_id: str | None, public_keys: list[bytes]
) -> tuple[str | None, list[WalletShare]]:
    """(user_id or None, one WalletShare per public key, in order).

    A None auth_type or user_auth_id compares as SQL NULL and finds no user,
    like the reference's lookups."""
    if not public_keys:
        from shared.store.users import find

        return find(cur, auth_type, user_auth_id), []
    execute_prepared(cur, "ksn_share_lookup", LOOKUP_SQL, (auth_type, user_auth_id, public_keys))
    return _entries(cur.fetchall(), auth_type, user_auth_id)


def _entries(
    rows: list[tuple], auth_type: str | None, user_auth_id: str | None
) -> tuple[str | None, list[WalletShare]]:
    user_id = rows[0][0] if rows else None
    entries = [
        WalletShare(
            wallet_id,
            owner,
            curve,
            share_id,
            bytes(enc) if enc is not None else None,
            auth_type,
            user_auth_id,
            bytes(key) if key is not None else None,
        )
        for _, _, wallet_id, owner, curve, share_id, enc, key in rows
    ]
    return user_id, entries


def stamp_reshare(cur, wallet_id: str) -> bool:
    """Record a confirmed reshare; True when exactly one share was stamped."""
    cur.execute(
        f"UPDATE {KEY_SHARES} SET status = 'active', reshared_at = now(), updated_at = now()"
        " WHERE wallet_id = %s",
        (wallet_id,),
    )
    return cur.rowcount == 1
