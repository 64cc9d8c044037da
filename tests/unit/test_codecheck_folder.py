"""`ksnode reload`'s code check runs from the operator's folder: it must
check the installed code, never a ``shared`` package lying in that folder
(a local account could plant one where root runs `ksnode reload`)."""

from __future__ import annotations

from shared.node.codecheck import check_code


def test_the_code_check_ignores_a_shared_package_in_the_current_folder(tmp_path, monkeypatch):
    mark = tmp_path / "planted-code-ran"
    for name in ("shared/__init__.py", "shared/node/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "shared/node/codecheck.py").write_text(f"open({str(mark)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    check_code(["reporter"])  # its verdict depends on this process's settings
    assert not mark.exists()
