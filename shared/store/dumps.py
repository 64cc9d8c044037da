"""``"2_pg_dumps"``: one row per backup attempt (spec §9.2 lifecycle:
IN_PROGRESS → COMPLETED | FAILED, COMPLETED → DELETED by retention)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from psycopg2.extras import Json

from shared.store.heartbeats import iso
from shared.store.rows import count_with, first_column
from shared.store.tables import PG_DUMPS


@dataclass(frozen=True)
class DumpRow:
    dump_id: str
    status: str
    dump_path: str | None
    meta: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The wire shape of get_backup_history (spec §5.11)."""
        # The fields in their declared order; the times as ISO text.
        return {
            **asdict(self),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


COLUMNS = "dump_id::text, status, dump_path, meta, created_at, updated_at"


def start(cur) -> tuple[str, dt.datetime]:
    dump_id = str(uuid.uuid4())
    cur.execute(
        f"INSERT INTO {PG_DUMPS} (dump_id, status) VALUES (%s, 'IN_PROGRESS') RETURNING created_at",
        (dump_id,),
    )
    return dump_id, cur.fetchone()[0]


def complete(cur, dump_id: str, path: str, meta: dict[str, Any]) -> None:
    cur.execute(
        f"UPDATE {PG_DUMPS} SET status = 'COMPLETED', dump_path = %s, meta = %s,"
        " updated_at = now() WHERE dump_id = %s AND status = 'IN_PROGRESS'",
        (path, Json(meta), dump_id),
    )


def fail(cur, dump_id: str, error: str) -> None:
    cur.execute(
        f"UPDATE {PG_DUMPS} SET status = 'FAILED', dump_path = NULL, meta = %s,"
        " updated_at = now() WHERE dump_id = %s AND status = 'IN_PROGRESS'",
        (Json({"error": error}), dump_id),
    )


def fail_interrupted(cur) -> list[str]:
    """Mark rows left IN_PROGRESS by a killed run as FAILED; their ids."""
    return first_column(
        cur,
        f"UPDATE {PG_DUMPS} SET status = 'FAILED', dump_path = NULL,"
        " meta = jsonb_build_object('error', 'interrupted: the backup worker stopped during the dump'),"
        " updated_at = now() WHERE status = 'IN_PROGRESS' RETURNING dump_id::text",
    )


def newest_completed_at(cur) -> dt.datetime | None:
    cur.execute(f"SELECT max(created_at) FROM {PG_DUMPS} WHERE status = 'COMPLETED'")
    return cur.fetchone()[0]


def completed(cur) -> list[DumpRow]:
    """COMPLETED rows, newest first."""
    cur.execute(
        f"SELECT {COLUMNS} FROM {PG_DUMPS} WHERE status = 'COMPLETED' ORDER BY created_at DESC"
    )
    return [DumpRow(*row) for row in cur.fetchall()]


def holder(cur, path: str) -> str | None:
    """The node that wrote the COMPLETED dump at ``path`` (meta.node_id), if recorded."""
    cur.execute(
        f"SELECT meta->>'node_id' FROM {PG_DUMPS} WHERE status = 'COMPLETED' AND dump_path = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (path,),
    )
    row = cur.fetchone()
    return row[0] if row else None


def mark_deleted(cur, dump_id: str) -> None:
    cur.execute(
        f"UPDATE {PG_DUMPS} SET status = 'DELETED', updated_at = now()"
        " WHERE dump_id = %s AND status = 'COMPLETED'",
        (dump_id,),
    )


def history(cur, days: float | None) -> list[DumpRow]:
    if days is None:
        cur.execute(f"SELECT {COLUMNS} FROM {PG_DUMPS} ORDER BY created_at DESC")
    else:
        cur.execute(
            f"SELECT {COLUMNS} FROM {PG_DUMPS} WHERE created_at >= now() - %s * interval '1 day'"
            " ORDER BY created_at DESC",
            (days,),
        )
    return [DumpRow(*row) for row in cur.fetchall()]


def failures_since(cur, since: dt.datetime | None) -> tuple[int, dt.datetime | None]:
    """(FAILED attempts after ``since`` — all when None —, time of the newest).
    An attempt interrupted by a killed worker is not a failure of the backup
    itself: it does not count (the restarted worker tries again at once)."""
    return count_with(
        cur,
        f"SELECT count(*), max(created_at) FROM {PG_DUMPS} WHERE status = 'FAILED'"
        " AND (%s::timestamptz IS NULL OR created_at > %s::timestamptz)"
        " AND coalesce(meta->>'error', '') NOT LIKE 'interrupted%%'",
        (since, since),
    )


def _newest(cur, where: str) -> DumpRow | None:
    """The newest row matching ``where`` (a fixed SQL condition, no input)."""
    cur.execute(f"SELECT {COLUMNS} FROM {PG_DUMPS} WHERE {where} ORDER BY created_at DESC LIMIT 1")
    row = cur.fetchone()
    return DumpRow(*row) if row else None


def last_attempt(cur) -> DumpRow | None:
    """The newest finished attempt (COMPLETED, FAILED or DELETED)."""
    return _newest(cur, "status <> 'IN_PROGRESS'")


def drillable(cur) -> list[DumpRow]:
    """COMPLETED dumps whose meta recorded the key tables, newest first."""
    cur.execute(
        f"SELECT {COLUMNS} FROM {PG_DUMPS} WHERE status = 'COMPLETED' AND meta ? 'tables'"
        " ORDER BY created_at DESC"
    )
    return [DumpRow(*row) for row in cur.fetchall()]


def newest_completed(cur) -> DumpRow | None:
    return _newest(cur, "status = 'COMPLETED'")


def node_installed_at(cur) -> dt.datetime | None:
    """When this database got its first ksnode migration: the start of the
    clock for "no backup yet" on a node that never had one."""
    cur.execute("SELECT min(applied_at) FROM ksn_schema_migrations")
    return cur.fetchone()[0]
