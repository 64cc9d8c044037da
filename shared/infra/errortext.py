"""One line that says why something failed, for logs, /health and stderr."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of ``exc``'s message (psycopg2 and subprocess errors run
    over several lines), else its type name; cut at ``limit`` characters."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if limit is None else line[:limit]
