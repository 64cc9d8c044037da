"""Encrypted columns by format and key: counting their values, and reading,
locking and rewriting them in batches for ``ksnode reencrypt``.

A value's format and key id are in its first bytes (crypto.KEYED_HEAD_LEN:
``ksn2.<key id>.``, ``ksn1.`` or anything else for the reference's legacy
base64), so both are read in SQL without decrypting anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.crypto import ENVELOPE_PREFIX, KEYED_HEAD_LEN, KEYED_PREFIX, keypair_aad, share_aad
from shared.store.tables import KEY_SHARES, SERVER_KEYPAIRS

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class SealedColumn:
    name: str  # as shown to operators and in metrics
    table: str
    id_column: str
    aad_column: str  # the row identity the envelope's associated data names
    value_column: str
    is_bytea: bool

    def aad(self, row_key: str) -> str:
        return share_aad(row_key) if self is SHARES else keypair_aad(row_key)

    @property
    def head(self) -> str:
        """SQL for the value's leading text (format and key id)."""
        if self.is_bytea:
            return f"encode(substring({self.value_column} from 1 for {KEYED_HEAD_LEN}), 'escape')"
        return f"substring({self.value_column} from 1 for {KEYED_HEAD_LEN})"


SHARES = SealedColumn("key_shares", KEY_SHARES, "share_id", "wallet_id", "enc_share", True)
KEYPAIRS = SealedColumn(
    "server_keypairs", SERVER_KEYPAIRS, "keypair_id", "keypair_id", "enc_private_key", False
)
COLUMNS = (SHARES, KEYPAIRS)


@dataclass(frozen=True)
class SealedRow:
    row_id: str
    row_key: str
    value: str


def _group() -> str:
    return (
        f"CASE WHEN left(h, 5) = '{KEYED_PREFIX}' THEN h"
        f" WHEN left(h, 5) = '{ENVELOPE_PREFIX}' THEN '{ENVELOPE_PREFIX}' ELSE '' END"
    )


def count_by_head(cur) -> list[tuple[str, str, int]]:
    """(column name, head, rows): head is ``ksn2.<key id>.``, ``ksn1.`` or
    "" (legacy). One scan of each table."""
    parts = [
        f"SELECT '{c.name}', {_group()}, count(*) FROM (SELECT {c.head} AS h FROM {c.table}) v"
        " GROUP BY 2"
        for c in COLUMNS
    ]
    cur.execute(" UNION ALL ".join(parts))
    return [(name, head, int(count)) for name, head, count in cur.fetchall()]


def _pending(column: SealedColumn, target_head: str | None) -> tuple[str, tuple]:
    """WHERE clause of values not in the target: ``target_head`` is the
    current ``ksn2.<key id>.``, or None for the legacy format."""
    if target_head is None:
        return f"left({column.head}, 5) IN (%s, %s)", (KEYED_PREFIX, ENVELOPE_PREFIX)
    return f"{column.head} <> %s", (target_head,)


def count_pending(cur, column: SealedColumn, target_head: str | None) -> int:
    where, params = _pending(column, target_head)
    cur.execute(f"SELECT count(*) FROM {column.table} WHERE {where}", params)
    return int(cur.fetchone()[0])


def first_of_format(cur, column: SealedColumn, fmt: str) -> SealedRow | None:
    """Any one value in the ksn1 or the legacy format (for a sample check)."""
    if fmt == "ksn1":
        where, params = f"left({column.head}, 5) = %s", (ENVELOPE_PREFIX,)
    else:
        where, params = f"left({column.head}, 5) NOT IN (%s, %s)", (KEYED_PREFIX, ENVELOPE_PREFIX)
    cur.execute(
        f"SELECT {column.id_column}::text, {column.aad_column}::text, {column.value_column}"
        f" FROM {column.table} WHERE {where} LIMIT 1",
        params,
    )
    row = cur.fetchone()
    return SealedRow(row[0], row[1], _text(row[2])) if row else None


def _text(value) -> str:
    if isinstance(value, str):
        return value
    # Legacy values are ASCII; anything else fails to decrypt later, as it should.
    return bytes(value).decode("ascii", "replace")


def pending_after(
    cur, column: SealedColumn, target_head: str | None, after_id: str, limit: int
) -> list[SealedRow]:
    """The next ``limit`` values not in the target, in id order after ``after_id``
    (a keyset scan: each batch is one index range, whatever the table size)."""
    where, params = _pending(column, target_head)
    cur.execute(
        f"SELECT {column.id_column}::text, {column.aad_column}::text, {column.value_column}"
        f" FROM {column.table} WHERE {column.id_column} > %s::uuid AND {where}"
        f" ORDER BY {column.id_column} LIMIT %s",
        (after_id, *params, limit),
    )
    return [SealedRow(i, k, _text(v)) for i, k, v in cur.fetchall()]


def lock(cur, column: SealedColumn, row_ids: list[str]) -> dict[str, str]:
    """Lock these rows for this transaction, skipping rows another transaction
    holds (the API stamping a reshare, another reencrypt); id -> current value."""
    cur.execute(
        f"SELECT {column.id_column}::text, {column.value_column} FROM {column.table}"
        f" WHERE {column.id_column} = ANY(%s::uuid[]) FOR UPDATE SKIP LOCKED",
        (row_ids,),
    )
    return {i: _text(v) for i, v in cur.fetchall()}


def rewrite(cur, column: SealedColumn, row_id: str, value: str) -> None:
    """Replace a locked row's value. ``updated_at`` is left alone: the share
    itself did not change."""
    stored = value.encode("ascii") if column.is_bytea else value
    cur.execute(
        f"UPDATE {column.table} SET {column.value_column} = %s WHERE {column.id_column} = %s",
        (stored, row_id),
    )
