"""Letting the node's other accounts reach a folder adds o+x to it and to
every folder above that lacks it; that is not harmless (a world-readable
file of known name below a folder that was 0700 becomes readable by all),
so each folder changed is named in one warning, and nothing is said when
nothing changes."""

from __future__ import annotations

import logging
import os

import pytest

from shared.node.accounts import let_others_traverse

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chmod of /tmp's parents needs root")


def test_each_folder_opened_is_named_once(tmp_path, caplog):
    private = tmp_path / "private"
    inner = private / "code"
    inner.mkdir(parents=True)
    private.chmod(0o700)
    inner.chmod(0o700)
    with caplog.at_level(logging.WARNING, logger="ksnode"):
        changed = let_others_traverse(inner)
        again = let_others_traverse(inner)
    assert changed[:2] == [inner, private]  # and pytest's own 0700 folders above
    assert again == []
    warnings = [r for r in caplog.records if getattr(r, "event", "") == "accounts.folders_opened"]
    assert len(warnings) == 1
    assert warnings[0].folders == [str(folder) for folder in changed]
    assert private.stat().st_mode & 0o777 == 0o701
