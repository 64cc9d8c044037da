"""Encrypted columns by format and key: counting their values, and reading,
locking and rewriting them in batches for ``ksnode reencrypt``.

A value's format and key id are in its first bytes (crypto.KEYED_HEAD_LEN:
``ksn3.<key id>.``, ``ksn2.<key id>.``, ``ksn1.`` or anything else for the
reference's legacy base64), so both are read in SQL without decrypting
anything. Rows are read with what their ksn3 seal names (shared/crypto/binding.py):
for a key share its wallet and the wallet owner's identity, joined in the
same query.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.crypto.binding import Binding, keypair_binding, share_binding
from shared.crypto.sealing import BOUND_PREFIX, ENVELOPE_PREFIX, KEYED_HEAD_LEN, KEYED_PREFIX
from shared.store.tables import KEY_SHARES, SERVER_KEYPAIRS, USERS, WALLETS

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class SealedColumn:
    name: str  # as shown to operators and in metrics
    table: str
    id_column: str
    aad_column: str  # the row identity the envelope's associated data names
    value_column: str
    is_bytea: bool
    # The table aliased ``s`` and whatever the binding's columns come from.
    source: str
    # SQL for the binding's columns after the row key (see binding()).
    binding_columns: str

    def binding(self, row_key: str, extra: tuple) -> Binding:
        if self is SHARES:
            auth_type, user_auth_id, curve, public_key = extra
            return share_binding(row_key, auth_type, user_auth_id, curve, _bytes(public_key))
        return keypair_binding(row_key, _bytes(extra[0]))

    @property
    def head(self) -> str:
        """SQL for the value's leading text (format and key id)."""
        value = f"s.{self.value_column}"
        if self.is_bytea:
            return f"encode(substring({value} from 1 for {KEYED_HEAD_LEN}), 'escape')"
        return f"substring({value} from 1 for {KEYED_HEAD_LEN})"

    @property
    def select(self) -> str:
        """SELECT list of a SealedRow (see row_of)."""
        return (
            f"s.{self.id_column}::text, s.{self.aad_column}::text, s.{self.value_column},"
            f" {self.binding_columns}"
        )


SHARES = SealedColumn(
    "key_shares",
    KEY_SHARES,
    "share_id",
    "wallet_id",
    "enc_share",
    True,
    f"{KEY_SHARES} s LEFT JOIN {WALLETS} w ON w.wallet_id = s.wallet_id"
    f" LEFT JOIN {USERS} o ON o.user_id = w.user_id",
    "o.auth_type, o.user_auth_id, w.curve_type, w.public_key",
)
KEYPAIRS = SealedColumn(
    "server_keypairs",
    SERVER_KEYPAIRS,
    "keypair_id",
    "keypair_id",
    "enc_private_key",
    False,
    f"{SERVER_KEYPAIRS} s",
    "s.public_key",
)
COLUMNS = (SHARES, KEYPAIRS)


@dataclass(frozen=True)
class SealedRow:
    row_id: str
    row_key: str
    value: str
    binding: Binding


def _bytes(value) -> bytes | None:
    return bytes(value) if value is not None else None


def row_of(column: SealedColumn, row: tuple) -> SealedRow:
    row_id, row_key, value, *extra = row
    return SealedRow(row_id, row_key, _text(value), column.binding(row_key, tuple(extra)))


def _group() -> str:
    return (
        f"CASE WHEN left(h, 5) IN ('{KEYED_PREFIX}', '{BOUND_PREFIX}') THEN h"
        f" WHEN left(h, 5) = '{ENVELOPE_PREFIX}' THEN '{ENVELOPE_PREFIX}' ELSE '' END"
    )


def count_by_head(cur) -> list[tuple[str, str, int]]:
    """(column name, head, rows): head is ``ksn3.<key id>.``, ``ksn2.<key id>.``,
    ``ksn1.`` or "" (legacy). One scan of each table."""
    parts = [
        f"SELECT '{c.name}', {_group()}, count(*) FROM (SELECT {c.head} AS h FROM {c.table} s) v"
        " GROUP BY 2"
        for c in COLUMNS
    ]
    cur.execute(" UNION ALL ".join(parts))
    return [(name, head, int(count)) for name, head, count in cur.fetchall()]


def _pending(column: SealedColumn, target_head: str | None) -> tuple[str, tuple]:
    """WHERE clause of values not in the target: ``target_head`` is the
    current ``ksn3.<key id>.``, or None for the legacy format."""
    if target_head is None:
        return f"left({column.head}, 5) IN (%s, %s, %s)", (
            BOUND_PREFIX,
            KEYED_PREFIX,
            ENVELOPE_PREFIX,
        )
    return f"{column.head} <> %s", (target_head,)


def count_pending(cur, column: SealedColumn, target_head: str | None) -> int:
    where, params = _pending(column, target_head)
    cur.execute(f"SELECT count(*) FROM {column.table} s WHERE {where}", params)
    return int(cur.fetchone()[0])


def first_of_format(cur, column: SealedColumn, fmt: str) -> SealedRow | None:
    """Any one value in the ksn1 or the legacy format (for a sample check)."""
    params: tuple[str, ...]
    if fmt == "ksn1":
        where, params = f"left({column.head}, 5) = %s", (ENVELOPE_PREFIX,)
    else:
        where = f"left({column.head}, 5) NOT IN (%s, %s, %s)"
        params = (BOUND_PREFIX, KEYED_PREFIX, ENVELOPE_PREFIX)
    cur.execute(f"SELECT {column.select} FROM {column.source} WHERE {where} LIMIT 1", params)
    row = cur.fetchone()
    return row_of(column, row) if row else None


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
        f"SELECT {column.select} FROM {column.source}"
        f" WHERE s.{column.id_column} > %s::uuid AND {where}"
        f" ORDER BY s.{column.id_column} LIMIT %s",
        (after_id, *params, limit),
    )
    return [row_of(column, row) for row in cur.fetchall()]


def lock(cur, column: SealedColumn, row_ids: list[str]) -> dict[str, SealedRow]:
    """Lock these rows for this transaction, skipping rows another transaction
    holds (the API stamping a reshare, another reencrypt); id -> the row as it
    is now (value and binding: a value is sealed to the owner read here)."""
    cur.execute(
        f"SELECT {column.select} FROM {column.source}"
        f" WHERE s.{column.id_column} = ANY(%s::uuid[]) FOR UPDATE OF s SKIP LOCKED",
        (row_ids,),
    )
    return {row[0]: row_of(column, row) for row in cur.fetchall()}


def rewrite(cur, column: SealedColumn, row_id: str, value: str) -> None:
    """Replace a locked row's value. ``updated_at`` is left alone: the share
    itself did not change."""
    stored = value.encode("ascii") if column.is_bytea else value
    cur.execute(
        f"UPDATE {column.table} SET {column.value_column} = %s WHERE {column.id_column} = %s",
        (stored, row_id),
    )
