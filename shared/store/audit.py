"""``ksn_audit``: the audit trail's rows (shared/audit/records.py says what they mean).

Appends are serialised across every process and node sharing the database by
a transaction-scoped advisory lock: under it the head (last seq and hash) is
read, the new records are sealed after it and inserted, and the commit
releases the lock. Sealing needs the node's key, which only Python holds, so
the caller passes a function that turns the head into sealed rows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shared.audit.records import Record, Sealed
from shared.store.rows import count_with

AUDIT = "ksn_audit"  # kept here, not in tables.py: this family is only ours
# Records committed with the write they record, waiting to be sealed into
# the chain (migration 0009; services/api/ops/audit.py stages them).
STAGED = "ksn_audit_staged"
STAGED_COLUMNS = (
    "at, event, outcome, request_id, client, auth_type, user_ref, public_keys, detail, mac"
)
# In the chain in place of a staged record that does not carry the node's MAC
# (shared/audit/trail.py); migration 0010 indexes these records alone.
STAGED_REFUSED_EVENT = "audit.staged_refused"
# Claimed per append: a flush seals at most this many staged records.
STAGED_BATCH = 5000
# "ksnaudit" in ASCII: one lock for the chain of the whole database.
CHAIN_LOCK_KEY = 0x6B736E6175646974

COLUMNS = (
    "seq, at, event, outcome, request_id, client, auth_type, user_ref, public_keys, detail,"
    " key_id, prev_hash, hash"
)


def lock_chain(cur) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))


def head(cur) -> tuple[int, str] | None:
    cur.execute(f"SELECT seq, hash FROM {AUDIT} ORDER BY seq DESC LIMIT 1")
    row = cur.fetchone()
    return (row[0], row[1]) if row else None


def insert(cur, rows: list[Sealed]) -> None:
    """COPY the rows in, each as the text its hash was computed over: a
    batch of a second's reads costs a few µs per row."""
    data = "".join(f"{item.text}\t{item.hash}\n" for item in rows)
    cur.copy_expert(f"COPY {AUDIT} ({COLUMNS}) FROM STDIN", io.StringIO(data))


Sealer = Callable[[tuple[int, str] | None, list[tuple[Record, str | None]]], list[Sealed]]


def append(conn, seal: Sealer, *, claim_staged: bool = False) -> list[Sealed]:
    """Lock the chain, seal after its head, insert, commit: two round trips
    for a few records (three for a batch) on a pooled (autocommit)
    connection, so the lock is held briefly. On an error the pool rolls the
    transaction back.

    ``seal`` gets the head and the staged records this transaction took
    (``claim_staged``; else none): they leave ksn_audit_staged in the
    transaction that puts them in the chain, so a failure keeps them there."""
    with conn.cursor() as cur:
        cur.execute(
            "BEGIN; SELECT pg_advisory_xact_lock(%s);"
            f" SELECT seq, hash FROM {AUDIT} ORDER BY seq DESC LIMIT 1",
            (CHAIN_LOCK_KEY,),
        )
        row = cur.fetchone()
        staged = take_staged(cur) if claim_staged else []
        rows = seal((row[0], row[1]) if row else None, staged)
        if len(rows) > SMALL_BATCH:
            insert(cur, rows)
            cur.execute("COMMIT")
        elif rows:  # a durable record alone: INSERT and COMMIT in one round trip
            values = ",".join(cur.mogrify(VALUES, _values(item)).decode() for item in rows)
            cur.execute(f"INSERT INTO {AUDIT} ({COLUMNS}) VALUES {values}; COMMIT")
        else:
            cur.execute("COMMIT")
    return rows


def staged_waiting(cur) -> bool:
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {STAGED})")
    return bool(cur.fetchone()[0])


def take_staged(cur) -> list[tuple[Record, str | None]]:
    """Delete up to STAGED_BATCH staged records (oldest first) and return
    them with their MACs; inside the append's transaction, under the chain
    lock (so no other appender takes the same ones)."""
    cur.execute(
        f"DELETE FROM {STAGED} WHERE id IN (SELECT id FROM {STAGED} ORDER BY id LIMIT %s)"
        f" RETURNING id, {STAGED_COLUMNS}",
        (STAGED_BATCH,),
    )
    return [(_record(row[1:10]), row[10]) for row in sorted(cur.fetchall())]


def staged_values(record: Record, mac: str) -> tuple[Any, ...]:
    """A record's values for an INSERT into ksn_audit_staged (STAGED_COLUMNS order)."""
    return (*_record_values(record), mac)


def _record_values(r: Record) -> tuple[Any, ...]:
    """A record's own columns, ``at`` to ``detail`` (the same in ksn_audit and
    ksn_audit_staged): public_keys as text[], detail as jsonb text."""
    detail = json.dumps(r.detail, sort_keys=True) if r.detail is not None else None
    return (
        r.at,
        r.event,
        r.outcome,
        r.request_id,
        r.client,
        r.auth_type,
        r.user_ref,
        list(r.public_keys),
        detail,
    )


def _record(columns: Sequence[Any]) -> Record:
    """The Record of its own columns as read back, ``at`` to ``detail``."""
    at, event, outcome, request_id, client, auth_type, user_ref, keys, detail = columns
    return Record(
        event=event,
        outcome=outcome,
        at=at.astimezone(dt.UTC),
        request_id=request_id,
        client=client,
        auth_type=auth_type,
        user_ref=user_ref,
        public_keys=tuple(keys or ()),
        detail=detail,
    )


SMALL_BATCH = 20
VALUES = "(%s, %s, %s, %s, %s, %s, %s, %s, %s::text[], %s::jsonb, %s, %s, %s)"


def _values(item: Sealed) -> tuple[Any, ...]:
    return (item.seq, *_record_values(item.record), item.key_id, item.prev_hash, item.hash)


def retention_cut(cur, cutoff: dt.datetime, limit: int) -> tuple[int, int | None]:
    """Inside a transaction holding the chain lock: delete up to ``limit``
    records from the start of the trail up to the newest one older than
    ``cutoff``; (count, highest seq deleted). Always a prefix by seq, so
    what remains is still one unbroken chain."""
    return count_with(
        cur,
        f"WITH bound AS (SELECT max(seq) AS s FROM {AUDIT} WHERE at < %s),"
        f" gone AS (DELETE FROM {AUDIT} WHERE seq IN (SELECT a.seq FROM {AUDIT} a, bound"
        "  WHERE a.seq <= bound.s ORDER BY a.seq LIMIT %s) RETURNING seq)"
        " SELECT count(*), max(seq) FROM gone",
        (cutoff, limit),
    )


def _sealed(row: tuple[Any, ...]) -> Sealed:
    return Sealed(row[0], _record(row[1:10]), row[10], row[11], row[12])


def scan(conn, after_seq: int = 0, batch: int = 5000) -> Iterator[Sealed]:
    """Every record after ``after_seq`` in seq order, read in pages inside
    one repeatable-read transaction, so a long verify sees one consistent
    trail while the node keeps appending. ``conn`` is a pooled (autocommit)
    connection; the pool rolls the transaction back if the caller stops early."""
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        last = after_seq
        while True:
            cur.execute(
                f"SELECT {COLUMNS} FROM {AUDIT} WHERE seq > %s ORDER BY seq LIMIT %s",
                (last, batch),
            )
            rows = cur.fetchall()
            for row in rows:
                yield _sealed(row)
            if len(rows) < batch:
                break
            last = rows[-1][0]
        cur.execute("ROLLBACK")


def by_user(cur, user_refs: str | Sequence[str], limit: int | None = None) -> list[Sealed]:
    """Records whose ``user_ref`` is any of ``user_refs`` (one per configured
    key: a user's reference changes with the secret), in seq order."""
    refs = [user_refs] if isinstance(user_refs, str) else list(user_refs)
    cur.execute(
        f"SELECT {COLUMNS} FROM {AUDIT} WHERE user_ref = ANY(%s) ORDER BY seq"
        + (" LIMIT %s" if limit else ""),
        (refs, limit) if limit else (refs,),
    )
    return [_sealed(row) for row in cur.fetchall()]


def count(cur) -> int:
    cur.execute(f"SELECT count(*) FROM {AUDIT}")
    return int(cur.fetchone()[0])


def refused_since(cur, days: int) -> tuple[int, dt.datetime | None]:
    """(how many, the newest) audit.staged_refused records of the last
    ``days`` days: a partial index (migration 0010) holds only those."""
    cur.execute(
        f"SELECT count(*), max(at) FROM {AUDIT}"
        " WHERE event = %s AND at > now() - make_interval(days => %s)",
        (STAGED_REFUSED_EVENT, days),
    )
    found, newest = cur.fetchone()
    return int(found), newest
