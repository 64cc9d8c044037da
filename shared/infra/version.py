"""The node's version and git hash, as reported by /status."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from shared.config import git_hash_from_environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def version() -> str:
    try:
        return metadata.version("ksnode")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def git_hash() -> str | None:
    """``KSNODE_GIT_HASH`` (set in images), else ``git rev-parse --short HEAD``
    of the checkout, else None (like the reference)."""
    baked = git_hash_from_environment()
    if baked:
        return baked
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value else None
