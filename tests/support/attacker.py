"""The other account of the root-path tests: folders it owns, links it
plants, and the root-only file it aims them at (tests/unit/test_root_*.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ATTACKER = 54321  # the programs' account; no name needed


def attacker_folder(path: Path) -> Path:
    """A new folder owned by the other account."""
    path.mkdir()
    os.chown(path, ATTACKER, ATTACKER)
    return path


def plant_link(path: Path, target: Path) -> None:
    """A symbolic link at ``path`` to ``target``, owned by the other account."""
    path.symlink_to(target)
    os.chown(path, ATTACKER, ATTACKER, follow_symlinks=False)


def assert_untouched(target: Path) -> None:
    """The root-only file is still root's, with its one line."""
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert target.read_text() == "root's\n"


@pytest.fixture(name="root_file")
def root_file_fixture(tmp_path) -> Path:
    """A file only root may read or write: what a planted link aims at."""
    target = tmp_path / "root-only"
    target.write_text("root's\n")
    target.chmod(0o600)
    return target
