"""`ksnode up`'s home lock (run/ksnode.lock), taken by root in a run folder
another account may have written to: a link in its place is refused before
anything is truncated or written; a plain lock file works as before."""

from __future__ import annotations

import os

import pytest

from shared.node.preflight import HomeLock
from tests.support.attacker import (
    root_file_fixture,  # noqa: F401 - the root_file fixture
)


@pytest.fixture()
def run_dir(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


def test_a_symlink_in_place_of_the_lock_is_refused(run_dir, root_file):
    (run_dir / "ksnode.lock").symlink_to(root_file)
    with pytest.raises(OSError, match="symbolic link"):
        HomeLock(run_dir).acquire()
    assert root_file.read_text() == "root's\n"


def test_a_hard_link_in_place_of_the_lock_is_refused(run_dir, root_file):
    os.link(root_file, run_dir / "ksnode.lock")
    with pytest.raises(OSError, match="hard link"):
        HomeLock(run_dir).acquire()
    assert root_file.read_text() == "root's\n"


def test_the_lock_holds_our_pid(run_dir):
    lock = HomeLock(run_dir).acquire()
    try:
        assert (run_dir / "ksnode.lock").read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()
