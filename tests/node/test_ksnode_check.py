"""`ksnode check`: every problem at once with its fix, exit 1; a fresh
embedded home says what `ksnode up` will create and exits 0; nothing is
started. Real processes, a real Postgres for the external-database case."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from shared.db.embedded import free_port
from tests.conftest import create_database
from tests.support.node_process import database_env, run_ksnode


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DB_", "PORT", "SERVER_PORT", "KSNODE_", "ENCRYPTION_", "DUMP_", "LOG_")
        )
    }
    env.update({"KSNODE_HOME": str(home), "HOST": "127.0.0.1", "PORT": str(free_port())})
    env.update(extra)
    return env


def lines(result, label: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip().startswith(label + ":")]


def test_a_fresh_embedded_home_lists_what_up_will_create(tmp_path):
    home = tmp_path / "var"
    result = run_ksnode(clean_env(home), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    created = "\n".join(lines(result, "will create"))
    assert "embedded PostgreSQL" in created and "development encryption secret" in created
    assert "DUMP_DIR" in created and "LOG_DIR" in created
    assert not lines(result, "PROBLEM")
    assert not home.exists()  # nothing made, nothing started


def test_every_problem_at_once_with_its_fix(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = clean_env(
            tmp_path / "var",
            PORT=str(taken.getsockname()[1]),
            DB_HOST="127.0.0.1",
            DB_PORT=str(free_port()),  # nothing listens there
            ENCRYPTION_SECRET_PATH=str(tmp_path / "missing-secret"),
            DUMP_DIR=str(blocker),
        )
        result = run_ksnode(env, "check")
    assert result.returncode == 1
    problems = "\n".join(lines(result, "PROBLEM"))
    assert "missing-secret" in problems and "ENCRYPTION_SECRET_PATH" in problems
    assert "not available" in problems and "PORT" in problems
    assert "cannot connect to Postgres" in problems and "DB_HOST" in problems
    assert f"DUMP_DIR {blocker} is not a folder" in problems
    assert len(lines(result, "PROBLEM")) == 4
    assert "4 problem(s)" in result.stdout


def test_invalid_settings_are_all_named(tmp_path):
    env = clean_env(tmp_path / "var", PORT="http", LOG_LEVEL="loud", SERVER_PORT="1")
    result = run_ksnode(env, "check")
    assert result.returncode == 1
    problems = "\n".join(lines(result, "PROBLEM"))
    assert "PORT: expected a whole number" in problems and "LOG_LEVEL" in problems


def test_an_external_database_is_reached_and_its_schema_reported(pg_server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("check-secret")
    secret.chmod(0o644)
    env_file = tmp_path / "node.env"
    env_file.write_text(f"ENCRYPTION_SECRET_PATH={secret}\n")
    env_file.chmod(0o644)
    env = clean_env(tmp_path / "var", **database_env(pg_server, create_database(pg_server)))
    result = run_ksnode(env, "--env-file", str(env_file), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any("answers" in line for line in lines(result, "ok"))
    assert any("the schema in" in line for line in lines(result, "will create"))
    warnings = "\n".join(lines(result, "warning"))
    assert f"chmod 600 {env_file}" in warnings and f"chmod 0400 {secret}" in warnings
    assert "check-secret" not in result.stdout + result.stderr
    assert env["DB_PASSWORD"] not in result.stdout + result.stderr


def test_up_warns_about_an_env_file_others_may_read(tmp_path):
    env_file = tmp_path / "node.env"
    env_file.write_text("LOG_LEVEL=info\n")
    env_file.chmod(0o644)
    with socket.socket() as taken:  # up stops at its preflight: nothing starts
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = clean_env(tmp_path / "var", PORT=str(taken.getsockname()[1]))
        result = run_ksnode(env, "--env-file", str(env_file), "up")
    assert result.returncode == 1
    assert '"event": "env_file.not_private"' in result.stdout
    assert f"chmod 600 {env_file}" in result.stdout


def test_the_guides_env_file_uses_the_operators_secret(tmp_path):
    # The operator guide's .env (docker/env.example) given to ksnode outside
    # Docker: the secret the operator prepared is the one checked and used.
    secret = tmp_path / "encryption_secret.txt"
    secret.write_text("104c88b9a580415161f640e7efb1b3c73d2aad859cd02dd4a1ab35da0afe12bb")
    secret.chmod(0o600)
    env_file = tmp_path / ".env"
    env_file.write_text(f'ENCRYPTION_SECRET_FILE_PATH="{secret}"\nADMIN_PASSWORD=a-long-password\n')
    env_file.chmod(0o600)
    result = run_ksnode(clean_env(tmp_path / "var"), "--env-file", str(env_file), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(str(secret) in line for line in lines(result, "ok"))
    assert "development encryption secret" not in result.stdout


def test_a_mistyped_setting_name_is_named_with_the_one_meant(tmp_path):
    # A name that is no setting is ignored (the default is used): the near
    # misses of the operator guide's names are named, the rest of a normal
    # environment is not.
    env = clean_env(tmp_path / "var", DUMP_DRI=str(tmp_path / "dumps"), PGHOST="db.example")
    env_file = tmp_path / ".env"
    env_file.write_text("ADMIN_PASSWROD=a-long-password\nPG_DATA_DIR=/opt/pg_data\n")
    env_file.chmod(0o600)
    result = run_ksnode(env, "--env-file", str(env_file), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    warned = "\n".join(lines(result, "warning"))
    assert "DUMP_DRI" in warned and "did you mean DUMP_DIR?" in warned
    assert "ADMIN_PASSWROD" in warned and "did you mean ADMIN_PASSWORD?" in warned
    assert "PGHOST" not in warned and "PG_DATA_DIR" not in warned and "PATH" not in warned


def test_the_guides_example_admin_password_is_named(tmp_path):
    env = clean_env(tmp_path / "var", ADMIN_PASSWORD="admin_password")
    result = run_ksnode(env, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any("example value" in line for line in lines(result, "warning"))
    assert "admin_password" not in result.stdout  # the value itself is not printed
