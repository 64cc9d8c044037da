"""Python started by `ksnode` never imports from the operator's current
folder: `python -m` and `python -c` put it first on sys.path, and a local
account could leave a package where root runs `ksnode reload` or `ksnode
ctl` (the keeper of `ksnode up`: tests/node/test_ksnode_up.py)."""

from __future__ import annotations

import os
import subprocess

from shared.node.codecheck import check_code
from tests.support.node_process import KSNODE


def test_the_code_check_ignores_a_shared_package_in_the_current_folder(tmp_path, monkeypatch):
    mark = tmp_path / "planted-code-ran"
    for name in ("shared/__init__.py", "shared/node/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "shared/node/codecheck.py").write_text(f"open({str(mark)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    check_code(["reporter"])  # its verdict depends on this process's settings
    assert not mark.exists()


def test_ksnode_ctl_ignores_a_supervisor_package_in_the_current_folder(tmp_path):
    """`ksnode ctl` runs supervisorctl with `python -c`, which would import
    from the current folder first."""
    mark = tmp_path / "planted-code-ran"
    (tmp_path / "supervisor").mkdir()
    (tmp_path / "supervisor/__init__.py").write_text("")
    (tmp_path / "supervisor/supervisorctl.py").write_text(
        f"open({str(mark)!r}, 'w').write('ran')\ndef main():\n    pass\n"
    )
    env = {**os.environ, "KSNODE_HOME": str(tmp_path / "home")}
    subprocess.run(
        [*KSNODE, "ctl", "status"], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert not mark.exists()
