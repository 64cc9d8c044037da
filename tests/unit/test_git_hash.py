"""The commit /status reports, read from .git without the git binary, checked
against `git rev-parse` on real repositories (a branch, packed refs, a
detached tag checkout, a worktree, a copy without .git)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.infra.gitmeta import git_dir, short_hash

ROOT = Path(__file__).resolve().parents[2]
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is needed to make the repositories")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [GIT, "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "checkout"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for n in range(2):
        (path / "f").write_text(str(n))
        git(path, "add", "f")
        git(path, "commit", "-q", "-m", f"c{n}")
    git(path, "tag", "v1.0.0")
    return path


def test_branch_head(repo):
    assert short_hash(git_dir(repo)) == git(repo, "rev-parse", "--short", "HEAD")


def test_packed_refs_only(repo):
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git/refs/heads/main").exists()
    assert short_hash(git_dir(repo)) == git(repo, "rev-parse", "--short", "HEAD")


def test_detached_at_a_tag_as_the_upgrade_guide_checks_out(repo):
    git(repo, "checkout", "-q", "HEAD~1")
    git(repo, "checkout", "-q", "v1.0.0")
    assert short_hash(git_dir(repo)) == git(repo, "rev-parse", "--short", "HEAD")


def test_a_worktree_reads_refs_from_the_main_repository(repo, tmp_path):
    other = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(other), "HEAD~1")
    assert (other / ".git").is_file()
    assert short_hash(git_dir(other)) == git(other, "rev-parse", "--short", "HEAD")
    assert short_hash(git_dir(other)) != short_hash(git_dir(repo))


def test_no_git_folder_gives_none(tmp_path):
    assert short_hash(git_dir(tmp_path)) is None


def test_script_form_used_by_the_docker_build(repo):
    # The build copies HEAD, refs and packed-refs into a folder and runs the
    # module as a script there, with nothing of the project importable.
    copy = repo.parent / "gitmeta"
    copy.mkdir()
    shutil.copy(repo / ".git/HEAD", copy / "HEAD")
    shutil.copytree(repo / ".git/refs", copy / "refs")
    out = subprocess.run(
        [sys.executable, "-I", str(ROOT / "shared/infra/gitmeta.py"), str(copy)],
        cwd=copy,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == git(repo, "rev-parse", "--short", "HEAD")
    empty = repo.parent / "empty"
    empty.mkdir()
    out = subprocess.run(
        [sys.executable, "-I", str(ROOT / "shared/infra/gitmeta.py"), str(empty)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "\n"
