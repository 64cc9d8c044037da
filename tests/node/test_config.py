"""Configuration from the environment: defaults, validation, *_FILE, env file."""

import subprocess
import sys

import pytest

from shared.config import ConfigError, load_config, misspelt_settings, setting_names


def test_defaults_need_nothing():
    config = load_config({})
    assert config.port == 4201
    assert config.embedded_db
    assert config.rate_limit_per_minute == 100
    assert config.trust_proxy_hops == 0
    assert config.backup_retention_days == 7


def test_every_bad_variable_is_named_in_one_error():
    with pytest.raises(ConfigError) as info:
        load_config(
            {
                "PORT": "http",
                "DB_SSL": "maybe",
                "LOG_LEVEL": "loud",
                "OKO_API_BASE_URL": "ftp://x",
                "RATE_LIMIT_PER_MINUTE": "-1",
            }
        )
    text = str(info.value)
    for name in ("PORT", "DB_SSL", "LOG_LEVEL", "OKO_API_BASE_URL", "RATE_LIMIT_PER_MINUTE"):
        assert name in text
    assert len(info.value.problems) == 5


def test_external_database_requires_a_secret_path():
    with pytest.raises(ConfigError) as info:
        load_config({"DB_HOST": "db.example"})
    assert "ENCRYPTION_SECRET_PATH" in str(info.value)


def test_the_guides_secret_file_name_is_the_secret_path(tmp_path):
    # The operator guide's .env names the secret ENCRYPTION_SECRET_FILE_PATH;
    # given to ksnode outside Docker it must be the secret used, not ignored
    # in favour of a generated development secret.
    secret = tmp_path / "encryption_secret.txt"
    config = load_config({"ENCRYPTION_SECRET_FILE_PATH": str(secret)})
    assert config.effective_secret_path == secret
    both = {"ENCRYPTION_SECRET_FILE_PATH": str(secret), "ENCRYPTION_SECRET_PATH": str(secret)}
    assert load_config(both).effective_secret_path == secret
    # With DB_HOST it satisfies the requirement of a configured secret.
    external = load_config({"DB_HOST": "db.example", "ENCRYPTION_SECRET_FILE_PATH": str(secret)})
    assert external.encryption_secret_path == secret
    with pytest.raises(ConfigError) as info:
        load_config({**both, "ENCRYPTION_SECRET_PATH": str(tmp_path / "other")})
    (problem,) = info.value.problems
    assert "ENCRYPTION_SECRET_FILE_PATH" in problem and "disagree" in problem


def test_in_the_image_the_guides_secret_file_name_is_the_host_path(tmp_path):
    # docker/Dockerfile mounts the secret at ENCRYPTION_SECRET_PATH; .env's
    # ENCRYPTION_SECRET_FILE_PATH (the host file) reaches the container too.
    config = load_config(
        {
            "KSNODE_IN_CONTAINER": "1",
            "ENCRYPTION_SECRET_PATH": "/run/secrets/encryption_secret",
            "ENCRYPTION_SECRET_FILE_PATH": "/opt/key_share_node/encryption_secret.txt",
        }
    )
    assert str(config.effective_secret_path) == "/run/secrets/encryption_secret"


def test_secret_from_file_variant(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    config = load_config({"ADMIN_PASSWORD_FILE": str(tmp_path / "pw")})
    assert config.admin_password == "from-file"


def test_secret_and_file_variant_together_is_an_error(tmp_path):
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD"):
        load_config({"ADMIN_PASSWORD": "a", "ADMIN_PASSWORD_FILE": str(tmp_path / "pw")})


def test_unreadable_secret_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="KS_NODE_REPORT_PASSWORD_FILE"):
        load_config({"KS_NODE_REPORT_PASSWORD_FILE": str(tmp_path / "missing")})


def test_env_file_never_overrides_the_environment(tmp_path):
    env_file = tmp_path / "node.env"
    env_file.write_text(
        '# comment\nPORT=4300\nexport DB_NAME="from_file"\nLOG_LEVEL=debug # trailing\n'
    )
    config = load_config({"KSNODE_ENV_FILE": str(env_file), "PORT": "4400"})
    assert config.port == 4400
    assert config.db_name == "from_file"
    assert config.log_level == "debug"


def test_secrets_are_not_shown_in_redacted_settings():
    config = load_config({"ADMIN_PASSWORD": "hunter2", "DB_PASSWORD": "pg-pw"})
    shown = str(config.redacted())
    assert "hunter2" not in shown and "pg-pw" not in shown
    assert "hunter2" not in repr(config)


def test_ops_token_from_file_is_never_shown_and_must_not_be_short(tmp_path):
    token = "ops-token-from-a-file-0123"
    (tmp_path / "ops").write_text(token + "\n")  # Prometheus' credentials_file may end in \n
    config = load_config({"OPS_TOKEN_FILE": str(tmp_path / "ops")})
    assert config.ops_token == token
    assert config.redacted()["ops_token"] == "set"
    assert token not in repr(config)
    with pytest.raises(ConfigError, match="OPS_TOKEN: at least 16 characters") as info:
        load_config({"OPS_TOKEN": "short-token"})
    assert "short-token" not in str(info.value)


def test_cli_reports_bad_config_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "migrate"],
        env={"PORT": "x", "DB_PORT": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr and "DB_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_port_is_the_same_setting_as_port():
    assert load_config({"SERVER_PORT": "4301"}).port == 4301
    assert load_config({"SERVER_PORT": "4301", "PORT": "4301"}).port == 4301
    with pytest.raises(ConfigError) as info:
        load_config({"SERVER_PORT": "4301", "PORT": "4201"})
    (problem,) = info.value.problems
    assert "PORT=4201" in problem and "SERVER_PORT=4301" in problem and "\n" not in problem


def test_near_misses_of_setting_names_are_named():
    # Every name the node reads is known (those read through NAME_FILE too).
    assert {"DUMP_DIR", "ENCRYPTION_SECRET_FILE_PATH", "ADMIN_PASSWORD_FILE"} <= setting_names()
    found = misspelt_settings(
        {"LOG_DRI": "x", "SERVER_PROT": "1", "LOG_DIR": "x", "HOME": "/root", "PGPORT": "1"}
    )
    assert found == [
        "LOG_DRI is not a setting and is ignored: did you mean LOG_DIR?",
        "SERVER_PROT is not a setting and is ignored: did you mean SERVER_PORT?",
    ]


def test_text_that_is_not_utf8_is_named_without_a_traceback(tmp_path):
    env_file = tmp_path / "node.env"
    env_file.write_bytes(b"DB_USER=postgres\nDB_PASSWORD=caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config({}, env_file=env_file)
    assert info.value.problems == [f"{env_file}:2: not UTF-8 text (save the env file as UTF-8)"]
    secret = tmp_path / "password.bin"
    secret.write_bytes(b"caf\xe9")
    with pytest.raises(ConfigError) as info:
        load_config({"ADMIN_PASSWORD_FILE": str(secret)})
    assert info.value.problems == [f"ADMIN_PASSWORD_FILE: {secret} is not UTF-8 text"]
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--env-file", str(env_file), "migrate"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not UTF-8 text" in result.stderr and "Traceback" not in result.stderr
