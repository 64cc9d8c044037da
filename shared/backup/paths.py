"""Which files may be restored: regular files inside DUMP_DIR only. Shared by
the API (early, precise errors) and the backup worker (checked again before
it acts).

Containment is decided before anything else (design §11), so the answers
cannot tell apart an existing file, a missing one and a folder outside
DUMP_DIR: the requested path is judged lexically (``..`` refused, then
normalised), and symbolic links inside DUMP_DIR are followed one component
at a time, each target judged lexically too before it is looked at. Nothing
outside DUMP_DIR is ever stat'ed, opened or read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shared.errors import BackupFailure

MAGIC = b"PGDMP"
MAX_LINKS = 40  # like the kernel's ELOOP limit


class UnsafeDumpPath(BackupFailure):
    """Refused restore path; ``code`` is the API error code."""

    def __init__(self, code: str, msg: str):
        super().__init__(msg)
        self.code = code
        self.msg = msg


class _Outside(BackupFailure):
    """The path, or a link on the way, leads out of DUMP_DIR."""


def _roots(dump_dir: Path) -> list[str]:
    """DUMP_DIR as configured and as resolved: a path spelled either way is
    inside (the folder itself is the operator's, so resolving it is safe)."""
    spelled = os.path.normpath(os.path.abspath(dump_dir))
    real = os.path.realpath(dump_dir)
    return [spelled] if spelled == real else [real, spelled]


def _relative_parts(path: str, roots: list[str]) -> list[str]:
    """The components of an absolute, normalised ``path`` below one of ``roots``."""
    for root in roots:
        if path == root:
            return []
        if path.startswith(root.rstrip("/") + "/"):
            return [p for p in path[len(root) :].split("/") if p]
    raise _Outside


def _walk(root: str, roots: list[str], parts: list[str]) -> str:
    """``root`` joined with ``parts``, symbolic links followed while they stay
    inside; a missing component ends the walk (the caller finds nothing)."""
    current, pending, links = root, list(parts), 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":  # only from a link's relative target
            if current == root:
                raise _Outside
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            mode = os.lstat(candidate).st_mode
        except (OSError, ValueError):  # missing, not a folder, NUL, too long...
            return os.path.join(candidate, *pending)
        if not stat.S_ISLNK(mode):
            current = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise UnsafeDumpPath("INVALID_DUMP_FILE", "Too many symbolic links")
        target = os.readlink(candidate)
        if os.path.isabs(target):
            # An absolute target restarts from the root it names, if any.
            pending = _relative_parts(os.path.normpath(target), roots) + pending
            current = root
        else:
            pending = target.split("/") + pending
    return current


def _contained(raw: str, dump_dir: Path) -> str:
    """The file ``raw`` names with links resolved, or _Outside; touches
    nothing but DUMP_DIR and what lies inside it."""
    if ".." in Path(raw).parts:
        raise _Outside
    roots = _roots(dump_dir)
    if os.path.isabs(raw):
        parts = _relative_parts(os.path.normpath(raw), roots)
    else:
        parts = [p for p in raw.split("/") if p]
    return _walk(roots[0], roots, parts)


def resolve_dump_path(raw: str, dump_dir: Path) -> Path:
    """The real path of the file to restore, or UnsafeDumpPath (design §11
    order: inside DUMP_DIR, exists, is a regular file, looks like a dump)."""
    try:
        real = _contained(raw, dump_dir)
    except _Outside:
        raise UnsafeDumpPath(
            "INVALID_DUMP_PATH", f"Dump file must be inside the dump directory ({dump_dir})"
        ) from None
    try:
        mode = os.lstat(real).st_mode  # the walk left no link at the end
    except (OSError, ValueError):
        raise UnsafeDumpPath("DUMP_FILE_NOT_FOUND", f"Dump file not found at path: {raw}") from None
    if not stat.S_ISREG(mode):
        raise UnsafeDumpPath("INVALID_DUMP_FILE", f"Path is not a file: {raw}")
    try:
        # O_NOFOLLOW: a link swapped in since the walk is refused, not followed.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError as exc:
        raise UnsafeDumpPath(
            "DUMP_FILE_ACCESS_ERROR", f"Cannot access dump file: {raw} ({exc.strerror})"
        ) from None
    if head != MAGIC:
        raise UnsafeDumpPath("INVALID_DUMP_FILE", f"Not a pg_dump archive: {raw}")
    return Path(real)
