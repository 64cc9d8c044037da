"""The one table of exit codes: ``ksnode`` commands and the three programs
(beside shared/errors.py, on the lowest floor, so the programs use it
without loading the CLI).

``ksnode`` (shared/cli/__init__.py) catches ``KsnodeError`` once and exits
with the code of the exception's branch (``BRANCH_CODES``, the nearest
branch in its ancestry wins); the programs' start-up (shared/program/runtime.py)
uses the same names. docs/operator.md shows this table.
"""

from __future__ import annotations

from enum import IntEnum

from shared.errors import (
    AuditFailure,
    BackupFailure,
    ConfigurationFailure,
    CryptoFailure,
    DatabaseFailure,
    KsnodeError,
    NodeFailure,
    RequestFailure,
    UsageFailure,
)


class ExitCode(IntEnum):
    OK = 0
    # The command ran and failed, or refused (a check said no, a `verify`
    # found a problem, a restore was not confirmed).
    FAILED = 1
    # A setting is missing or invalid, or a program would start on a node
    # it cannot serve (a secret it lacks): fix the configuration, not retry.
    CONFIG = 2
    # The command line itself is wrong (argparse uses 2 as well).
    USAGE = 2
    # A program gave up waiting for the database at start-up (supervisord
    # restarts it; a retry may work).
    DATABASE_UNREACHABLE = 3
    # Ctrl-C (128 + SIGINT).
    INTERRUPTED = 130


BRANCH_CODES: dict[type[KsnodeError], ExitCode] = {
    ConfigurationFailure: ExitCode.CONFIG,
    UsageFailure: ExitCode.USAGE,
    DatabaseFailure: ExitCode.FAILED,
    CryptoFailure: ExitCode.FAILED,
    BackupFailure: ExitCode.FAILED,
    NodeFailure: ExitCode.FAILED,
    AuditFailure: ExitCode.FAILED,
    RequestFailure: ExitCode.FAILED,
}


def exit_code_for(exc: KsnodeError) -> ExitCode:
    """The code of the nearest branch in ``exc``'s ancestry (FAILED when
    only the root is there)."""
    for cls in type(exc).__mro__:
        if cls in BRANCH_CODES:
            return BRANCH_CODES[cls]
    return ExitCode.FAILED
