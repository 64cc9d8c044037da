"""ksn_node_heartbeats: one row per node and program, its pid, host, last
beat and result. ``node_id`` is Config.effective_node_id."""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

from psycopg2.extras import Json

from shared.store.tables import HEARTBEATS


def start(cur, node_id: str, program: str) -> None:
    """Record that ``program`` (re)started in this process."""
    cur.execute(
        f"INSERT INTO {HEARTBEATS} (node_id, program, pid, host, started_at, beat_at, last_result)"
        " VALUES (%s, %s, %s, %s, now(), now(), NULL)"
        " ON CONFLICT (node_id, program) DO UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host,"
        " started_at = now(), beat_at = now(), stopped_at = NULL",
        (node_id, program, os.getpid(), socket.gethostname()),
    )


def stop(cur, node_id: str, program: str) -> None:
    """Record that ``program`` stopped cleanly in this process. Only while
    the row is still this process's: a successor that already started (its
    row carries its own pid) keeps its row as it is."""
    cur.execute(
        f"UPDATE {HEARTBEATS} SET stopped_at = now()"
        " WHERE node_id = %s AND program = %s AND pid = %s",
        (node_id, program, os.getpid()),
    )


def beat(cur, node_id: str, program: str, result: dict[str, Any] | None = None) -> None:
    """Refresh the beat time (and the last result when one is given); a
    process that beats is running, so a stop recorded before is cleared."""
    if result is None:
        cur.execute(
            f"INSERT INTO {HEARTBEATS} (node_id, program, pid, host) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (node_id, program) DO UPDATE SET beat_at = now(), pid = EXCLUDED.pid,"
            " stopped_at = NULL",
            (node_id, program, os.getpid(), socket.gethostname()),
        )
    else:
        cur.execute(
            f"INSERT INTO {HEARTBEATS} (node_id, program, pid, host, last_result)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (node_id, program) DO UPDATE SET beat_at = now(), pid = EXCLUDED.pid,"
            " last_result = EXCLUDED.last_result, stopped_at = NULL",
            (node_id, program, os.getpid(), socket.gethostname(), Json(result)),
        )


def all_beats(cur, node_id: str) -> dict[str, dict[str, Any]]:
    """This node's programs: program -> {pid, host, started_at, beat_at,
    age_seconds, last_result, stopped_at, stopped_age_seconds}; ``stopped_at`` is set when the
    program's last process stopped cleanly (``stop``), else None."""
    cur.execute(
        f"SELECT program, pid, host, started_at, beat_at,"
        f" EXTRACT(EPOCH FROM (now() - beat_at))::float8, last_result, stopped_at,"
        f" EXTRACT(EPOCH FROM (now() - stopped_at))::float8"
        f" FROM {HEARTBEATS} WHERE node_id = %s",
        (node_id,),
    )
    out: dict[str, dict[str, Any]] = {}
    for row in cur.fetchall():
        program, pid, host, started_at, beat_at, age, last_result, stopped_at, stopped_age = row
        out[program] = {
            "pid": pid,
            "host": host,
            "started_at": iso(started_at),
            "beat_at": iso(beat_at),
            "age_seconds": round(max(age, 0.0), 3),
            "last_result": last_result,
            "stopped_at": iso(stopped_at),
            "stopped_age_seconds": None if stopped_age is None else max(stopped_age, 0.0),
        }
    return out


def iso(value: dt.datetime | None) -> str | None:
    """UTC ISO-8601 with milliseconds and Z, like JavaScript's toISOString()."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
