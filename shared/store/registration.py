"""A v1 registration (user if missing, wallet, sealed share) as one
statement: one round trip and one commit instead of BEGIN, three or four
statements and COMMIT.

The share is sealed before the statement: its ksn3 binding names the
wallet id (made here), the owner's auth_type and user_auth_id (the user row
is found or made by exactly these), the curve and the public key, so nothing
the statement returns is needed for it.

The statement is atomic. When it cannot register (the public key is taken,
or the user row was made by a concurrent registration after this statement's
snapshot, so it does not see it) a NULL reaches a NOT NULL column and the
whole statement, the new user row with it, is undone; the caller then takes
the general path (a transaction), which tells the cases apart with the
answers it always gave.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import psycopg2.errors

from shared.audit.records import Record
from shared.crypto.binding import share_binding
from shared.crypto.sealing import Cipher
from shared.db.pool import execute_prepared
from shared.store.audit import STAGED, STAGED_COLUMNS, staged_values
from shared.store.cr_sessions import committed_condition
from shared.store.tables import KEY_SHARES, USERS, WALLETS

_WITH = (
    f"WITH made AS (INSERT INTO {USERS} (auth_type, user_auth_id) VALUES ($1, $2)"
    "  ON CONFLICT (auth_type, user_auth_id) DO NOTHING RETURNING user_id),"
    " owner AS (SELECT user_id FROM made UNION ALL"
    f"  SELECT user_id FROM {USERS} WHERE auth_type = $1 AND user_auth_id = $2 LIMIT 1),"
    f" wallet AS (INSERT INTO {WALLETS} (wallet_id, user_id, curve_type, public_key)"
    "  VALUES ($3::uuid, (SELECT user_id FROM owner), $4, $5)"
    "  ON CONFLICT (public_key) DO NOTHING RETURNING wallet_id)"
)
_SHARE = (
    f" INSERT INTO {KEY_SHARES} (share_id, wallet_id, enc_share, status)"
    " VALUES ($6::uuid, (SELECT wallet_id FROM wallet), $7, 'active')"
)
REGISTER_SQL = _WITH + _SHARE
# The same, with the registration's audit record written by the statement
# itself (ksn_audit_staged; the trail seals it into the chain within a
# second): the record commits with the share or not at all, and the
# registration costs one round trip and one commit instead of three round
# trips and two commits, the second on the chain lock every writer queues on.
REGISTER_AUDITED_SQL = (
    _WITH + f", staged AS (INSERT INTO {STAGED} ({STAGED_COLUMNS})"
    " VALUES ($8, $9, $10, $11, $12, $13, $14, $15::text[], $16::jsonb, $17))" + _SHARE
)


def _guarded(sql: str) -> str:
    """``sql`` that also refuses a bearer token committed here for
    commit-reveal (cr_sessions.committed_condition; its hash and Telegram
    credential are the two parameters after ``sql``'s own): the wallet then
    gets no owner, so the statement fails like a taken key and writes
    nothing, in the same round trip as the registration."""
    owner = "(SELECT user_id FROM owner)"
    first = max(int(n) for n in re.findall(r"\$(\d+)", sql)) + 1
    condition = committed_condition(f"${first}", f"${first + 1}")
    assert sql.count(owner) == 1
    return sql.replace(owner, f"(SELECT user_id FROM owner WHERE NOT {condition})")


# (audited, guarded) -> the prepared statement's name and text
STATEMENTS: dict[tuple[bool, bool], tuple[str, str]] = {
    (False, False): ("ksn_register_v1", REGISTER_SQL),
    (True, False): ("ksn_register_v1_audited", REGISTER_AUDITED_SQL),
    (False, True): ("ksn_register_v1_guarded", _guarded(REGISTER_SQL)),
    (True, True): ("ksn_register_v1_audited_guarded", _guarded(REGISTER_AUDITED_SQL)),
}


def register_wallet(
    cur,
    cipher: Cipher,
    identity: tuple[str, str],
    curve: str,
    public_key: bytes,
    share_hex: str,
    audit: tuple[Record, str] | None = None,
    waiting: Callable[[], AbstractContextManager[Any]] = nullcontext,
    guard: tuple[str, bytes | None] | None = None,
) -> bool:
    """Register in one statement (autocommit cursor: committed, durable, when
    it returns True), with ``audit`` (a record and its stage_mac) staged in
    it when given, and nothing written when ``guard`` (a bearer token's hash
    and Telegram credential, cr_sessions.hash_committed) is committed here.
    False: nothing was written, the record neither; use the general path
    (which tells a committed token from a taken key). The statement
    runs inside ``waiting()`` (the API steps out of its gate: the commit
    waits for the disk, and other requests may run meanwhile)."""
    auth_type, user_auth_id = identity
    wallet_id = str(uuid.uuid4())
    binding = share_binding(wallet_id, auth_type, user_auth_id, curve, public_key)
    enc = cipher.seal(share_hex.lower(), binding).encode("ascii")
    params: tuple = (auth_type, user_auth_id, wallet_id, curve, public_key, str(uuid.uuid4()), enc)
    if audit is not None:
        params += staged_values(*audit)
    if guard is not None:
        params += guard
    name, sql = STATEMENTS[audit is not None, guard is not None]
    try:
        with waiting():
            execute_prepared(cur, name, sql, params)
    except psycopg2.errors.NotNullViolation as exc:
        if exc.diag.column_name in ("user_id", "wallet_id"):
            return False
        raise
    return cur.rowcount == 1
