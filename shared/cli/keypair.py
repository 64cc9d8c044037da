"""`ksnode rotate-keypair`: list or rotate the server Ed25519 keypair."""

from __future__ import annotations

from shared.cli.common import load_cli_config
from shared.infra.logging import configure_logging


def add_commands(sub) -> None:
    p = sub.add_parser("rotate-keypair", help="list or rotate the server Ed25519 keypair")
    p.add_argument("--list", action="store_true", help="list keypairs, newest first")
    p.add_argument("--rotate", action="store_true", help="create a new active keypair")
    p.set_defaults(func=cmd_rotate_keypair, failed="rotate-keypair failed")


def cmd_rotate_keypair(args) -> int:
    from shared.cli.audit_events import record_cli_event
    from shared.db.pool import Database
    from shared.keys import keypair as keypairs
    from shared.node.launcher import database, ensure_secret

    if not args.list and not args.rotate:
        print("usage: ksnode rotate-keypair --list | --rotate")
        return 0
    config = load_cli_config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    with database(config) as ready:
        cipher = ensure_secret(ready)
        db = Database(ready, maxconn=2)
        try:
            if args.list:
                print(keypairs.format_listing(keypairs.list_keypairs(db)))
                return 0
            pair = keypairs.rotate(db, cipher)
            record_cli_event(
                ready,
                "keypair.rotate",
                "ok",
                public_keys=(f"ed25519:{pair.public_key_hex}",),
                version=pair.version,
            )
        finally:
            db.close()
    print(f"New server keypair: version {pair.version}, public key {pair.public_key_hex}")
    print("Restart the node (supervisorctl restart api) and register the new public key with Oko.")
    return 0
