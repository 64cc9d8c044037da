"""Hand the node's files to the programs' account before supervisord starts.

Started as root, `ksnode up` stays root (it runs the embedded Postgres as
``ksnode_pg`` and holds the API's listening socket) but the three programs
run as the unprivileged ``ksnode`` (supervisord.conf ``user=``). That
account gets the dump and log folders, the embedded database's password
file, and private copies of the secret files the programs read, which may
be root's own (``/run/secrets/...`` 0400): the copies live in
``<home>/run/secrets`` (0700, files 0600) while the node runs and are
removed when it stops. The home and its run folder stay root's: root opens
files there by name (the lock, supervisord's pid file, socket and logs).
Started as another user, nothing changes hands.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from shared.config import Config, environment
from shared.db.auth import PASSWORD_FILE
from shared.errors import NodeFailure
from shared.infra.safefiles import open_regular, take_folder
from shared.infra.version import PROJECT_ROOT
from shared.node.accounts import give, give_tree, let_others_traverse
from shared.node.reloadstate import PROGRAMS_FOLDER

PROGRAM_USER_VARIABLE = "KSNODE_PROGRAM_USER"  # read by supervisord.conf's user=
SUPERVISOR_LOGS_VARIABLE = "KSNODE_SUPERVISOR_LOGS"  # supervisord.conf's log folder

# Settings naming a file a program reads (the env file may name them too).
FILE_SETTINGS = (
    "ENCRYPTION_SECRET_PATH",
    "ADMIN_PASSWORD_FILE",
    "TELEGRAM_BOT_TOKEN_FILE",
    "KS_NODE_REPORT_PASSWORD_FILE",
    "DB_PASSWORD_FILE",
    "DB_SSLROOTCERT",
    "KSNODE_ENV_FILE",
)
LIST_SETTINGS = ("ENCRYPTION_SECRET_PREVIOUS_PATHS",)


class HandOverError(NodeFailure):
    """A file the programs need could not be handed over (message names it)."""


def own_user_name() -> str | None:
    """Our account's name, if it has one (supervisord's user= needs one)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def _copy(source: Path, target: Path, account: pwd.struct_passwd) -> Path:
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise HandOverError(f"cannot read {source}: {exc.strerror}") from None
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchown(fd, account.pw_uid, account.pw_gid)
        os.write(fd, data)
    finally:
        os.close(fd)
    return target


def secrets_folder(config: Config) -> Path:
    return config.run_dir / "secrets"


def _copy_files(env: dict[str, str], folder: Path, account: pwd.struct_passwd) -> dict[str, str]:
    """Copies of every file setting in ``env`` (or its env file) in ``folder``;
    returns the settings pointing at them."""
    settings = environment(None, env)  # the env file's values count too
    changed: dict[str, str] = {}
    for name in FILE_SETTINGS:
        value = (settings.get(name) or "").strip()
        if value:
            source = Path(value).expanduser().absolute()
            changed[name] = str(_copy(source, folder / name, account))
    for name in LIST_SETTINGS:
        items = [item.strip() for item in (settings.get(name) or "").split(",") if item.strip()]
        copies = [
            str(_copy(Path(item).expanduser().absolute(), folder / f"{name}.{n}", account))
            for n, item in enumerate(items)
        ]
        if copies:
            changed[name] = ",".join(copies)
    return changed


def supervisor_log_dir(config: Config) -> Path:
    """Where supervisord keeps its own log and the programs' capture files.
    supervisord runs as root when `ksnode up` does, and opens those files by
    name: as root they live in ``<home>/run/supervisor``, which only root
    may write, never in LOG_DIR (the programs' account's: a link it put
    there would make root write wherever it pointed). Otherwise, as before,
    ``LOG_DIR/supervisor``."""
    if os.geteuid() == 0:
        return config.run_dir / "supervisor"
    return config.effective_log_dir / "supervisor"


def programs_folder(config: Config) -> Path:
    """The one folder of the run folder the programs write to (the api's
    reload refusal, shared/node/reloadstate.py)."""
    return config.run_dir / PROGRAMS_FOLDER


def keep_root_folders(config: Config) -> None:
    """As root: the home, its run folder and supervisord's log folder are
    root's (a home handed to ``ksnode`` by an earlier version is taken
    back), so that the programs' account can neither replace nor put links
    in what root opens there (the lock, supervisord's pid file, socket and
    logs). A link in place of one of them is refused. Nothing to do for
    any other user."""
    if os.geteuid() != 0:
        return
    uid, gid = os.geteuid(), os.getegid()
    try:
        take_folder(config.home, uid, gid)
        take_folder(config.run_dir, uid, gid, 0o755)
        folder = supervisor_log_dir(config)
        folder.mkdir(mode=0o750, exist_ok=True)
        take_folder(folder, uid, gid, 0o750)
    except OSError as exc:
        raise HandOverError(f"cannot keep the node's own folders root's: {exc}") from None


def _give_file(path: Path, account: pwd.struct_passwd) -> None:
    """``account`` owns the file at ``path`` if there is one (not a link)."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fchown(fd, account.pw_uid, account.pw_gid)
    finally:
        os.close(fd)


def _programs_subfolder(path: Path, account: pwd.struct_passwd, mode: int = 0o700) -> None:
    path.mkdir(mode=mode, exist_ok=True)
    take_folder(path, account.pw_uid, account.pw_gid)


@contextlib.contextmanager
def handed_over(
    config: Config, env: dict[str, str], account: pwd.struct_passwd | None
) -> Iterator[dict[str, str]]:
    """The programs' environment, with their account in it; as root, with
    the files handed to ``account`` meanwhile (copies removed after).

    What ``account`` gets: DUMP_DIR and LOG_DIR (and what is in them), the
    embedded database's password file and three folders of the run folder
    (the secrets' copies, ``metrics``, ``api``). The home and the run folder
    stay root's (keep_root_folders)."""
    env = dict(env)
    if account is None:
        name = own_user_name()
        if name is not None:
            env[PROGRAM_USER_VARIABLE] = name
        yield env
        return
    env[PROGRAM_USER_VARIABLE] = account.pw_name
    keep_root_folders(config)
    try:
        for folder in (config.effective_dump_dir, config.effective_log_dir):
            give_tree(folder, account)
        _give_file(config.home / PASSWORD_FILE, account)
        _programs_subfolder(config.run_dir / "metrics", account)
        _programs_subfolder(programs_folder(config), account)
        # The account must reach its folders, the interpreter (e.g. a pyenv
        # build under /root, 0700) and the code: search permission only, as
        # for the embedded Postgres's binaries. DUMP_DIR and LOG_DIR are its
        # own (given above): only the folders above them need it; opening
        # DUMP_DIR itself (0701) undid the 0700 every start restores.
        interpreter = Path(os.path.realpath(sys.executable)).parent
        for folder in (
            config.home,
            config.effective_dump_dir.parent,
            config.effective_log_dir.parent,
            interpreter,
            Path(sys.prefix),
            PROJECT_ROOT,
        ):
            let_others_traverse(folder)
        folder = secrets_folder(config)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700)
        give(folder, account)
        env.update(_copy_files(env, folder, account))
    except OSError as exc:
        raise HandOverError(
            f"cannot hand the node's files to user {account.pw_name}: {exc}"
        ) from None
    try:
        yield env
    finally:
        shutil.rmtree(secrets_folder(config), ignore_errors=True)


def without_user_lines(conf: Path, folder: Path) -> Path:
    """supervisord.conf for an account without a name (``docker run --user
    12345``): supervisord's user= cannot name it, and nobody is switched to
    anyway. Written in ``folder`` with ``%(here)s`` kept pointing at the
    original's folder."""
    text = conf.read_text()
    text = text.replace(f"user=%(ENV_{PROGRAM_USER_VARIABLE})s\n", "")
    text = text.replace("%(here)s", str(conf.parent))
    target = folder / "supervisord-nouser.conf"
    target.write_text(text)
    return target
