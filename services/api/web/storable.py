"""Text Postgres can store (issue 16): the one check every string from a
body, a bearer credential or a provider's answer passes before it can reach
SQL or a key derivation.

Postgres refuses NUL in text, psycopg2 cannot encode an unpaired surrogate
(a ``\\ud800`` JSON escape decodes to one), and ``varchar(n)`` refuses more
than n characters. A value that fails cannot be in the database, so a lookup
with it simply matches nothing, and storing it is the client's mistake (400).
"""

from __future__ import annotations

# The reference schema's column sizes (shared/db/migrations/0001).
AUTH_TYPE_CHARS = 64  # "2_users".auth_type varchar(64)
USER_AUTH_ID_CHARS = 255  # "2_users".user_auth_id varchar(255)


def text_problem(value: str, max_chars: int | None = None) -> str | None:
    """Why ``value`` cannot be stored (a short phrase), or None when it can.
    Postgres counts varchar length in characters, as len() does."""
    if "\x00" in value:
        return "contains a NUL character"
    if not utf8_encodable(value):
        return "is not valid Unicode text (unpaired surrogate)"
    if max_chars is not None and len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    return None


def utf8_encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lookup_identity(
    auth_type: str | None, user_auth_id: str | None
) -> tuple[str | None, str | None]:
    """The pair to look a user up by: (None, None) — no user, as SQL NULL
    finds none — when either part is missing or could never have been stored."""
    if auth_type is None or user_auth_id is None:
        return None, None
    if text_problem(auth_type, AUTH_TYPE_CHARS) or text_problem(user_auth_id, USER_AUTH_ID_CHARS):
        return None, None
    return auth_type, user_auth_id
