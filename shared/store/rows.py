"""The two ways a store function reads its statement's answer besides whole
rows: one value from each row (ids a write RETURNING), and a count with a
second aggregate beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def first_column(cur, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    """Run ``sql``; the first value of every row it answers, in order."""
    cur.execute(sql, params)
    return [row[0] for row in cur.fetchall()]


def count_with(cur, sql: str, params: Sequence[Any]) -> tuple[int, Any]:
    """Run ``sql``, which answers one row ``(count(*), <aggregate>)``: the
    count as an int and the aggregate as Postgres gave it (None over no rows)."""
    cur.execute(sql, params)
    count, other = cur.fetchone()
    return int(count), other
