"""`ksnode audit verify|find|export`, and the records of command-line events.

* ``verify`` walks the whole trail and names each edited record, each
  deleted one (or range) and any break in the chain; exit status 1 if any.
* ``find --user-auth-id ID`` hashes ID with this node's key and prints that
  user's records, one JSON object per line.
* ``export [--after-seq N]`` prints records after N as JSON lines, for a
  SIEM shipper that remembers the last seq it sent.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from shared.audit import AuditError, Record, iter_json, verify_chain


def add_commands(sub) -> None:
    p = sub.add_parser("audit", help="check and search the audit trail")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    q = audit_sub.add_parser("verify", help="check that no record was edited or deleted")
    q.set_defaults(func=cmd_verify)
    q = audit_sub.add_parser("find", help="one user's records (JSON lines)")
    q.add_argument("--user-auth-id", required=True, help="e.g. google_1234 or an Auth0 e-mail")
    q.add_argument("--limit", type=int, default=None)
    q.set_defaults(func=cmd_find)
    q = audit_sub.add_parser("export", help="records after a seq (JSON lines), for a SIEM")
    q.add_argument("--after-seq", type=int, default=0)
    q.set_defaults(func=cmd_export)


def _with_trail(args, action: Callable[[Any, Any], int]) -> int:
    """Run ``action(db, key)`` on this node's database (started if embedded)."""
    from shared.audit_trail import node_key
    from shared.cli import _config
    from shared.crypto import SecretError
    from shared.db import Database, DatabaseUnavailable
    from shared.launcher import LaunchError, database
    from shared.logging import configure_logging

    config = _config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    try:
        key = node_key(config)
        with database(config) as ready:
            db = Database(ready, maxconn=2)
            try:
                return action(db, key)
            finally:
                db.close()
    except (LaunchError, DatabaseUnavailable, SecretError, AuditError) as exc:
        print(f"ksnode: {exc}", file=sys.stderr)
        return 1


def cmd_verify(args) -> int:
    from shared.store import audit as store

    def action(db, key) -> int:
        with db.connection() as conn:
            report = verify_chain(key, store.scan(conn))
        for problem in report.problems:
            print(f"PROBLEM seq {problem.seq} ({problem.kind}): {problem.message}")
        if report.checked == 0:
            print("audit trail is empty")
            return 0
        head = f"records {report.first_seq}-{report.last_seq}, head hash {report.last_hash}"
        if report.ok:
            print(f"audit trail intact: {report.checked} records ({head})")
            return 0
        print(f"audit trail NOT intact: {len(report.problems)} problem(s) in {head}")
        return 1

    return _with_trail(args, action)


def cmd_find(args) -> int:
    from shared.store import audit as store

    def action(db, key) -> int:
        with db.cursor() as cur:
            records = store.by_user(cur, key.user_ref(args.user_auth_id), args.limit)
        for line in iter_json(records):
            print(line)
        print(f"{len(records)} record(s)", file=sys.stderr)
        return 0

    return _with_trail(args, action)


def cmd_export(args) -> int:
    from shared.store import audit as store

    def action(db, _key) -> int:
        with db.connection() as conn:
            for line in iter_json(store.scan(conn, args.after_seq)):
                print(line)
        return 0

    return _with_trail(args, action)


def record_cli_event(
    config, event: str, outcome: str, *, public_keys: tuple[str, ...] = (), **detail: Any
) -> None:
    """Record an operator's command (restore, key rotation) as it ends. A
    failure to record is said on stderr; the command's own result stands."""
    from shared.audit_trail import node_key, record_once
    from shared.db import Database

    if not config.audit_enabled:
        return
    record = Record(
        event=event,
        outcome=outcome,
        request_id=f"cli-{os.getpid()}",
        client=f"local:{_os_user()}",
        auth_type="local",
        public_keys=public_keys,
        detail={key: value for key, value in detail.items() if value is not None} or None,
    )
    db = Database(config, maxconn=1)
    try:
        record_once(db, node_key(config), record)
    except Exception as exc:  # noqa: BLE001 - reported, never hides the command's outcome
        print(
            f"ksnode: could not write the audit record: {type(exc).__name__}; "
            f"record: {json.dumps({'event': event, 'outcome': outcome})}",
            file=sys.stderr,
        )
    finally:
        db.close()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
