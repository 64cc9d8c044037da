"""`ksnode up`, `migrate`, `ctl` and `reload`: starting, upgrading and driving a node."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.cli.common import load_cli_config
from shared.config import ENV_FILE_VARIABLE
from shared.infra.logging import configure_logging


def cmd_up(args) -> int:
    from shared.node.launcher import DEFAULT_SUPERVISOR_CONF, up

    config = load_cli_config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level)
    warn_about_env_file()
    warn_about_misspelt_settings()
    return up(
        config, Path(args.supervisor_conf) if args.supervisor_conf else DEFAULT_SUPERVISOR_CONF
    )


def warn_about_env_file() -> None:
    """The env file holds the passwords: say so when others may read it."""
    import logging

    from shared.infra.privatefiles import env_file_warning

    name = os.environ.get(ENV_FILE_VARIABLE)
    warning = env_file_warning(Path(name)) if name else None
    if warning:
        logging.getLogger("ksnode").warning(
            warning, extra={"event": "env_file.not_private", "path": name}
        )


def warn_about_misspelt_settings() -> None:
    """A setting's name mistyped (``DUMP_DRI``) is ignored and its default
    used: name it rather than start quietly on the default."""
    import logging

    from shared.config import environment, misspelt_settings

    # The env file (--env-file sets KSNODE_ENV_FILE) has been read once already.
    for text in misspelt_settings(environment()):
        logging.getLogger("ksnode").warning(text, extra={"event": "config.unknown_setting"})


def cmd_migrate(args) -> int:
    from shared.node.launcher import database, migrate, prepare_folders

    config = load_cli_config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)
    prepare_folders(config)
    with database(config) as ready:
        applied = migrate(ready)
    print("applied: " + ", ".join(applied) if applied else "schema up to date")
    return 0


def cmd_ctl(args) -> int:
    from shared.node.launcher import DEFAULT_SUPERVISOR_CONF

    config = load_cli_config(args)
    socket = config.run_dir / "supervisor.sock"
    command = [
        sys.executable,
        "-P",  # `-c` would import a supervisor/ package from the current folder first
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
    from shared.node.launcher import database, prepare_node
    from shared.node.reload import reload_node

    config = load_cli_config(args)
    configure_logging("ksnode", config.effective_log_dir, config.log_level, stdout=False)

    def prepare(cfg) -> None:
        with database(cfg) as ready:
            prepare_node(ready)

    reload_node(config, prepare)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("up", help="start the node (embedded Postgres unless DB_HOST is set)")
    p.add_argument("--supervisor-conf", help="supervisord.conf to use")
    p.set_defaults(func=cmd_up, failed="cannot start")

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(func=cmd_migrate, failed="migrate failed")

    p = sub.add_parser("ctl", help="supervisorctl for this node's home (e.g. `ksnode ctl status`)")
    p.add_argument("ctl_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ctl)

    p = sub.add_parser(
        "reload",
        help="load new code into the running node: migrate, then restart "
        "backup_worker, reporter and api without failing a request",
    )
    p.set_defaults(func=cmd_reload, failed="reload failed")
