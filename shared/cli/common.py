"""What every ``ksnode`` command module needs: the configuration, loaded
from the environment and ``--env-file`` (a ``ConfigError`` reaches ``main``:
one message and exit 2)."""

from __future__ import annotations

from pathlib import Path

from shared.config import Config, load_config


def load_cli_config(args) -> Config:
    return load_config(env_file=Path(args.env_file) if args.env_file else None)
