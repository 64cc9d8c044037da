"""Files only the node can read.

Dumps hold every user's identity and encrypted share: they are written 0600
in a 0700 folder (``private_dir``, ``create_private_file``; the safety dumps
taken before a restore too). Log files are at most 0640. ``check_at_start``
runs once when the node starts (``ksnode up`` and the other commands that
prepare the folders): a dump folder or dump readable by others, or a log
file others may read, is tightened, or — when the node does not own it —
named in one warning.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from shared.infra.safefiles import create_new, give_fd, owner_of_folder

log = logging.getLogger("ksnode")

DUMP_DIR_MODE = 0o700
DUMP_FILE_MODE = 0o600
LOG_FILE_MODE = 0o640


def private_dir(path: Path) -> None:
    """Create ``path`` as 0700, or tighten it to 0700 if it is looser."""
    path.mkdir(mode=DUMP_DIR_MODE, parents=True, exist_ok=True)
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, DUMP_DIR_MODE)
    except PermissionError:
        pass  # not ours: check_at_start has warned about it


def create_private_file(path: Path) -> int:
    """A new empty 0600 file, open for reading and writing (the fd), that a
    program (pg_dump) then fills through ``/dev/fd/<fd>``: the same file,
    whatever is put at ``path`` meanwhile. Whatever had the name is removed
    first (a link as a link: nothing it names is opened). Made by root in a
    folder another account owns (`ksnode backup` as root, DUMP_DIR the
    programs'), the file is that account's, changed on the fd, so the
    programs can read it back (restore, the drill)."""
    fd = create_new(path, os.O_RDWR, DUMP_FILE_MODE)
    try:
        os.fchmod(fd, DUMP_FILE_MODE)  # whatever the umask
        give_fd(fd, owner_of_folder(path.parent))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _tighten(path: Path, allowed: int, target: int, fixed: list[str], refused: list[str]) -> None:
    """chmod through an fd on the thing itself: the folders may be another
    account's (the programs', the node started as root), which could swap
    a file for a link between a check and a chmod by name."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return  # a link (ELOOP) or gone: nothing of ours to tighten
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            return
        if not mode & ~allowed & 0o777:
            return
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            refused.append(str(path))  # a hard link: the other name's file too
            return
        try:
            os.fchmod(fd, mode & target)
            fixed.append(path.name)
        except OSError:
            refused.append(str(path))
    finally:
        os.close(fd)


def check_at_start(
    dump_dir: Path, log_dir: Path, supervisor_logs: Path | None = None
) -> dict[str, list[str]]:
    """Tighten what others may read in the dump and log folders (and
    supervisord's, ``log_dir/supervisor`` unless named); one warning per
    kind of finding. Returns what was done (for tests)."""
    fixed: list[str] = []
    refused: list[str] = []
    if dump_dir.is_dir():
        _tighten(dump_dir, DUMP_DIR_MODE, DUMP_DIR_MODE, fixed, refused)
        for entry in _files(dump_dir):
            _tighten(entry, DUMP_FILE_MODE, DUMP_FILE_MODE, fixed, refused)
    log_fixed: list[str] = []
    for folder in (log_dir, supervisor_logs or log_dir / "supervisor"):
        for entry in _files(folder):
            _tighten(entry, LOG_FILE_MODE, LOG_FILE_MODE, log_fixed, refused)
    if fixed:
        log.warning(
            "dump folder or dumps were readable by others; made private (0700/0600)",
            extra={"event": "files.dumps_tightened", "folder": str(dump_dir), "files": fixed},
        )
    if log_fixed:
        log.warning(
            "log files were readable by others; set to 0640",
            extra={"event": "files.logs_tightened", "folder": str(log_dir), "files": log_fixed},
        )
    if refused:
        log.warning(
            "files readable by others that the node cannot change: fix their owner or mode",
            extra={"event": "files.not_private", "paths": refused},
        )
    return {"fixed": fixed + log_fixed, "refused": refused}


def loose_mode(path: Path) -> int | None:
    """The file's permission bits when its group or others have any access,
    else None (also when it cannot be looked at: whoever reads it says why)."""
    try:
        mode = stat.S_IMODE(path.expanduser().stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def warn_if_others_may_read(secrets: list[Path]) -> list[str]:
    """A warning for each secret file that others may read (left as it is:
    it may be a mount the node does not own). Returns the paths named."""
    named = []
    for path in secrets:
        mode = loose_mode(Path(path))  # None too when unreadable: loading it said why
        if mode is not None:
            named.append(str(path))
            log.warning(
                "the encryption secret file may be read by others: " + secret_fix(path),
                extra={"event": "secret.not_private", "path": str(path), "mode": f"{mode:04o}"},
            )
    return named


def in_container() -> bool:
    """Whether the node runs in the ksnode image (docker/Dockerfile sets this)."""
    return os.environ.get("KSNODE_IN_CONTAINER") == "1"


def secret_fix(path: Path) -> str:
    """The fix that works where the node runs. In the container the secret is
    the host's file mounted read-only, read by uid 1000: a root-owned 0400
    file there stops the node, so the owner has to change on the host."""
    if in_container():
        return (
            "on the host, make ENCRYPTION_SECRET_FILE_PATH owned by uid 1000 (the node "
            "in the container) and private: sudo chown 1000:1000 FILE && sudo chmod 0400 FILE"
        )
    return f"chmod 0400 {path} (it must stay owned by uid {os.getuid()}, the node's user)"


def _files(folder: Path) -> list[Path]:
    try:
        return [entry for entry in folder.iterdir() if entry.is_file() and not entry.is_symlink()]
    except OSError:
        return []


def env_file_warning(path: Path) -> str | None:
    """The env file holds passwords: others must not read it."""
    mode = loose_mode(path)
    if mode is None:
        return None
    return f"env file {path} may be read by others (mode {mode:04o}): chmod 600 {path}"
