"""ksn_backup_drills: outcomes of restore drills (a dump restored into a
scratch database and compared with what its meta recorded at dump time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.store.heartbeats import iso
from shared.store.tables import BACKUP_DRILLS


def record(cur, dump_id: str | None, ok: bool, detail: str | None, seconds: float) -> None:
    cur.execute(
        f"INSERT INTO {BACKUP_DRILLS} (dump_id, ok, detail, seconds) VALUES (%s, %s, %s, %s)",
        (dump_id, ok, detail, seconds),
    )


def newest_at(cur) -> dt.datetime | None:
    cur.execute(f"SELECT max(checked_at) FROM {BACKUP_DRILLS}")
    return cur.fetchone()[0]


def latest(cur) -> dict[str, Any] | None:
    cur.execute(
        f"SELECT dump_id::text, ok, detail, seconds, checked_at FROM {BACKUP_DRILLS}"
        " ORDER BY drill_id DESC LIMIT 1"
    )
    row = cur.fetchone()
    if row is None:
        return None
    dump_id, ok, detail, seconds, checked_at = row
    return {
        "dump_id": dump_id,
        "ok": ok,
        "detail": detail,
        "seconds": seconds,
        "checked_at": iso(checked_at),
    }
