"""`ksnode backup [--drill]`, `ksnode backups`, `ksnode restore PATH`.

They work on a running node and on a stopped one (the embedded Postgres is
started for the command when needed), under the same advisory lock as the
backup worker, so they never run alongside another backup or restore.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.cli.common import load_cli_config
from shared.infra.sizes import human_size


def add_commands(sub) -> None:
    p = sub.add_parser("backup", help="take a verified backup now")
    p.add_argument(
        "--drill",
        action="store_true",
        help="instead, restore the newest backup into a scratch database and check it",
    )
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("backups", help="list backups (newest first)")
    p.add_argument("--days", type=float, help="only the last N days")
    p.set_defaults(func=cmd_backups)
    p = sub.add_parser("restore", help="restore a dump from DUMP_DIR into the database")
    p.add_argument("path", help="dump file (inside DUMP_DIR)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_restore)


Action = Callable[[argparse.Namespace, Any, Any], int]


def with_service(action: Action) -> Callable[[argparse.Namespace], int]:
    """Make a command of ``action(args, service, db)``: the configuration
    loaded, logging to the log folder, the database up (started for the
    command when the node is stopped), a BackupService whose progress goes to
    the terminal; everything closed again however the action ends."""

    @functools.wraps(action)
    def command(args: argparse.Namespace) -> int:
        import logging

        from shared.backup.progress import TerminalProgress
        from shared.backup.service import BackupService
        from shared.db.pool import Database
        from shared.infra.logging import configure_logging
        from shared.node.launcher import database, prepare_folders

        config = load_cli_config(args)
        configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
        prepare_folders(config)
        with database(config) as ready:
            db = Database(ready, maxconn=2)
            progress = TerminalProgress(logging.getLogger("ksnode"))
            try:
                return action(args, BackupService(ready, db, progress=progress), db)
            finally:
                progress.end()
                db.close()

    return command


def cmd_backup(args: argparse.Namespace) -> int:
    return cmd_drill(args) if getattr(args, "drill", False) else _backup(args)


@with_service
def _backup(args, service, _db) -> int:
    print(f"backing up database {service.config.db_name} to {service.dump_dir} ...", flush=True)
    result = service.backup_now()
    service.progress.end()
    print(
        f"done: {result['dumpPath']} ({human_size(result['dumpSize'])}, "
        f"{result['dumpDuration']:.2f} s, verified)"
    )
    return 0


@with_service
def cmd_drill(args, service, _db) -> int:
    print("restore drill: newest completed backup into a scratch database ...", flush=True)
    outcome = service.drill_now()
    service.progress.end()
    if outcome["ok"]:
        print(f"drill passed: {outcome['dump_path']} ({outcome['seconds']:.2f} s)")
        return 0
    print(f"drill FAILED: {outcome['detail']}", file=sys.stderr)
    return 1


@with_service
def cmd_backups(args, _service, db) -> int:
    from shared.store import dumps

    with db.cursor() as cur:
        rows = dumps.history(cur, args.days)
    if not rows:
        print("no backups")
        return 0
    now = dt.datetime.now(dt.UTC)
    print(f"{'created (UTC)':<20} {'status':<12} {'size':>10} {'age':>8}  path / error")
    for row in rows:
        meta = row.meta or {}
        size = human_size(meta["dump_size"]) if "dump_size" in meta else "-"
        detail = row.dump_path or meta.get("error", "")
        print(
            f"{row.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} {row.status:<12} {size:>10} "
            f"{_age(now - row.created_at):>8}  {detail}"
        )
    return 0


@with_service
def cmd_restore(args, service, _db) -> int:
    from shared.backup.errors import BackupError
    from shared.backup.paths import resolve_dump_path
    from shared.cli.audit_events import record_cli_event

    given = Path(args.path)
    # On the command line a relative path is relative to where you are
    # (normalised lexically: resolve_dump_path refuses a ".." part).
    path = resolve_dump_path(
        os.path.abspath(given) if given.exists() else args.path, service.dump_dir
    )
    if not args.yes:
        if not sys.stdin.isatty():
            print("ksnode: refusing to restore without confirmation; pass --yes", file=sys.stderr)
            return 1
        answer = input(
            f"Replace the contents of database {service.config.db_name} with {path}? "
            "A safety dump is taken first. Type 'yes': "
        )
        if answer.strip().lower() != "yes":
            print("restore cancelled")
            return 1
    print(f"verifying {path}, taking a safety dump, restoring ...", flush=True)
    try:
        result = service.restore_now(str(path))
    except BackupError as exc:
        record_cli_event(service.config, "restore", type(exc).__name__, dump_path=str(path))
        raise
    service.progress.end()
    safety = result["safety_dump_path"]
    record_cli_event(service.config, "restore", "ok", dump_path=str(path), safety_dump=safety)
    print(f"restored {path}; safety dump of the previous state: {result['safety_dump_path']}")
    return 0


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
