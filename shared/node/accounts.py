"""System accounts `ksnode up` uses when it is started as root.

Postgres refuses to run as root, and the internet-facing programs should not
either: as root, ``ksnode up`` creates (or reuses) two unprivileged system
users, ``ksnode_pg`` for the embedded Postgres and ``ksnode`` for the API,
backup worker and reporter. Started as any other user, nobody is switched
to: everything runs as that user (the Docker image's 1000:1000).
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
from pathlib import Path

from shared.errors import NodeFailure

log = logging.getLogger("ksnode")

POSTGRES_USER = "ksnode_pg"
PROGRAM_USER = "ksnode"


class AccountError(NodeFailure):
    """A system user could not be created (the message says why)."""


def system_account(name: str) -> pwd.struct_passwd | None:
    """The account ``name`` (created if missing) when we are root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    # Two starts racing for the same name: the loser finds it made.
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise AccountError(f"cannot create system user {name}: {result.stderr.strip()}")
    return pwd.getpwnam(name)


def program_account() -> pwd.struct_passwd | None:
    """Who the three programs run as: None (ourselves) unless we are root."""
    return system_account(PROGRAM_USER)


def let_others_traverse(path: Path) -> list[Path]:
    """An account other than ours must be able to reach ``path``: ``o+x`` on
    it and every folder above it that lacks it. Search permission only — no
    folder becomes listable — but it is for every account, not only ours:
    a file of known name below a folder that was 0700 (``/root``) becomes
    readable by all if its own mode allows it (0644). So each folder changed
    is named in one warning (a later start finds nothing to change). Returns
    the folders changed."""
    changed: list[Path] = []
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
            changed.append(parent)
    if changed:
        log.warning(
            "folders made searchable by every account (o+x) so that the node's "
            "accounts can reach their files; files of known name below them that "
            "are themselves world-readable can now be read: check them, or move "
            "the node's code and interpreter out of private folders",
            extra={
                "event": "accounts.folders_opened",
                "folders": [str(folder) for folder in changed],
                "for": str(path),
            },
        )
    return changed


def give(path: Path, account: pwd.struct_passwd) -> None:
    """Make ``account`` the owner of ``path`` (not following a link)."""
    os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def give_tree(root: Path, account: pwd.struct_passwd) -> None:
    """``give`` ``root`` and everything below it. The tree may be the
    account's already (a second start), so it may have changed it under
    us: the walk holds each folder open (``os.fwalk``: a folder swapped for
    a link is not entered) and changes each entry relative to it without
    following a link; a file with more than one name (a hard link to a file
    elsewhere) is left as it is."""
    try:
        info = root.lstat()
    except FileNotFoundError:
        return
    give(root, account)
    if not stat.S_ISDIR(info.st_mode):
        return
    for _dirpath, dirnames, filenames, dirfd in os.fwalk(root):
        for name in [*dirnames, *filenames]:
            try:
                entry = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                if not stat.S_ISDIR(entry.st_mode) and entry.st_nlink > 1:
                    continue
                os.chown(name, account.pw_uid, account.pw_gid, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile
