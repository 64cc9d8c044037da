"""The ``ksnode`` command.

One module per command family, each with ``add_commands(sub)`` adding its
subcommands to the parser: ``node`` (up, migrate, ctl, reload), ``check``, ``keypair``
(rotate-keypair), ``backup`` (backup, backups, restore), ``reencrypt`` and
``audit``. They share ``common`` (configuration) and ``audit_events`` (records
of operators' commands) and never import each other or this package's
``__init__``, so adding a command is a new module and one line in
``COMMAND_MODULES``. Heavy imports stay inside the commands, so
``ksnode --help`` is quick.

Failures are not caught per command: a command raises (any ``KsnodeError``)
and ``main`` prints one line and exits with its branch's code from
``shared.exitcodes``. A command names how its failures read with
``set_defaults(failed=..., refused=...)`` (e.g. ``ksnode: migrate failed: ...``).
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.cli import audit, backup, check, keypair, node, reencrypt
from shared.config import ENV_FILE_VARIABLE
from shared.errors import ConfigurationFailure, KsnodeError, UsageFailure
from shared.exitcodes import ExitCode, exit_code_for

COMMAND_MODULES = (node, check, keypair, backup, reencrypt, audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ksnode", description="Oko key share node")
    parser.add_argument(
        "--env-file", help="env file read before start (never overrides the environment)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.env_file:
        # The same file for everything this command starts: the programs
        # under supervisord (`up`), the code check (`reload`), ...
        os.environ[ENV_FILE_VARIABLE] = os.path.abspath(os.path.expanduser(args.env_file))
    try:
        code = args.func(args)
    except KsnodeError as exc:
        print(f"ksnode: {failure_line(args, exc)}", file=sys.stderr)
        code = exit_code_for(exc)
    except BrokenPipeError:  # `ksnode backups | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitCode.OK
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    raise SystemExit(int(code))


def failure_line(args: argparse.Namespace, exc: KsnodeError) -> str:
    """The one line ``ksnode`` prints for a failure: the command's words
    for it (``migrate failed``, ``reencrypt refused``), then the message.
    A bad setting or call reads the same whatever the command."""
    if isinstance(exc, ConfigurationFailure | UsageFailure):
        return str(exc)
    failed = getattr(args, "failed", None)
    words = (getattr(args, "refused", None) or failed) if exc.refusal else failed
    return f"{words}: {exc}" if words else str(exc)
