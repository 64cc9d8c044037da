"""Hand the node's files to the programs' account before supervisord starts.

Started as root, `ksnode up` stays root (it runs the embedded Postgres as
``ksnode_pg`` and holds the API's listening socket) but the three programs
run as the unprivileged ``ksnode`` (supervisord.conf ``user=``). That
account gets the home (not Postgres's own files), the dump and log folders,
and private copies of the secret files the programs read, which may be
root's own (``/run/secrets/...`` 0400): the copies live in
``<home>/run/secrets`` (0700, files 0600) while the node runs and are
removed when it stops. Started as another user, nothing changes hands.
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
from shared.errors import NodeFailure
from shared.infra.version import PROJECT_ROOT
from shared.node.accounts import give, give_tree, let_others_traverse

PROGRAM_USER_VARIABLE = "KSNODE_PROGRAM_USER"  # read by supervisord.conf's user=

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


def postgres_files(config: Config) -> frozenset[Path]:
    """What belongs to the embedded Postgres's account, not the programs'."""
    home = config.home
    return frozenset({config.pg_data_dir, home / "pg_socket", home / "postgres.log"})


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


@contextlib.contextmanager
def handed_over(
    config: Config, env: dict[str, str], account: pwd.struct_passwd | None
) -> Iterator[dict[str, str]]:
    """The programs' environment, with their account in it; as root, with
    the files handed to ``account`` meanwhile (copies removed after)."""
    env = dict(env)
    if account is None:
        name = own_user_name()
        if name is not None:
            env[PROGRAM_USER_VARIABLE] = name
        yield env
        return
    env[PROGRAM_USER_VARIABLE] = account.pw_name
    try:
        give_tree(config.home, account, postgres_files(config) | {config.run_dir / "ksnode.lock"})
        for folder in (config.effective_dump_dir, config.effective_log_dir):
            give_tree(folder, account)
        # The account must reach its folders, the interpreter (e.g. a pyenv
        # build under /root, 0700) and the code: search permission only, as
        # for the embedded Postgres's binaries.
        interpreter = Path(os.path.realpath(sys.executable)).parent
        for folder in (
            config.home,
            config.effective_dump_dir,
            config.effective_log_dir,
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
