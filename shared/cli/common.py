"""What every ``ksnode`` command module needs: the configuration, loaded
from the environment and ``--env-file``, or one message and exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.config import Config, ConfigError, load_config


def load_cli_config(args) -> Config:
    try:
        return load_config(env_file=Path(args.env_file) if args.env_file else None)
    except ConfigError as exc:
        print(f"ksnode: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
