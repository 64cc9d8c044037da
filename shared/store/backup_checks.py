"""ksn_backup_checks: results of the backup worker's startup self-check."""

from __future__ import annotations

from shared.store.tables import BACKUP_CHECKS


def record(cur, ok: bool, detail: str | None) -> None:
    cur.execute(f"INSERT INTO {BACKUP_CHECKS} (ok, detail) VALUES (%s, %s)", (ok, detail))


def latest_ok(cur) -> bool:
    """True only if the newest self-check passed (false before any ran)."""
    cur.execute(f"SELECT ok FROM {BACKUP_CHECKS} ORDER BY check_id DESC LIMIT 1")
    row = cur.fetchone()
    return bool(row and row[0])


def latest(cur) -> tuple[bool | None, str | None]:
    """(ok, detail) of the newest self-check; (None, None) before any ran."""
    cur.execute(f"SELECT ok, detail FROM {BACKUP_CHECKS} ORDER BY check_id DESC LIMIT 1")
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)
