"""SQL of commit-reveal: sessions, the calls made in them, reserved hashes,
bound credentials.

The reference's tables (``2_commit_reveal_sessions``, ``2_commit_reveal_api_calls``)
keep their columns and meaning; ``ksn_cr_reserved_hashes`` (migration 0008)
keeps a token hash bound to its first ephemeral key after housekeeping has
removed the session. Hashes are written in lower case; rows the reference
wrote may hold upper case, and are matched through their reservation.

``ksn_cr_credentials`` (migration 0011) binds a Telegram login, whatever its
spelling (``services/api/auth/telegram.credential``), to the ephemeral key of
the first session that revealed it here: a token hash is a hash of the text,
and one login has many texts that verify.

``ksn_cr_spent_sessions`` (migration 0012) keeps the id of a removed session
spent: a reveal's signature has no nonce or time, only the session id makes
it one-time, and the reference never frees a session id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg2.errors

from shared.errors import RequestFailure

SESSIONS = '"2_commit_reveal_sessions"'
API_CALLS = '"2_commit_reveal_api_calls"'
RESERVED = "ksn_cr_reserved_hashes"
CREDENTIALS = "ksn_cr_credentials"
SPENT = "ksn_cr_spent_sessions"

SESSION_LIFETIME = dt.timedelta(minutes=5)  # the reference's
# A hash stays bound to its key as long as the token could still be accepted:
# the longest lifetime of any token the node takes (an Auth0 id_token may be
# configured to live 30 days; Discord tokens 7, Telegram logins 1, Google 1 h)
# plus a day for clocks and JWT leeway. Bounded, so the table does not grow
# forever. Migration 0008 uses the same 31 days.
RESERVATION = dt.timedelta(days=31)
# Sessions are removed this long after they expire (a late reveal still gets
# 410 or "not in COMMITTED state" rather than 404 for a while).
SESSION_GRACE = dt.timedelta(hours=1)
# A revealed Telegram login stays bound to its key as long as it could still
# be accepted: it is accepted for 24 h after its auth_date, which is past
# when it is revealed; an hour more for the clocks of the API hosts.
CREDENTIAL_BINDING = dt.timedelta(hours=25)
# Rows of each table one housekeeping run removes at most: its statements
# stay well inside DB_QUERY_TIMEOUT_SECONDS (measured on 2 shared cores:
# about 40,000 sessions a second), so a backlog (a commit flood followed by
# a quiet hour) is worked off run by run instead of timing out, and rolling
# back, every time.
HOUSEKEEPING_BATCH = 10_000


class SessionExists(RequestFailure):
    """The session id, the ephemeral key or the token hash is taken."""


class AlreadyCalled(RequestFailure):
    """This API was already recorded for the session."""


class CredentialBound(RequestFailure):
    """The login was revealed here in a session of another ephemeral key."""

    def __init__(self, session_id: str):
        super().__init__(session_id)
        self.session_id = session_id


class NotCommitted(RequestFailure):
    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


@dataclass(frozen=True)
class Session:
    session_id: str
    operation_type: str
    client_ephemeral_pubkey: bytes
    id_token_hash: str
    state: str
    expires_at: dt.datetime
    expired: bool


def create(cur, session_id: str, operation: str, key: bytes, token_hash: str) -> None:
    """Open a session (inside the caller's transaction). The hash must be
    free or reserved to ``key``; a finished session of the same key for it is
    replaced (a second operation with one token, docs/operator.md)."""
    cur.execute(
        f"INSERT INTO {RESERVED} AS r (id_token_hash, client_ephemeral_pubkey, reserved_until)"
        " VALUES (%s, %s, now() + %s)"
        " ON CONFLICT (id_token_hash) DO UPDATE"
        " SET client_ephemeral_pubkey = EXCLUDED.client_ephemeral_pubkey,"
        " reserved_until = greatest(r.reserved_until, EXCLUDED.reserved_until)"
        " WHERE r.client_ephemeral_pubkey = EXCLUDED.client_ephemeral_pubkey"
        " OR r.reserved_until < now()"
        " RETURNING 1",
        (token_hash, key, RESERVATION),
    )
    if cur.fetchone() is None:
        raise SessionExists
    # The finished session makes way with its calls (nothing else would
    # remove them); its id stays spent (a replayed commit of it would make
    # its captured reveals verify again).
    cur.execute(
        f"WITH gone AS (DELETE FROM {SESSIONS} WHERE client_ephemeral_pubkey = %s"
        " AND (state <> 'COMMITTED' OR expires_at < now()) RETURNING session_id, created_at),"
        f" calls AS (DELETE FROM {API_CALLS} c USING gone WHERE c.session_id = gone.session_id)"
        f" INSERT INTO {SPENT} AS s (session_id, spent_until)"
        " SELECT session_id, created_at + %s FROM gone"
        " ON CONFLICT (session_id) DO UPDATE"
        " SET spent_until = greatest(s.spent_until, EXCLUDED.spent_until)",
        (key, RESERVATION),
    )
    try:
        cur.execute(
            f"INSERT INTO {SESSIONS} (session_id, operation_type, client_ephemeral_pubkey,"
            " id_token_hash, expires_at) VALUES (%s, %s, %s, %s, now() + %s)",
            (session_id, operation, key, token_hash, SESSION_LIFETIME),
        )
    except psycopg2.errors.UniqueViolation:
        raise SessionExists from None
    # After the insert: one that waited for housekeeping's removal of this id
    # sees the tombstone housekeeping committed with it.
    cur.execute(
        f"SELECT 1 FROM {SPENT} WHERE session_id = %s AND spent_until > now()", (session_id,)
    )
    if cur.fetchone() is not None:
        raise SessionExists


def get(cur, session_id: str) -> Session | None:
    cur.execute(
        "SELECT session_id::text, operation_type, client_ephemeral_pubkey, id_token_hash,"
        f" state, expires_at, now() > expires_at FROM {SESSIONS} WHERE session_id = %s",
        (session_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return Session(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], row[6])


def api_called(cur, session_id: str, api: str) -> bool:
    cur.execute(
        f"SELECT 1 FROM {API_CALLS} WHERE session_id = %s AND api_name = %s",
        (session_id, api),
    )
    return cur.fetchone() is not None


def record_call(cur, session_id: str, api: str, signature: bytes, final: bool) -> None:
    """Inside the route's transaction, before its answer leaves: the unique
    (session_id, api_name) key makes one concurrent call the winner; the
    others wait on it and fail here (or pass, if it rolled back)."""
    try:
        cur.execute(
            f"INSERT INTO {API_CALLS} (session_id, api_name, signature) VALUES (%s, %s, %s)",
            (session_id, api, signature),
        )
    except psycopg2.errors.UniqueViolation:
        raise AlreadyCalled from None
    # The row lock orders this call after a concurrent final call of another API.
    cur.execute(f"SELECT state FROM {SESSIONS} WHERE session_id = %s FOR UPDATE", (session_id,))
    row = cur.fetchone()
    state = row[0] if row is not None else "DELETED"
    if state != "COMMITTED":
        raise NotCommitted(state)
    if final:
        cur.execute(
            f"UPDATE {SESSIONS} SET state = 'COMPLETED' WHERE session_id = %s", (session_id,)
        )


def bind_credential(cur, credential: bytes, key: bytes, session_id: str) -> None:
    """Inside the route's transaction, with the call's record: bind a revealed
    login to the session's ephemeral key. Free, or already the key's (a
    second operation with one login): bound. Another key's: CredentialBound,
    naming the session that bound it. The primary key makes one of two
    concurrent sessions the winner: the other waits for it here, then fails
    (or binds, if the winner rolled back)."""
    cur.execute(
        f"INSERT INTO {CREDENTIALS} AS c (credential, client_ephemeral_pubkey, session_id,"
        " bound_until) VALUES (%s, %s, %s, now() + %s)"
        " ON CONFLICT (credential) DO UPDATE"
        " SET client_ephemeral_pubkey = EXCLUDED.client_ephemeral_pubkey,"
        " session_id = EXCLUDED.session_id,"
        " bound_until = greatest(c.bound_until, EXCLUDED.bound_until)"
        " WHERE c.client_ephemeral_pubkey = EXCLUDED.client_ephemeral_pubkey"
        " OR c.bound_until < now()"
        " RETURNING 1",
        (credential, key, session_id, CREDENTIAL_BINDING),
    )
    if cur.fetchone() is not None:
        return
    cur.execute(f"SELECT session_id::text FROM {CREDENTIALS} WHERE credential = %s", (credential,))
    row = cur.fetchone()
    raise CredentialBound(row[0] if row is not None else "")


def committed_condition(token_hash: str, credential: str) -> str:
    """SQL, true when the token hash (placeholder ``token_hash``) is
    committed here (a session or a live reservation) or the Telegram login's
    credential (placeholder ``credential``, NULL for other providers) is
    bound here. One text for every statement that asks (hash_committed, the
    guarded share lookup, the guarded v1 registration)."""
    return (
        f"(EXISTS (SELECT 1 FROM {RESERVED} WHERE id_token_hash = {token_hash}"
        " AND reserved_until > now())"
        f" OR EXISTS (SELECT 1 FROM {SESSIONS} WHERE id_token_hash = {token_hash})"
        f" OR EXISTS (SELECT 1 FROM {CREDENTIALS} WHERE credential = {credential}::bytea"
        " AND bound_until > now()))"
    )


HASH_COMMITTED_SQL = "SELECT " + committed_condition("%(hash)s", "%(credential)s")


def hash_committed(cur, token_hash: str, credential: bytes | None = None) -> bool:
    """Is this token's hash committed here (a session or a live reservation),
    or, given a Telegram login's credential, is that login bound here?"""
    cur.execute(HASH_COMMITTED_SQL, {"hash": token_hash, "credential": credential})
    return bool(cur.fetchone()[0])


def housekeep(cur, batch: int = HOUSEKEEPING_BATCH) -> tuple[int, int, int, int]:
    """Remove sessions (and their calls) expired for SESSION_GRACE, keeping
    their hashes reserved, their logins bound and their ids spent, then
    reservations, bindings and spent ids that ran out: at most ``batch`` rows
    of each, oldest first. Returns the four counts (one equal to ``batch``:
    more are left)."""
    cur.execute(
        f"WITH gone AS (DELETE FROM {SESSIONS} WHERE session_id IN"
        f" (SELECT session_id FROM {SESSIONS} WHERE expires_at < now() - %s"
        " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " RETURNING session_id, client_ephemeral_pubkey, id_token_hash, created_at),"
        f" calls AS (DELETE FROM {API_CALLS} c USING gone WHERE c.session_id = gone.session_id),"
        f" spent AS (INSERT INTO {SPENT} (session_id, spent_until)"
        " SELECT session_id, created_at + %s FROM gone ON CONFLICT (session_id) DO NOTHING),"
        f" kept AS (INSERT INTO {RESERVED} (id_token_hash, client_ephemeral_pubkey, reserved_until)"
        " SELECT DISTINCT ON (lower(id_token_hash)) lower(id_token_hash),"
        " client_ephemeral_pubkey, created_at + %s FROM gone"
        " ORDER BY lower(id_token_hash), created_at"
        " ON CONFLICT (id_token_hash) DO NOTHING)"
        " SELECT count(*) FROM gone",
        (SESSION_GRACE, batch, RESERVATION, RESERVATION),
    )
    sessions = cur.fetchone()[0]
    counts = [sessions]
    for table, key, until in (
        (RESERVED, "id_token_hash", "reserved_until"),
        (CREDENTIALS, "credential", "bound_until"),
        (SPENT, "session_id", "spent_until"),
    ):
        cur.execute(
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table}"
            f" WHERE {until} < now() ORDER BY {until} LIMIT %s FOR UPDATE SKIP LOCKED)",
            (batch,),
        )
        counts.append(cur.rowcount)
    return counts[0], counts[1], counts[2], counts[3]
