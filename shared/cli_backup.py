"""`ksnode backup`, `ksnode backups`, `ksnode restore` (backups issue)."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register the backup subcommands on the ``ksnode`` parser."""
