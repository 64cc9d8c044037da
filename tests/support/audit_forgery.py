"""What someone holding only the database can do to the audit trail: put a
record into the staging table (ksn_audit_staged) with a MAC they made up."""

from __future__ import annotations

from shared.audit.records import Record
from shared.store import audit as store

MADE_UP_MAC = "f" * 64


def insert_staged(db, record: Record, mac: str = MADE_UP_MAC) -> None:
    with db.cursor() as cur:
        cur.execute(
            f"INSERT INTO {store.STAGED} ({store.STAGED_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text[], %s::jsonb, %s)",
            store.staged_values(record, mac),
        )
