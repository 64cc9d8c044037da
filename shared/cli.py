"""The ``ksnode`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.config import ConfigError, load_config
from shared.logging import configure_logging


def _config(args):
    try:
        return load_config(env_file=Path(args.env_file) if args.env_file else None)
    except ConfigError as exc:
        print(f"ksnode: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_up(args) -> int:
    from shared.launcher import DEFAULT_SUPERVISOR_CONF, LaunchError, up

    config = _config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level)
    try:
        return up(
            config, Path(args.supervisor_conf) if args.supervisor_conf else DEFAULT_SUPERVISOR_CONF
        )
    except LaunchError as exc:
        print(f"ksnode: cannot start: {exc}", file=sys.stderr)
        return 1


def cmd_migrate(args) -> int:
    from shared.launcher import LaunchError, database, migrate, prepare_folders

    config = _config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    try:
        prepare_folders(config)
        with database(config) as ready:
            applied = migrate(ready)
    except LaunchError as exc:
        print(f"ksnode: migrate failed: {exc}", file=sys.stderr)
        return 1
    print("applied: " + ", ".join(applied) if applied else "schema up to date")
    return 0


def cmd_rotate_keypair(args) -> int:
    from shared import keypair as keypairs
    from shared.cli_audit import record_cli_event
    from shared.db import Database, DatabaseUnavailable
    from shared.launcher import LaunchError, database, ensure_secret

    if not args.list and not args.rotate:
        print("usage: ksnode rotate-keypair --list | --rotate")
        return 0
    config = _config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    try:
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
    except (LaunchError, DatabaseUnavailable) as exc:
        print(f"ksnode: rotate-keypair failed: {exc}", file=sys.stderr)
        return 1
    print(f"New server keypair: version {pair.version}, public key {pair.public_key_hex}")
    print("Restart the node (supervisorctl restart api) and register the new public key with Oko.")
    return 0


def cmd_ctl(args) -> int:
    from shared.launcher import DEFAULT_SUPERVISOR_CONF

    config = _config(args)
    socket = config.run_dir / "supervisor.sock"
    command = [
        sys.executable,
        "-c",
        "from supervisor.supervisorctl import main; main()",
        "-c",
        str(DEFAULT_SUPERVISOR_CONF),
        "-s",
        f"unix://{socket}",
        *args.ctl_args,
    ]
    os.execv(sys.executable, command)
    return 0  # unreachable


def cmd_reload(args) -> int:
    from shared.launcher import LaunchError, database, prepare_node
    from shared.reload import ReloadError, reload_node

    config = _config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)

    def prepare(cfg) -> None:
        with database(cfg) as ready:
            prepare_node(ready)

    try:
        reload_node(config, prepare)
    except (LaunchError, ReloadError) as exc:
        print(f"ksnode: reload failed: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ksnode", description="Oko key share node")
    parser.add_argument(
        "--env-file", help="env file read before start (never overrides the environment)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="start the node (embedded Postgres unless DB_HOST is set)")
    p.add_argument("--supervisor-conf", help="supervisord.conf to use")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("rotate-keypair", help="list or rotate the server Ed25519 keypair")
    p.add_argument("--list", action="store_true", help="list keypairs, newest first")
    p.add_argument("--rotate", action="store_true", help="create a new active keypair")
    p.set_defaults(func=cmd_rotate_keypair)

    p = sub.add_parser("ctl", help="supervisorctl for this node's home (e.g. `ksnode ctl status`)")
    p.add_argument("ctl_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ctl)

    p = sub.add_parser(
        "reload",
        help="load new code into the running node: migrate, then restart "
        "backup_worker, reporter and api without failing a request",
    )
    p.set_defaults(func=cmd_reload)

    from shared import cli_backup

    cli_backup.add_commands(sub)
    from shared import cli_audit

    cli_audit.add_commands(sub)
    from shared import cli_reencrypt

    cli_reencrypt.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except BrokenPipeError:  # `ksnode backups | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
