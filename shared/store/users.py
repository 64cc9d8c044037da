"""``"2_users"``: one row per (auth_type, user_auth_id)."""

from __future__ import annotations

from shared.store.tables import USERS


def find(cur, auth_type: str | None, user_auth_id: str | None) -> str | None:
    """user_id of the identity, or None (a NULL part simply finds nothing)."""
    if auth_type is None or user_auth_id is None:
        return None
    cur.execute(
        f"SELECT user_id::text FROM {USERS} WHERE auth_type = %s AND user_auth_id = %s LIMIT 1",
        (auth_type, user_auth_id),
    )
    row = cur.fetchone()
    return row[0] if row else None


def ensure(cur, auth_type: str, user_auth_id: str) -> str:
    """user_id of the identity, creating the user if missing (race-safe)."""
    cur.execute(
        f"INSERT INTO {USERS} (auth_type, user_auth_id) VALUES (%s, %s)"
        " ON CONFLICT (auth_type, user_auth_id) DO NOTHING RETURNING user_id::text",
        (auth_type, user_auth_id),
    )
    row = cur.fetchone()
    if row is not None:
        return row[0]
    # Created concurrently: a new statement sees the other transaction's row.
    user_id = find(cur, auth_type, user_auth_id)
    if user_id is None:  # pragma: no cover - the conflicting row always exists
        raise LookupError("user vanished during registration")
    return user_id
