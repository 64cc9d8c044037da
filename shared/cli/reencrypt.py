"""`ksnode reencrypt`: move every stored value under the current secret (or,
with ``--to legacy``, into the reference's format) while the node serves.

Works on a running node and on a stopped one (the embedded Postgres is
started for the command when needed). The engine is shared/keys/reencrypt.py.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import TextIO

from shared.cli.common import load_cli_config
from shared.infra.errortext import first_line
from shared.infra.signalstop import SignalStop

log = logging.getLogger("ksnode.reencrypt")

LOG_EVERY_SECONDS = 5.0
BAR_WIDTH = 30


def add_commands(sub) -> None:
    p = sub.add_parser(
        "reencrypt", help="rewrap stored shares under the current secret (or --to legacy)"
    )
    p.add_argument(
        "--to",
        choices=("current", "legacy"),
        default="current",
        help="current: ksn3 (sealed to its owner) under ENCRYPTION_SECRET_PATH (default); "
        "legacy: the reference's format (gives the owner binding up)",
    )
    p.add_argument("--dry-run", action="store_true", help="print rows per key id/format only")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--no-backup", action="store_true", help="skip the verified backup taken first")
    p.add_argument("--batch-size", type=int, default=200, help="rows per transaction (200)")
    p.add_argument("--jobs", type=int, default=1, help="threads decrypting legacy rows (1)")
    p.add_argument(
        "--max-rate", type=float, default=0.0, help="at most this many rows/s (0: no limit)"
    )
    p.set_defaults(func=cmd_reencrypt, failed="reencrypt failed", refused="reencrypt refused")


class Progress:
    """A bar on a terminal (rows done / total, rate, ETA) and a log line (and,
    off a terminal, a stdout line) every LOG_EVERY_SECONDS."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.logged = self.started
        self.done = 0
        self.failed = 0

    def __call__(self, done: int, failed: int) -> None:
        self.done, self.failed = done, failed
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(bar=True))
            self.stream.flush()
        if now - self.logged >= LOG_EVERY_SECONDS:
            self.logged = now
            self.report()

    def line(self, *, bar: bool = False) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        shown = min(self.done, self.total) if self.total else self.done
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        text = f"{shown}/{self.total} rows, {rate:.0f} rows/s, ETA {eta}"
        if self.failed:
            text += f", {self.failed} failed"
        if not bar:
            return text
        filled = int(BAR_WIDTH * shown / self.total) if self.total else BAR_WIDTH
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text} "

    def report(self) -> None:
        elapsed = time.monotonic() - self.started
        log.info(
            "reencrypt progress",
            extra={
                "event": "reencrypt.progress",
                "done": self.done,
                "total": self.total,
                "failed": self.failed,
                "rows_per_second": round(self.done / elapsed, 1) if elapsed > 0 else None,
            },
        )
        if not self.tty:
            print(f"progress: {self.line()}", flush=True)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(bar=True) + "\n")
            self.stream.flush()
        self.report()


def print_usage(usage, cipher) -> None:
    print(f"{'table':<16} {'format':<7} {'key id':<14} {'secret':<9} {'rows':>9}")
    for u in usage:
        print(
            f"{u.column:<16} {u.format:<7} {u.key_id or '-':<14} {u.state(cipher):<9} {u.rows:>9}"
        )
    if not usage:
        print("(no encrypted values)")


def confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        print("ksnode: refusing to reencrypt without confirmation; pass --yes", file=sys.stderr)
        return False
    answer = input(f"{question} Type 'yes': ")
    if answer.strip().lower() != "yes":
        print("reencrypt cancelled")
        return False
    return True


def cmd_reencrypt(args) -> int:
    import psycopg2

    from shared.db.pool import Database
    from shared.errors import DatabaseFailure
    from shared.infra.logging import configure_logging
    from shared.keys.keycheck import verify_keys
    from shared.node.launcher import database, ensure_secret, prepare_folders

    config = load_cli_config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    try:
        prepare_folders(config)
        with database(config) as ready:
            cipher = ensure_secret(ready)
            db = Database(ready, maxconn=3)
            try:
                usage = verify_keys(db, cipher)  # also the counts printed and pending
                return _reencrypt(args, ready, db, cipher, usage)
            finally:
                db.close()
    except psycopg2.Error as exc:  # the driver's own tree: said in ours, one line
        raise DatabaseFailure(f"database error: {first_line(exc)}") from None


def _reencrypt(args, config, db, cipher, usage) -> int:
    from shared.backup.service import BackupService
    from shared.keys.reencrypt import ReencryptError, Reencryptor, check_target, pending_in

    check_target(cipher, args.to)
    if args.to == "legacy" and config.unbound_shares == "refuse":
        raise ReencryptError(
            "--to legacy with UNBOUND_SHARES=refuse: the node would refuse every share it "
            "rewrites; set UNBOUND_SHARES=serve for the node first"
        )
    print_usage(usage, cipher)
    pending = pending_in(usage, cipher, args.to)
    total = sum(pending.values())
    where = f"key id {cipher.current_key_id}" if args.to == "current" else "the legacy format"
    print(f"to rewrite into {where}: " + ", ".join(f"{n} {name}" for name, n in pending.items()))
    if args.dry_run or total == 0:
        print("dry run: nothing changed" if args.dry_run else "nothing to do")
        return 0
    if not confirm(f"Rewrite {total} values in database {config.db_name}?", args.yes):
        return 1
    if not args.no_backup:
        print("taking a verified backup first ...", flush=True)
        result = BackupService(config, db).backup_now()
        print(f"backup: {result['dumpPath']} (verified)", flush=True)
    stop = SignalStop()  # its handler takes no lock (shared/infra/signalstop.py)
    with stop.handling(signal.SIGINT, signal.SIGTERM):
        progress = Progress(total)
        log.info(
            "reencrypt started",
            extra={"event": "reencrypt.started", "target": args.to, "total": total},
        )
        outcome = Reencryptor(
            db,
            cipher,
            args.to,
            batch_size=max(1, args.batch_size),
            jobs=args.jobs,
            max_rate=max(0.0, args.max_rate),
            stop=stop,
            progress=progress,
        ).run()
    progress.finish()
    log.info(
        "reencrypt finished",
        extra={
            "event": "reencrypt.finished",
            "rewritten": outcome.rewritten,
            "failed": len(outcome.failed),
            "remaining": outcome.remaining,
            "stopped": outcome.stopped,
        },
    )
    print(f"rewritten: {outcome.rewritten}")
    from shared.cli.audit_events import record_cli_event

    record_cli_event(
        config,
        "reencrypt",
        "ok" if outcome.complete else "incomplete",
        target=args.to,
        key_id=cipher.current_key_id if args.to == "current" else None,
        rewritten=outcome.rewritten,
        failed=len(outcome.failed),
        remaining=outcome.remaining,
    )
    if outcome.failed:
        print(f"{len(outcome.failed)} values do not decrypt and were left as they are:")
        for row_id, reason in list(outcome.failed.items())[:20]:
            print(f"  {row_id}: {reason}")
    if outcome.complete and args.to == "current" and config.unbound_shares == "serve":
        print(
            "every share is now sealed to its owner: set UNBOUND_SHARES=refuse so that an "
            "older value written back into the database is never served"
        )
    if outcome.stopped:
        print(f"stopped with {outcome.remaining} rows left; run it again to finish")
    elif outcome.remaining:
        print(f"{outcome.remaining} rows stayed locked by other transactions; run it again")
    return 0 if outcome.complete else 1
