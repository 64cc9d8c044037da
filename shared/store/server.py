"""Facts about the database server itself (not our tables)."""

from __future__ import annotations


def database_encoding(cur) -> str:
    """The character encoding of the current database, e.g. ``UTF8``."""
    cur.execute(
        "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
    )
    return cur.fetchone()[0]
