"""The node's version and git hash, as reported by /status."""

from __future__ import annotations

from pathlib import Path

from shared.config import git_hash_from_environment
from shared.infra.gitmeta import git_dir, short_hash

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Written by the Docker build from the build context's .git (docker/Dockerfile).
BAKED_HASH_FILE = PROJECT_ROOT / "GIT_HASH"


def version() -> str:
    # Imported here: importlib.metadata (and the email package it pulls in)
    # is ~4 MiB that the programs which only need PROJECT_ROOT (the keeper)
    # would hold for nothing.
    from importlib import metadata

    try:
        return metadata.version("ksnode")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def git_hash() -> str | None:
    """``KSNODE_GIT_HASH`` if set, else the hash the image build wrote, else
    the checkout's HEAD read from ``.git`` (no ``git`` needed), else None
    (like the reference, e.g. a copy without ``.git``)."""
    explicit = git_hash_from_environment()
    if explicit:
        return explicit
    try:
        baked = BAKED_HASH_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        baked = ""
    if baked:
        return baked
    return short_hash(git_dir(PROJECT_ROOT))
