"""The node's health as the operator needs it: ``ok``, ``degraded`` (serving,
but something needs attention — each reason named, machine-readable) or
``down`` (no database). /health renders it; /metrics exposes the same as
gauges."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg2

from services.api.ops.binding_health import mismatched_wallets
from shared.db.failover import probe_servers
from shared.db.pool import DatabaseUnavailable
from shared.infra.errortext import first_line
from shared.keys.keycheck import UsageProbe, rotation_reason, unbound_counts, unbound_reason
from shared.store import audit, backup_checks, drills, dumps, heartbeats

PROGRAMS = ("api", "backup_worker", "reporter")
# Below this, a folder's filesystem is nearly full: log lines start to be
# lost, and an embedded database in KSNODE_HOME stops taking writes.
DISK_MIN_FREE_BYTES = 64 * 1024 * 1024
# Monitors and load balancers time out in a few seconds: /status, /health and
# /metrics give the database this long, then report it unavailable.
PROBE_DB_SECONDS = 2.0
# A refused staged audit record is an event, not a state to put back: /health
# names it for a week after the last one, long enough to be seen.
REFUSED_RECORD_DAYS = 7

# Every reason /health can name (the metric ksnode_health_reason has one
# series per reason, 0 or 1, so an alert rule is one line).
REASONS = (
    "database_unavailable",
    "database_read_only",
    "backup_failed",
    "backup_overdue",
    "backup_tools_unusable",
    "selfcheck_failed",
    "heartbeat_stale",
    "dump_dir_low_space",
    "disk_low_space",
    "drill_failed",
    "key_rotation_unfinished",
    "shares_unbound",
    "share_binding_mismatch",
    "audit_staged_refused",
)


def stale_after(interval: float) -> float:
    """A heartbeat older than this means the program is not running."""
    return max(3 * interval, 30.0)


def is_running(beat: dict[str, Any] | None, interval: float) -> bool:
    """A program whose heartbeat row (heartbeats.all_beats) is fresh and
    does not say it stopped."""
    return (
        beat is not None
        and beat.get("stopped_at") is None
        and beat["age_seconds"] <= stale_after(interval)
    )


def database_state(ctx, exc: Exception) -> tuple[str, str]:
    """Why the database did not answer: only a standby reachable (a failover
    under way, or nothing promoted yet) or nothing at all."""
    if not isinstance(exc, DatabaseUnavailable | psycopg2.OperationalError):
        return "database_unavailable", first_line(exc, 200)
    try:
        params = ctx.db.connect_params
    except AttributeError:  # a stand-in pool (tests of other parts)
        return "database_unavailable", first_line(exc, 200)
    reason, detail = probe_servers(params, timeout=PROBE_DB_SECONDS)
    if reason == "database_unavailable":
        return reason, first_line(exc, 200)
    return reason, detail


def assess(ctx) -> dict[str, Any]:
    """The /health body (never raises)."""
    config = ctx.config
    reasons: list[dict[str, Any]] = []
    body: dict[str, Any] = {
        "status": "ok",
        "reasons": reasons,
        "node_id": config.effective_node_id,  # programs are this node's (NODE_ID)
        "db": {"connected": False},
        "programs": {},
        "disk": folder_space(config),  # first: a full disk may be why the database is down
    }
    reasons.extend(disk_reasons(body["disk"]))
    try:
        with ctx.db.cursor(timeout=PROBE_DB_SECONDS) as cur:
            beats = heartbeats.all_beats(cur, config.effective_node_id)
            last = dumps.last_attempt(cur)
            newest = dumps.newest_completed(cur)
            installed = dumps.node_installed_at(cur) if newest is None else None
            check_ok, check_detail = backup_checks.latest(cur)
            drill = drills.latest(cur)
            refused, refused_newest = audit.refused_since(cur, REFUSED_RECORD_DAYS)
            cur.execute("SELECT now()")
            now = cur.fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - /health reports the outage instead of failing
        body["status"] = "down"
        body["db"] = {"connected": False, "error": first_line(exc, 200)}
        reason, detail = database_state(ctx, exc)
        reasons.append({"reason": reason, "detail": detail})
        return body
    body["db"] = {"connected": True, "pool_in_use": ctx.db.in_use, "pool_size": ctx.db.max_size}

    programs: dict[str, Any] = {}
    limit = stale_after(config.heartbeat_interval_seconds)
    for program in PROGRAMS:
        beat = beats.get(program)
        if beat is None:
            programs[program] = {"running": False, "heartbeat_age_seconds": None}
            reasons.append(
                {"reason": "heartbeat_stale", "program": program, "detail": "no heartbeat yet"}
            )
            continue
        running = is_running(beat, config.heartbeat_interval_seconds)
        programs[program] = {
            "running": running,
            "heartbeat_age_seconds": beat["age_seconds"],
            "pid": beat["pid"],
            "started_at": beat["started_at"],
            "last_result": beat["last_result"],
        }
        if running:
            continue
        stopped_at = beat.get("stopped_at")
        if stopped_at is not None:
            programs[program]["stopped_at"] = stopped_at
            detail = (
                f"stopped at {stopped_at} (a clean stop, e.g. `ksnode ctl stop {program}`;"
                f" `ksnode ctl start {program}` starts it)"
            )
        else:
            detail = f"last heartbeat {beat['age_seconds']:.0f} s ago (limit {limit:g} s)"
        reasons.append({"reason": "heartbeat_stale", "program": program, "detail": detail})
    body["programs"] = programs

    if last is not None and last.status == "FAILED":
        reasons.append(
            {
                "reason": "backup_failed",
                "detail": (last.meta or {}).get("error") or "failed",
                "at": heartbeats.iso(last.created_at),
            }
        )
    allowed = config.backup_interval_seconds + config.backup_overdue_grace_seconds
    since = newest.created_at if newest is not None else installed
    if since is None or (now - since).total_seconds() > allowed:
        reasons.append(
            {
                "reason": "backup_overdue",
                "detail": f"no completed backup in the last {allowed:g} s",
                "last_completed_at": heartbeats.iso(newest.created_at) if newest else None,
            }
        )
    worker = (beats.get("backup_worker") or {}).get("last_result") or {}
    tools_error = worker.get("tools_error") if isinstance(worker, dict) else None
    if tools_error:
        reasons.append({"reason": "backup_tools_unusable", "detail": tools_error})
    if check_ok is False:
        reasons.append({"reason": "selfcheck_failed", "detail": check_detail})
    if drill is not None and not drill["ok"]:
        reasons.append({"reason": "drill_failed", "detail": drill["detail"]})

    space = dump_dir_space(config, newest)
    if space["needed_bytes"] and space["free_bytes"] is not None:
        if space["free_bytes"] < space["needed_bytes"]:
            reasons.append(
                {
                    "reason": "dump_dir_low_space",
                    "detail": f"{space['free_bytes']} bytes free in DUMP_DIR, the last dump"
                    f" needed {space['needed_bytes']}",
                }
            )
    body["backup"] = {
        "last_attempt": last.as_json() if last else None,
        "last_completed_at": heartbeats.iso(newest.created_at) if newest else None,
        "tools_error": tools_error,
        "selfcheck_ok": check_ok,
        "last_drill": drill,
        "dump_dir": space,
    }
    rotation = key_rotation(ctx)
    if rotation:
        reasons.append({"reason": "key_rotation_unfinished", "detail": rotation})
    reasons.extend(binding_reasons(ctx))
    if refused:
        reasons.append(
            {
                "reason": "audit_staged_refused",
                "count": refused,
                "newest_at": heartbeats.iso(refused_newest),
                "detail": f"{refused} staged audit record(s) in the last {REFUSED_RECORD_DAYS}"
                " days did not carry this node's MAC: written into ksn_audit_staged by someone"
                " holding the database, not by the node (each one's audit.staged_refused record"
                " names what it claimed, in ksn_audit; the error log has one line a second)",
            }
        )
    body["status"] = "degraded" if reasons else "ok"
    return body


def key_rotation(ctx) -> str | None:
    """Rows still under a previous secret (shared/keys/keycheck.py), or None."""
    if not ctx.cipher.previous_key_ids:
        return None
    probe = ctx.extras.setdefault("key_usage", UsageProbe())
    try:
        return rotation_reason(probe.read(ctx.db), ctx.cipher)
    except Exception:  # noqa: BLE001 - the database part above reports outages
        return None


def binding_reasons(ctx) -> list[dict[str, Any]]:
    """Rows not sealed to their owner yet (counted by the key usage probe),
    and shares that refused the owner the database names now."""
    found: list[dict[str, Any]] = []
    probe = ctx.extras.setdefault("key_usage", UsageProbe())
    try:
        usage = probe.read(ctx.db)
    except Exception:  # noqa: BLE001 - the database part above reports outages
        usage = None
    if usage is not None and (detail := unbound_reason(usage)):
        found.append({"reason": "shares_unbound", "detail": detail, **unbound_counts(usage)})
    mismatched = mismatched_wallets(ctx, PROBE_DB_SECONDS)
    if mismatched:
        found.append(
            {
                "reason": "share_binding_mismatch",
                "count": mismatched,
                "detail": f"{mismatched} key share(s) refused: the wallet's owner or the "
                "owner's identity was changed in the database since the share was sealed; "
                "never served (error log event share.owner_mismatch names the wallets)",
            }
        )
    return found


def free_bytes(folder: Path) -> int | None:
    try:
        while not folder.exists() and folder != folder.parent:  # not created yet: its filesystem
            folder = folder.parent
        return shutil.disk_usage(folder).free
    except OSError:  # e.g. a parent we may not look into
        return None


def dump_dir_space(config, newest: dumps.DumpRow | None) -> dict[str, int | None]:
    needed = int((newest.meta or {}).get("dump_size") or 0) if newest is not None else 0
    return {"free_bytes": free_bytes(config.effective_dump_dir), "needed_bytes": needed or None}


def disk_reasons(folders: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "reason": "disk_low_space",
            "folder": name,
            "detail": f"{folder['free_bytes']} bytes free in {name} ({folder['path']})",
        }
        for name, folder in folders.items()
        if folder["free_bytes"] is not None and folder["free_bytes"] < DISK_MIN_FREE_BYTES
    ]


def folder_space(config) -> dict[str, dict[str, Any]]:
    """Free bytes where the node writes besides DUMP_DIR (which has its own
    reason): LOG_DIR, and KSNODE_HOME (run files; an embedded database)."""
    return {
        name: {"path": str(folder), "free_bytes": free_bytes(folder)}
        for name, folder in (("LOG_DIR", config.effective_log_dir), ("KSNODE_HOME", config.home))
    }
