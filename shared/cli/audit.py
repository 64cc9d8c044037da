"""`ksnode audit verify|find|export`.

* ``verify`` walks the whole trail and names each edited record, each
  deleted one (or range) and any break in the chain; exit status 1 if any.
  Each record is checked under the key it names, from every configured
  secret (current and previous), so a rotation leaves older records
  checkable; records under a key no configured secret has are counted per
  key id as unverifiable (also exit status 1), never called edited.
* ``find --user-auth-id ID`` hashes ID under every configured secret's key
  and prints that user's records, one JSON object per line.
* ``export [--after-seq N]`` prints records after N as JSON lines, for a
  SIEM shipper that remembers the last seq it sent.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from shared.audit.records import iter_json
from shared.audit.verify import verify_chain
from shared.cli.common import load_cli_config


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
    """Run ``action(db, keys)`` on this node's database (started if embedded);
    ``keys`` holds the key of every configured secret."""
    from shared.audit.trail import node_keys
    from shared.db.pool import Database
    from shared.infra.logging import configure_logging
    from shared.node.launcher import database

    config = load_cli_config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    keys = node_keys(config)
    with database(config) as ready:
        db = Database(ready, maxconn=2)
        try:
            return action(db, keys)
        finally:
            db.close()


def cmd_verify(args) -> int:
    from shared.store import audit as store

    def action(db, keys) -> int:
        with db.connection() as conn:
            report = verify_chain(keys, store.scan(conn))
        for problem in report.problems:
            print(f"PROBLEM seq {problem.seq} ({problem.kind}): {problem.message}")
        if report.checked == 0:
            print("audit trail is empty")
            return 0
        head = f"records {report.first_seq}-{report.last_seq}, head hash {report.last_hash}"
        if len(report.sealed_by) > 1:  # across a rotation: say which keys checked what
            print(
                "records checked per key id: "
                + ", ".join(
                    f"{kid} ({'current' if kid == keys.current.key_id else 'previous'}): {n}"
                    for kid, n in report.sealed_by.items()
                )
            )
        if report.ok:
            print(f"audit trail intact: {report.checked} records ({head})")
            return 0
        if not report.tampered:
            unverifiable = sum(u.count for u in report.unknown.values())
            print(
                f"audit trail NOT fully verified: {unverifiable} record(s) under key id(s) "
                f"{', '.join(report.unknown)} that no configured secret has; the other "
                f"{report.checked - unverifiable} are intact ({head})"
            )
            return 1
        print(f"audit trail NOT intact: {len(report.problems)} problem(s) in {head}")
        return 1

    return _with_trail(args, action)


def cmd_find(args) -> int:
    from shared.store import audit as store

    def action(db, keys) -> int:
        with db.cursor() as cur:
            records = store.by_user(cur, keys.user_refs(args.user_auth_id), args.limit)
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
