"""`ksnode check`: everything `ksnode up` would refuse, found without starting
anything, and every problem at once (``up`` stops at the first).

Findings are ``problem`` (up would fail; the text says the fix), ``warning``
(up starts, but something should change), ``create`` (what up will make on a
fresh home) and ``ok``. Reuses the preflight checks so the two never disagree.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shared.config import (
    EXAMPLE_ADMIN_PASSWORD,
    Config,
    ConfigError,
    environment,
    load_config,
    misspelt_settings,
)
from shared.crypto.sealing import SecretError
from shared.crypto.secretfiles import load_cipher
from shared.infra.privatefiles import env_file_warning, loose_mode, secret_fix
from shared.node.preflight import (
    LOCK_NAME,
    PreflightFailed,
    check_embedded_storage,
    check_encoding,
    check_port,
)


@dataclass(frozen=True)
class Finding:
    kind: str  # "problem", "warning", "create" or "ok"
    text: str


def run_checks(env_file: Path | None = None) -> list[Finding]:
    try:
        config = load_config(env_file=env_file)
    except ConfigError as exc:
        # Nothing else can be judged without a configuration.
        return [Finding("problem", problem) for problem in exc.problems]
    findings = [Finding("ok", "settings: every value is valid")]
    findings += [Finding("warning", text) for text in misspelt_settings(environment(env_file))]
    if config.admin_password == EXAMPLE_ADMIN_PASSWORD:
        findings.append(
            Finding(
                "warning",
                "ADMIN_PASSWORD is the operator guide's example value: the admin routes stay "
                "disabled (503 ADMIN_DISABLED) until you set a long random one",
            )
        )
    findings += _env_file(env_file)
    running = _running_node(config)
    findings += _folders(config)
    findings += _secret(config)
    if running:
        findings.append(
            Finding("ok", f"a node is running in this home ({running}): port not checked")
        )
    else:
        findings += _guard(lambda: check_port(config), f"port {config.port} is free")
    findings += _guard(
        lambda: check_embedded_storage(config, config.allow_ephemeral_db),
        "database storage is outside the container's own layer",
    )
    findings += _database(config)
    return findings


def _guard(check, ok_text: str) -> list[Finding]:
    try:
        check()
    except PreflightFailed as exc:
        return [Finding("problem", str(exc))]
    return [Finding("ok", ok_text)]


def _env_file(env_file: Path | None) -> list[Finding]:
    path = env_file or (
        Path(os.environ["KSNODE_ENV_FILE"]) if os.environ.get("KSNODE_ENV_FILE") else None
    )
    if path is None:
        return []
    warning = env_file_warning(path)
    return [Finding("warning", warning)] if warning else []


def _running_node(config: Config) -> str | None:
    """The pid holding the home's lock, if a node runs there (the lock is
    only tried, never kept)."""
    path = config.run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text().strip() or "unknown"
        return f"pid {holder}"
    finally:
        os.close(fd)
    return None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _folders(config: Config) -> list[Finding]:
    findings = []
    folders = {
        "KSNODE_HOME": config.home,
        "DUMP_DIR": config.effective_dump_dir,
        "LOG_DIR": config.effective_log_dir,
    }
    uid = os.getuid()
    for setting, folder in folders.items():
        if folder.is_dir():
            try:
                with tempfile.NamedTemporaryFile(dir=folder, prefix=".ksnode-check-"):
                    pass
            except OSError as exc:
                findings.append(
                    Finding(
                        "problem",
                        f"{setting} {folder} is not writable by uid {uid} ({exc.strerror}): "
                        f"chown {uid} {folder}, or point {setting} elsewhere",
                    )
                )
                continue
            findings.append(Finding("ok", f"{setting} {folder} is writable"))
            continue
        if folder.exists():
            findings.append(
                Finding("problem", f"{setting} {folder} is not a folder: point {setting} elsewhere")
            )
            continue
        parent = _nearest_existing(folder.parent)
        if os.access(parent, os.W_OK | os.X_OK):
            findings.append(Finding("create", f"{setting} folder {folder}"))
        else:
            findings.append(
                Finding(
                    "problem",
                    f"{setting} {folder} does not exist and uid {uid} cannot create it in "
                    f"{parent}: create it (mkdir -p {folder}; chown {uid} {folder})",
                )
            )
    return findings


def _secret(config: Config) -> list[Finding]:
    path = config.effective_secret_path
    if config.encryption_secret_path is None and not path.exists():
        return [
            Finding(
                "create",
                f"a development encryption secret {path} (set ENCRYPTION_SECRET_PATH "
                "for production)",
            )
        ]
    try:
        load_cipher(path, config.encryption_secret_previous_paths)
    except SecretError as exc:
        return [Finding("problem", f"{exc}: fix ENCRYPTION_SECRET_PATH or the file")]
    findings = [Finding("ok", f"encryption secret {path} is readable")]
    for item in (path, *config.encryption_secret_previous_paths):
        if loose_mode(Path(item)) is not None:
            findings.append(
                Finding("warning", f"secret {item} may be read by others: {secret_fix(item)}")
            )
    return findings


def _database(config: Config) -> list[Finding]:
    if config.embedded_db:
        if (config.pg_data_dir / "PG_VERSION").is_file():
            return [Finding("ok", f"embedded database in {config.pg_data_dir} (up starts it)")]
        return [
            Finding(
                "create",
                f"an embedded PostgreSQL in {config.pg_data_dir} with database "
                f"{config.db_name} and its password file, then the schema and server keypair",
            )
        ]
    # Imported here: psycopg2 is only needed when there is a server to ask.
    from shared.db.pool import DatabaseUnavailable, connect
    from shared.store.server import database_encoding

    try:
        conn = connect(config)
    except DatabaseUnavailable as exc:
        return [
            Finding(
                "problem",
                f"{exc}: check DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME and that "
                "the server is up",
            )
        ]
    try:
        with conn.cursor() as cur:
            encoding = database_encoding(cur)
            cur.execute("SELECT to_regclass('public.ksn_schema_migrations') IS NOT NULL")
            migrated = cur.fetchone()[0]
    finally:
        conn.close()
    where = f"{config.db_user}@{config.db_host}:{config.db_port}/{config.db_name}"
    findings = _guard(lambda: check_encoding(config.db_name, encoding), f"database {where} answers")
    if not migrated:
        findings.append(Finding("create", f"the schema in {where} (up runs the migrations)"))
    return findings
