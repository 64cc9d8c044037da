"""What can go wrong with a backup or restore, one class per cause."""

from shared.errors import BackupFailure


class BackupError(BackupFailure):
    """Base class; the message is safe to store and show (no secrets)."""


class ToolsUnusable(BackupError):
    """pg_dump/pg_restore missing or older than the server."""


class DumpFailed(BackupError):
    """pg_dump exited non-zero or produced no file."""


class VerifyFailed(BackupError):
    """The dump file could not be read back completely."""


class RestoreFailed(BackupError):
    """pg_restore failed; the database is unchanged (single transaction)."""


class BusyError(BackupError):
    """Another backup or restore holds the lock."""


class Expired(BackupError):
    """The job's deadline passed before its point of no return: not done."""


class SelfcheckNotRun(BackupError):
    """The self-check could not start (no scratch folder in DUMP_DIR): not
    a verdict on the backups, tried again once the folder takes files."""
