"""`ksnode up` as root keeps the home, the run folder and supervisord's log
folder root's (a home an earlier version handed to ``ksnode`` is taken
back): the programs' account can then neither put a link where root opens
files (the lock, supervisord's pid file, socket and capture logs) nor swap
those folders. What the programs write stays theirs: LOG_DIR, DUMP_DIR, the
password file, run/secrets, run/metrics, run/api. Handing a tree over
neither follows a link nor changes a file with a second name."""

from __future__ import annotations

import logging
import os
import pwd

import pytest

from shared.config import load_config
from shared.infra.privatefiles import check_at_start
from shared.node.accounts import give_tree
from shared.node.keeper import LaunchError, program_environment
from shared.node.launcher import prepare_folders
from shared.node.programuser import handed_over, supervisor_log_dir
from tests.support.attacker import (
    ATTACKER,
    root_file_fixture,  # noqa: F401 - the root_file fixture
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, system users)")


def owner(path) -> int:
    return path.lstat().st_uid


@pytest.fixture()
def config(tmp_path):
    return load_config({"KSNODE_HOME": str(tmp_path / "var")})


@pytest.fixture()
def earlier_home(config):
    """A home as the previous version left it: everything the programs'."""
    for folder in (
        config.run_dir,
        config.effective_log_dir / "supervisor",
        config.effective_dump_dir,
    ):
        folder.mkdir(parents=True)
    for dirpath, _dirnames, _files in os.walk(config.home):
        os.chown(dirpath, ATTACKER, ATTACKER)
    return config.home


def test_the_home_and_run_folder_are_taken_back_from_the_programs(config, earlier_home):
    prepare_folders(config)
    assert owner(config.home) == 0 and owner(config.run_dir) == 0
    assert config.run_dir.stat().st_mode & 0o777 == 0o755
    captures = supervisor_log_dir(config)
    assert captures == config.run_dir / "supervisor"
    assert owner(captures) == 0 and captures.stat().st_mode & 0o777 == 0o750


def test_a_run_folder_swapped_for_a_link_fails_the_start(config, earlier_home, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.rename(config.run_dir, tmp_path / "old-run")
    config.run_dir.symlink_to(target)
    with pytest.raises(LaunchError, match="not a folder"):
        prepare_folders(config)
    assert not (target / "supervisor").exists()


def test_supervisord_writes_its_files_in_the_root_only_folder(config):
    prepare_folders(config)
    env = program_environment(config, embedded=False)
    assert env["KSNODE_SUPERVISOR_LOGS"] == str(config.run_dir / "supervisor")


def test_the_programs_get_their_folders_and_nothing_else(config, earlier_home):
    account = pwd.getpwnam("ksnode")
    (config.home / "pg_password").write_text("x\n")
    prepare_folders(config)
    with handed_over(config, {}, account):
        for path in (
            config.effective_log_dir,
            config.effective_dump_dir,
            config.home / "pg_password",
            config.run_dir / "secrets",
            config.run_dir / "metrics",
            config.run_dir / "api",
        ):
            assert owner(path) == account.pw_uid, path
        for path in (config.home, config.run_dir, supervisor_log_dir(config)):
            assert owner(path) == 0, path


def test_the_dump_folder_stays_private_from_one_start_to_the_next(config, caplog):
    # The programs' account owns DUMP_DIR: reaching it needs search
    # permission on the folders above it only. Opening the folder itself
    # (0701) made every start tighten it back to 0700, warning twice
    # (files.dumps_tightened, accounts.folders_opened) for the node's own doing.
    account = pwd.getpwnam("ksnode")
    prepare_folders(config)
    for start in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ksnode"):
            check_at_start(config.effective_dump_dir, config.effective_log_dir)
            with handed_over(config, {}, account):
                assert config.effective_dump_dir.stat().st_mode & 0o777 == 0o700
                assert config.effective_log_dir.stat().st_mode & 0o007 in (0o0, 0o5)
        if start:
            assert [getattr(r, "event", "") for r in caplog.records] == []


def test_handing_a_tree_over_follows_no_link_and_skips_hard_links(tmp_path, root_file):
    account = pwd.getpwnam("ksnode")
    tree = tmp_path / "dump"
    (tree / "inner").mkdir(parents=True)
    (tree / "inner" / "a.dump").write_text("dump")
    (tree / "link").symlink_to(root_file)
    (tree / "folder-link").symlink_to(tmp_path)
    os.link(root_file, tree / "hard")
    give_tree(tree, account)
    assert owner(tree / "inner" / "a.dump") == account.pw_uid
    assert owner(tree / "link") == account.pw_uid  # the link itself
    assert owner(root_file) == 0 and owner(tmp_path) == 0
