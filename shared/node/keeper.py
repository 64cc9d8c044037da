"""The keeper: what `ksnode up` is once the node is prepared.

`ksnode up` first prepares the node (preflight, the database, migrations,
the keys: launcher.py). That work imports the whole project (psycopg2,
cryptography, the stores), about 10 MiB the process would otherwise hold
for the node's whole life while doing none of it again. So, once prepared,
the process replaces its own image (``exec``: same pid, same stdout, same
signals) with this lean module, which only keeps the node:

* the home's lock and the API's listening socket, inherited as open file
  descriptors and lent to api programs as before (listener.py);
* the embedded Postgres, watched and started again should it die, and
  stopped when the node stops (pgwatch.py);
* supervisord, its output and the programs' capture files relayed to our
  stdout, SIGTERM/SIGINT/SIGHUP forwarded to it.

Nothing here may import the database driver, the crypto or the stores:
tests/node/test_ksnode_up.py checks what the running keeper has loaded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.config import Config, child_environment, load_config
from shared.db.auth import PASSWORD_FILE
from shared.errors import NodeFailure
from shared.node.accounts import AccountError, program_account
from shared.node.listener import SocketKeeper
from shared.node.logfollow import FollowFolder
from shared.node.logrelay import Relay
from shared.node.programuser import (
    SUPERVISOR_LOGS_VARIABLE,
    HandOverError,
    handed_over,
    own_user_name,
    supervisor_log_dir,
    without_user_lines,
)

log = logging.getLogger("ksnode")

KEEPER_MODULE = "shared.node.keeper"
# The folder holding the ``shared`` package that runs now.
CODE_ROOT = Path(__file__).resolve().parents[2]


class LaunchError(NodeFailure):
    """Start-up cannot continue; the message says why (no secrets)."""


@dataclass(frozen=True)
class Handover:
    """What the preparing `ksnode up` passes to its keeper image: open file
    descriptors and where things are, never a secret (it is on the command
    line)."""

    lock_fd: int
    listen_fd: int
    conf: str
    env_file: str | None
    cwd: str  # the operator's folder, where `ksnode up` was started
    # The embedded Postgres the preparation started: its host and port.
    pg_host: str | None = None
    pg_port: int | None = None

    def to_argument(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_argument(cls, text: str) -> Handover:
        return cls(**json.loads(text))


def become_keeper(handover: Handover) -> None:
    """Replace this process's image with the keeper; returns only if the
    exec itself fails (LaunchError)."""
    for fd in (handover.lock_fd, handover.listen_fd):
        os.set_inheritable(fd, True)
    # Lines written so far must reach the file and the terminal: the new
    # image starts with empty buffers.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # `python -m` puts the current folder first on sys.path: exec'd from
    # wherever the operator ran `ksnode up` (as root, say, in a folder others
    # may write to), it would import a shared/node/keeper.py lying there. So
    # the exec happens in the folder of the code running now, and the keeper
    # goes back to the operator's folder before it reads anything.
    try:
        os.chdir(CODE_ROOT)
        os.execv(sys.executable, [sys.executable, "-m", KEEPER_MODULE, handover.to_argument()])
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.chdir(handover.cwd)
        raise LaunchError(
            f"cannot start the node's keeper ({sys.executable}): {exc.strerror}"
        ) from None


def keep(config: Config, handover: Handover) -> int:
    """Run supervisord until it exits, holding what the node needs meanwhile;
    then stop the embedded Postgres and give back the home."""
    keeper = SocketKeeper(config.host, config.port, config.run_dir)
    keeper.adopt(handover.listen_fd)
    server, watcher = None, None
    if handover.pg_port is not None:
        from shared.db.embedded import EmbeddedPostgres
        from shared.node.pgwatch import EmbeddedWatch

        server = EmbeddedPostgres(config.pg_data_dir, port=handover.pg_port)
        watcher = EmbeddedWatch(server, handover.pg_port)
        config = config.with_db(handover.pg_host or "127.0.0.1", handover.pg_port)
    try:
        with keeper, watcher or contextlib.nullcontext():
            log.info(
                "starting supervisord",
                extra={
                    "event": "supervisord.starting",
                    "pid": os.getpid(),
                    "port": config.port,
                    "socket": str(config.run_dir / "supervisor.sock"),
                },
            )
            code = run_supervisord(
                config, Path(handover.conf), embedded=server is not None, keeper=keeper
            )
            log.info("supervisord exited", extra={"event": "supervisord.exited", "code": code})
            return code
    finally:
        if server is not None:
            server.stop()
            log.info("embedded postgres stopped", extra={"event": "embedded_pg.stopped"})
        with contextlib.suppress(OSError):
            os.ftruncate(handover.lock_fd, 0)  # no pid: a later start names no holder
        os.close(handover.lock_fd)


def _supervisord_user() -> list[str]:
    """``-u <our uid>``: supervisord then knows it is meant to run as us and
    stays quiet about running as root (it cannot switch to itself without an
    account, so only when one exists)."""
    try:
        pwd.getpwuid(os.getuid())
    except KeyError:
        return []
    return ["-u", str(os.getuid())]


# glibc's allocator tuned for small long-lived processes (issue 28, memory):
# at most two arenas instead of one per thread (8 per core), and freed memory
# given back above 128 KiB instead of a threshold that only grows. The node
# holds about 5 MiB less after load (the trim threshold does it; bench/
# README.md), with no throughput change beyond the VM's drift. An operator's
# own value in the environment wins.
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "131072"}


def program_environment(config: Config, embedded: bool) -> dict[str, str]:
    """The programs' environment; with the embedded database, its password
    as a file (never on a command line, never in the environment)."""
    extra = {name: value for name, value in MALLOC_DEFAULTS.items() if name not in os.environ}
    extra[SUPERVISOR_LOGS_VARIABLE] = str(supervisor_log_dir(config))
    if embedded:
        # Empty DB_PASSWORD: one from the env file would clash with the file.
        extra |= {"DB_PASSWORD": "", "DB_PASSWORD_FILE": str(config.home / PASSWORD_FILE)}
    return child_environment(config, extra)


def run_supervisord(
    config: Config,
    conf: Path,
    *,
    embedded: bool = False,
    keeper: SocketKeeper | None = None,
) -> int:
    try:
        account = program_account()
    except AccountError as exc:
        raise LaunchError(str(exc)) from None
    if account is None and own_user_name() is None:
        conf = without_user_lines(conf, config.run_dir)
    try:
        with handed_over(config, program_environment(config, embedded), account) as env:
            if keeper is not None and account is not None:
                keeper.allow(account.pw_uid)
            return _run_supervisord(config, conf, env)
    except HandOverError as exc:
        raise LaunchError(str(exc)) from None


def _run_supervisord(config: Config, conf: Path, env: dict[str, str]) -> int:
    command = [
        sys.executable,
        "-m",
        "shared.node.supervise",
        str(os.getpid()),
        "-n",
        "-c",
        str(conf),
        *_supervisord_user(),
    ]
    # The programs' output goes to capture files (supervisorctl tail reads
    # them); their new lines and supervisord's own stdout are printed on ours.
    # Taken before supervisord starts: lines of earlier runs are not repeated.
    captures = FollowFolder(supervisor_log_dir(config))
    # umask 027: supervisord's logs and every file the programs create are at
    # most 0640 (dumps are 0600 on their own).
    process = subprocess.Popen(
        command,
        env=env,
        cwd=str(conf.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        umask=0o027,
    )
    assert process.stdout is not None
    pump = Relay(process.stdout, sys.stdout.buffer, before_end=captures.stop)
    captures.start(pump.offer)
    pump.start()

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)

    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    pump.join(3)  # the programs' last lines, unless nobody reads our stdout
    return code


def main(argv: list[str] | None = None) -> None:
    from shared.errors import KsnodeError
    from shared.exitcodes import ExitCode, exit_code_for
    from shared.infra.logging import configure_logging

    args = sys.argv[1:] if argv is None else argv
    handover = Handover.from_argument(args[0])
    try:
        os.chdir(handover.cwd)  # relative paths in the settings mean what they meant
    except OSError:
        pass  # gone meanwhile: the code's folder, as absolute paths need none
    try:
        config = load_config(env_file=Path(handover.env_file) if handover.env_file else None)
        configure_logging("ksnode", config.effective_log_dir, config.log_level)
        code = keep(config, handover)
    except KsnodeError as exc:  # as `ksnode up` itself words it (shared/cli)
        print(f"ksnode: cannot start: {exc}", file=sys.stderr)
        code = exit_code_for(exc)
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    raise SystemExit(int(code))


if __name__ == "__main__":
    main()
