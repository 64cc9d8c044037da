"""Opening files in folders another account may write to.

Started as root, `ksnode up` hands the log and dump folders to the programs'
account (``ksnode``, shared/node/programuser.py), and root code (`ksnode up`,
the CLI commands) still creates and appends files there. Whoever holds that
account can put a symbolic link (or a hard link) where root expects its own
file; a plain ``open`` would then truncate, append to or chown the file the
link names. So root opens such files with these helpers: never through a
link (``O_NOFOLLOW``), only a regular file with one name (a hard link to
another file is refused too), and a file root makes for the programs is
created new (``O_EXCL``) and handed over with ``fchown`` on the open file,
never by name. A refusal is an ``UnsafeFile`` (an ``OSError``, so code that
already copes with a file it cannot open copes with it too) naming the path.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from shared.errors import NodeFailure

# Never block on a FIFO put in the file's place; never leak into children.
_ALWAYS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class UnsafeFile(NodeFailure, OSError):
    """A path that is not a plain file of ours: a link, a device, a folder."""


def _refuse(path: Path | str, why: str) -> UnsafeFile:
    return UnsafeFile(
        errno.EPERM,
        f"refused to open {path}: {why} (another account may have put it there)",
    )


def open_regular(
    path: Path | str, flags: int, mode: int = 0o600, *, dir_fd: int | None = None
) -> int:
    """``os.open`` that refuses a symbolic link, anything but a regular file,
    and a file with more than one name. ``O_TRUNC`` is not allowed (it
    would truncate before the check): ``os.ftruncate`` the fd after."""
    if flags & os.O_TRUNC:
        raise ValueError("open_regular: truncate after the check, not with O_TRUNC")
    try:
        fd = os.open(path, flags | _ALWAYS, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "it is a symbolic link") from None
        if exc.errno == errno.ENXIO:
            raise _refuse(path, "it is not a regular file") from None
        raise
    try:
        check_regular(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular(fd: int, path: Path | str) -> os.stat_result:
    """The fd's stat; UnsafeFile unless it is a regular file with one name."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "it is not a regular file")
    if info.st_nlink != 1:
        raise _refuse(path, f"it has {info.st_nlink} names (a hard link)")
    return info


def create_new(
    path: Path | str, flags: int, mode: int = 0o600, *, dir_fd: int | None = None
) -> int:
    """A new file at ``path`` (``O_CREAT | O_EXCL``: nothing there is opened);
    whatever already has the name is removed first, a link as a link."""
    with_name = Path(path)
    try:
        os.unlink(with_name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    return open_regular(path, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=dir_fd)


def owner_of_folder(folder: Path | str) -> tuple[int, int] | None:
    """Who should own what root writes into ``folder``: its owner when we are
    root and it belongs to someone else, else None (nothing to change)."""
    if os.geteuid() != 0:
        return None
    info = os.stat(folder)
    if info.st_uid == os.geteuid():
        return None
    return info.st_uid, info.st_gid


def give_fd(fd: int, owner: tuple[int, int] | None) -> None:
    """``fchown`` the open file to ``owner`` (None: leave it)."""
    if owner is not None:
        os.fchown(fd, *owner)


def take_folder(path: Path, uid: int, gid: int, mode: int | None = None) -> None:
    """Make the folder ``path`` (not a link to one) ``uid``'s, optionally with
    ``mode``: changed through an fd opened on the folder itself."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeFile(
                errno.EPERM, f"refused to use {path}: it is not a folder (a link, or a file)"
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.fchown(fd, uid, gid)
        if mode is not None and stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
