"""The one exception tree: every exception the project raises derives from
``KsnodeError``, through one branch per concern.

The branches let a caller say what it handles (``except DatabaseFailure``)
and let ``ksnode`` turn any failure into one line and the exit code of its
branch (shared/exitcodes.py) instead of each command catching its own
tuple. The concrete classes stay beside the code that raises them; this
module imports nothing from the project, so every floor may import it.

Where existing code catches a builtin (``ValueError``...), the concrete
class keeps that builtin as a second base.
"""

from __future__ import annotations


class KsnodeError(Exception):
    """Root of the project's exceptions.

    ``refusal`` marks the failures that are a deliberate "no" (a check that
    refuses to go on) rather than something that broke; the CLI words the
    two differently."""

    refusal: bool = False


class ConfigurationFailure(KsnodeError):
    """The environment or env file does not describe a usable node."""


class UsageFailure(KsnodeError):
    """A command was called in a way it cannot act on."""


class DatabaseFailure(KsnodeError):
    """The database (embedded or external) cannot be reached or used."""


class CryptoFailure(KsnodeError):
    """Secrets, ciphers, sealed values and the server keypair."""


class BackupFailure(KsnodeError):
    """Taking, checking, listing or restoring a backup."""


class NodeFailure(KsnodeError):
    """Starting, supervising or reloading the node's programs."""


class AuditFailure(KsnodeError):
    """Writing or reading the audit trail."""


class RequestFailure(KsnodeError):
    """Inside an API request: authentication, providers, error answers."""
