"""`ksnode up` and `ksnode migrate`: prepare the database, then supervise.

Without DB_HOST the embedded Postgres is started under KSNODE_HOME and
stopped again when supervisord exits (SIGTERM/Ctrl-C reach supervisord,
which stops the three programs first).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from shared.config import ENV_FILE_VARIABLE, Config
from shared.crypto.sealing import Cipher, SecretError
from shared.crypto.secretfiles import create_dev_secret, load_cipher
from shared.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from shared.db.migrations import run_migrations
from shared.db.pool import Database, DatabaseUnavailable, connect
from shared.db.wait import StopWaiting, wait_until_reachable
from shared.infra.privatefiles import DUMP_DIR_MODE, check_at_start, warn_if_others_may_read
from shared.infra.version import PROJECT_ROOT
from shared.keys.keycheck import KeyCheckFailed, verify_keys
from shared.keys.keypair import KeypairError, load_or_create
from shared.node.keeper import Handover, LaunchError, become_keeper
from shared.node.listener import ListenError, bind_listening
from shared.node.pgwatch import EmbeddedWatch
from shared.node.preflight import (
    HomeLock,
    PreflightFailed,
    check_embedded_storage,
    check_encoding,
    check_port,
    check_writable,
)
from shared.node.programuser import HandOverError, keep_root_folders, supervisor_log_dir
from shared.store.server import database_encoding

log = logging.getLogger("ksnode")

DEFAULT_SUPERVISOR_CONF = PROJECT_ROOT / "supervisord.conf"


def prepare_folders(config: Config) -> None:
    for folder in (
        config.home,
        config.run_dir,
        config.effective_dump_dir,
        config.effective_log_dir,
    ):
        # The dump folder is born private: tightening (and warning about) a
        # folder the node itself just made would only be noise.
        mode = DUMP_DIR_MODE if folder == config.effective_dump_dir else 0o777
        try:
            folder.mkdir(mode=mode, parents=True, exist_ok=True)
        except OSError as exc:
            raise LaunchError(f"cannot create folder {folder}: {exc.strerror}") from None
    captures = supervisor_log_dir(config)
    try:
        # As root: the home, the run folder and supervisord's log folder are
        # root's before anything is opened there (programuser.py).
        keep_root_folders(config)
        captures.mkdir(mode=0o777, exist_ok=True)
    except HandOverError as exc:
        raise LaunchError(str(exc)) from None
    except OSError as exc:
        raise LaunchError(f"cannot create folder {captures}: {exc.strerror}") from None
    check_at_start(config.effective_dump_dir, config.effective_log_dir, captures)


@contextlib.contextmanager
def database(
    config: Config, *, keep_running: bool = False, watch: bool = False
) -> Iterator[Config]:
    """Yield a Config that points at a reachable database.

    With DB_HOST set that is the configured server; otherwise the embedded
    one is started (or reused) and, unless ``keep_running``, stopped after.
    ``watch`` (`ksnode up`): the embedded server is started again should it
    die meanwhile (shared/node/pgwatch.py), and stopped after even if it was
    already running (left by a `ksnode up` that was killed).
    """
    if not config.embedded_db:
        yield config
        return
    server = EmbeddedPostgres(config.pg_data_dir)
    try:
        running = server.start()
        server.create_database(config.db_name)
    except EmbeddedPostgresError as exc:
        raise LaunchError(str(exc)) from None
    if running.auth_switched:
        # The one line an operator upgrading from a trust-era home sees.
        log.warning(
            "embedded postgres switched from trust to password authentication "
            "(scram-sha-256, password in pg_password); its data is kept",
            extra={
                "event": "embedded_pg.auth_switched",
                "password_file": str(server.password_file),
            },
        )
    log.info(
        "embedded postgres started" if running.started_here else "embedded postgres reused",
        extra={
            "event": "embedded_pg.started" if running.started_here else "embedded_pg.reused",
            "port": running.port,
            "data_dir": str(config.pg_data_dir),
        },
    )
    # `ksnode up` (watch) holds the home's lock: the home's server is its own
    # even when a killed earlier `ksnode up` left it running.
    owned = running.started_here or watch
    watcher = EmbeddedWatch(server, running.port) if watch else None
    try:
        with watcher or contextlib.nullcontext():
            yield config.with_db(running.host, running.port, running.password)
    finally:
        if owned and not keep_running:
            server.stop()
            log.info("embedded postgres stopped", extra={"event": "embedded_pg.stopped"})


def ensure_secret(config: Config) -> Cipher:
    if config.encryption_secret_path is None:
        path = config.effective_secret_path
        if create_dev_secret(path):
            log.warning(
                "created a development encryption secret; set ENCRYPTION_SECRET_PATH "
                "for production and keep a copy of the secret safe",
                extra={"event": "secret.created", "path": str(path)},
            )
    try:
        cipher = load_cipher(config.effective_secret_path, config.encryption_secret_previous_paths)
    except SecretError as exc:
        raise LaunchError(str(exc)) from None
    warn_if_others_may_read(
        [config.effective_secret_path, *config.encryption_secret_previous_paths]
    )
    return cipher


def migrate(config: Config) -> list[str]:
    try:
        return run_migrations(config)
    except DatabaseUnavailable as exc:
        raise LaunchError(str(exc)) from None


def prepare_node(config: Config, cipher: Cipher | None = None) -> None:
    """Migrations and the server keypair: everything the programs expect.
    ``cipher``: the secrets already loaded by preflight (each load runs PBKDF2)."""
    cipher = cipher or ensure_secret(config)
    applied = migrate(config)
    log.info("database schema ready", extra={"event": "migrate.done", "applied": applied})
    db = Database(config, maxconn=2)
    try:
        verify_keys(db, cipher)  # before anything is served
        pair, created = load_or_create(db, cipher)
    except (KeypairError, KeyCheckFailed, DatabaseUnavailable) as exc:
        raise LaunchError(str(exc)) from None
    finally:
        db.close()
    log.info(
        "server keypair ready",
        extra={
            "event": "keypair.ready",
            "version": pair.version,
            "new": created,
            "public_key": pair.public_key_hex,
        },
    )


def preflight(config: Config) -> tuple[HomeLock, Cipher]:
    """Everything that can be checked before starting: fails with one line.
    The home lock and the loaded secrets."""
    try:
        lock = HomeLock(config.run_dir).acquire()
    except (PreflightFailed, OSError) as exc:
        raise LaunchError(str(exc)) from None
    try:
        check_port(config)
        check_writable(
            {
                "KSNODE_HOME": config.home,
                "DUMP_DIR": config.effective_dump_dir,
                "LOG_DIR": config.effective_log_dir,
            }
        )
        check_embedded_storage(config, config.allow_ephemeral_db)
        cipher = ensure_secret(config)
    except PreflightFailed as exc:
        lock.release()
        raise LaunchError(str(exc)) from None
    except LaunchError:
        lock.release()
        raise
    return lock, cipher


def check_database(config: Config) -> None:
    """The database's encoding must hold what we store (0001 has only ASCII,
    but shares' user ids and emails need not)."""
    try:
        conn = connect(config)
    except DatabaseUnavailable as exc:
        raise LaunchError(str(exc)) from None
    try:
        with conn.cursor() as cur:
            encoding = database_encoding(cur)
        conn.rollback()
    finally:
        conn.close()
    try:
        check_encoding(config.db_name, encoding)
    except PreflightFailed as exc:
        raise LaunchError(str(exc)) from None


def up(config: Config, conf: Path = DEFAULT_SUPERVISOR_CONF) -> int:
    """Prepare the node, then become its keeper (keeper.py): returns only
    when start-up fails (LaunchError) or is stopped while it waits."""
    prepare_folders(config)
    if not conf.is_file():
        raise LaunchError(f"supervisord configuration not found: {conf}")
    lock, cipher = preflight(config)
    try:
        if not config.embedded_db:
            try:
                wait_until_reachable(config)  # before the port is bound (dbwait.py)
            except DatabaseUnavailable as exc:
                raise LaunchError(str(exc)) from None
            except StopWaiting:
                log.info("stopped while waiting for the database", extra={"event": "up.stopped"})
                return 0
        # The API's listening socket lives as long as this process, so restarts
        # of the api program never refuse a connection (shared/node/listener.py).
        try:
            listening = bind_listening(config.host, config.port)
        except ListenError as exc:
            raise LaunchError(str(exc)) from None
        try:
            with database(config, watch=True) as ready:
                check_database(ready)
                prepare_node(ready, cipher)
                assert lock.fd is not None
                handover = Handover(
                    lock_fd=lock.fd,
                    listen_fd=listening.fileno(),
                    conf=str(conf),
                    env_file=os.environ.get(ENV_FILE_VARIABLE),
                    cwd=os.getcwd(),
                    pg_host=ready.db_host if config.embedded_db else None,
                    pg_port=ready.db_port if config.embedded_db else None,
                )
                become_keeper(handover)  # an exec: only its failure comes back
        finally:
            listening.close()
    finally:
        lock.release()
    return 1  # unreachable: become_keeper raised
