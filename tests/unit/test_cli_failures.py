"""``ksnode`` turns any ``KsnodeError`` into one stderr line and the exit code
of its branch (shared/exitcodes.py), whatever the command."""

from __future__ import annotations

import argparse
import subprocess
import sys

from shared.cli import failure_line
from shared.config import ConfigError
from shared.keys.keycheck import KeyCheckFailed
from shared.node.launcher import LaunchError


def _ksnode(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        env={"PATH": "/usr/bin:/bin", "KSNODE_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


def test_a_failing_command_says_one_line_and_exits_1(tmp_path):
    missing = tmp_path / "no-such-secret"
    result = _ksnode(
        tmp_path,
        "audit",
        "export",
        ENCRYPTION_SECRET_PATH=str(missing),
        DB_HOST="127.0.0.1",
        DB_PORT="1",
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ksnode: Failed to load encryption secret: No such file or directory ({missing})"
    ]


def test_a_bad_setting_exits_2_without_the_commands_words(tmp_path):
    result = _ksnode(tmp_path, "migrate", PORT="x")
    assert result.returncode == 2
    assert result.stderr.startswith("ksnode: invalid configuration:")
    assert "migrate failed" not in result.stderr and "Traceback" not in result.stderr


def test_the_commands_words_lead_its_failures_and_refusals():
    reencrypt = argparse.Namespace(failed="reencrypt failed", refused="reencrypt refused")
    assert failure_line(reencrypt, LaunchError("pg_ctl failed")) == (
        "reencrypt failed: pg_ctl failed"
    )
    assert failure_line(reencrypt, KeyCheckFailed("3 key shares")) == (
        "reencrypt refused: 3 key shares"
    )
    up = argparse.Namespace(failed="cannot start")
    assert failure_line(up, KeyCheckFailed("3 key shares")) == "cannot start: 3 key shares"
    bad = ConfigError(["PORT: bad"])
    assert failure_line(up, bad) == str(bad) == "invalid configuration:\n  - PORT: bad"
    assert failure_line(argparse.Namespace(), LaunchError("no dump")) == "no dump"
