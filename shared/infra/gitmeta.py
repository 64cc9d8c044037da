"""The commit a checkout is at, read from its ``.git`` without the ``git`` binary.

Runs on its own too (``python3 shared/infra/gitmeta.py GITDIR``: prints the
short hash or nothing): the Docker build calls it on the ``.git`` files the
build context carries (HEAD, refs, packed-refs), so the image knows its
commit without ``git`` in the image or an extra variable. Stdlib only, and
no import from the project, for that reason.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SHORT = 7  # `git rev-parse --short` for a repository of this size
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def git_dir(checkout: Path) -> Path | None:
    """The checkout's git folder: ``.git`` itself, or the folder a worktree's
    ``.git`` file names (``gitdir: ...``)."""
    dot_git = checkout / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        text = dot_git.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    return target if target.is_absolute() else (checkout / target)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _common_dir(gitdir: Path) -> Path:
    # A worktree keeps HEAD in its own folder, refs in the main repository's.
    common = _read(gitdir / "commondir")
    if not common:
        return gitdir
    path = Path(common)
    return path if path.is_absolute() else gitdir / path


def _resolve_ref(gitdir: Path, ref: str) -> str | None:
    for folder in (gitdir, _common_dir(gitdir)):
        loose = _read(folder / ref)
        if loose and _SHA.match(loose):
            return loose
        packed = _read(folder / "packed-refs") or ""
        for line in packed.splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _SHA.match(sha):
                return sha
    return None


def head_commit(gitdir: Path) -> str | None:
    """The full hash HEAD points at (a branch, or detached at a tag/commit)."""
    head = _read(gitdir / "HEAD")
    for _ in range(5):  # symbolic refs may chain; git stops at 5 too
        if not head:
            return None
        if _SHA.match(head):
            return head
        if not head.startswith("ref:"):
            return None
        ref = head[len("ref:") :].strip()
        resolved = _resolve_ref(gitdir, ref)
        if resolved:
            return resolved
        head = None
    return None


def short_hash(gitdir: Path | None) -> str | None:
    if gitdir is None:
        return None
    full = head_commit(gitdir)
    return full[:SHORT] if full else None


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(".git")
    print(short_hash(folder) or "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
