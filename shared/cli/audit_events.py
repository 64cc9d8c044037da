"""Audit records for operators' commands (restore, key rotation,
reencrypt), written as each command ends."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

from shared.audit.records import Record


def record_cli_event(
    config, event: str, outcome: str, *, public_keys: tuple[str, ...] = (), **detail: Any
) -> None:
    """Record an operator's command (restore, key rotation) as it ends. A
    failure to record is said on stderr; the command's own result stands."""
    from shared.audit.trail import node_key, record_once
    from shared.db.pool import Database

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
