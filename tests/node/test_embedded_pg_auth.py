"""Issue 22, points 1 and 7, with real processes: the embedded Postgres of a
node started as root admits only the node (another local account is refused
over TCP and over the socket, on a fresh home and on a home made by the
previous version, which keeps its shares), and the three programs run as the
unprivileged user ``ksnode``."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.db.auth import allows_trust
from shared.db.embedded import EmbeddedPostgres, bundled_bin_dir
from shared.node.accounts import PROGRAM_USER
from tests.support.fakes.telegram import BOT_TOKEN
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register
from tests.support.node_process import NodeProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runuser, system users)")

# The code of the previous version: the main checkout, if there is one.
# The last release whose embedded Postgres trusted every local account.
TRUST_ERA_COMMIT = "a937906"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def previous_version(tmp_path_factory) -> Path:
    """The trust-era code, taken from this repository's own history."""
    target = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", TRUST_ERA_COMMIT],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def embedded_node(home: Path, root: Path | None = None) -> NodeProcess:
    node = NodeProcess.build(home, {}, TELEGRAM_BOT_TOKEN=BOT_TOKEN, ALLOW_EPHEMERAL_DB="true")
    if root is not None:
        node.root = root
    return node


def as_nobody_psql(*where: str) -> subprocess.CompletedProcess:
    """psql run by the unprivileged account ``nobody``, no password given."""
    psql = bundled_bin_dir() / "psql"
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(
        [
            shutil.which("runuser") or "/usr/sbin/runuser",
            "-u",
            "nobody",
            "--",
            str(psql),
            *where,
            "-U",
            "postgres",
            "-w",
            "-c",
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            "postgres",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


def assert_refused_to_others(home: Path) -> None:
    server = EmbeddedPostgres(home / "pg_data")
    port = server.running_port()
    assert port is not None
    hba = (home / "pg_data" / "pg_hba.conf").read_text()
    assert not allows_trust(hba), hba
    tcp = as_nobody_psql("-h", "127.0.0.1", "-p", str(port))
    assert tcp.returncode != 0 and "password" in tcp.stderr, tcp
    sock = as_nobody_psql("-h", str(server.socket_dir), "-p", str(port))
    assert sock.returncode != 0, sock
    assert "rolsuper" not in sock.stdout and " t" not in sock.stdout
    # The node itself still gets in, with the password from its 0600 file.
    info = server.password_file.stat()
    assert info.st_mode & 0o777 == 0o600
    assert info.st_uid == pwd.getpwnam(PROGRAM_USER).pw_uid


def assert_secret_stays_private(node: NodeProcess, pids: dict[str, int]) -> None:
    password = EmbeddedPostgres(node.home / "pg_data").password()
    assert len(password) >= 32
    for pid in [*pids.values()]:
        assert password not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    assert password not in node.log_text()
    assert password not in node.up_output()


def program_uids(pids: dict[str, int]) -> dict[str, int]:
    uids = {}
    for name, pid in pids.items():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                uids[name] = {int(value) for value in line.split()[1:]}.pop()
    return uids


def test_fresh_home_refuses_other_accounts_and_programs_drop_root(tmp_path):
    node = embedded_node(tmp_path / "var").start(90)
    try:
        assert_refused_to_others(node.home)
        pids = node.running_pids()
        assert set(pids) == {"api", "backup_worker", "reporter"}
        ksnode_uid = pwd.getpwnam(PROGRAM_USER).pw_uid
        assert ksnode_uid != 0
        assert program_uids(pids) == dict.fromkeys(pids, ksnode_uid)
        assert_secret_stays_private(node, pids)
        user, key, share = "5550001", secp_key(), share_hex()
        assert v1_register(node.url, user, key, share).status_code == 200
        got = v1_get(node.url, user, key)
        assert got.status_code == 200 and got.json()["data"]["share"] == share
        assert "embedded_pg.auth_switched" not in node.up_output()
        # The CLI (root, on the running node) reads the password file too.
        assert node.ksnode("backups").returncode == 0
    finally:
        assert node.stop() == 0
    assert not (node.home / "run" / "secrets").exists()  # the copies are gone


def test_home_of_previous_version_switched_over_and_keeps_shares(tmp_path, previous_version):
    previous_code = (previous_version / "shared" / "pgserver.py").read_text()
    assert "--auth=trust" in previous_code  # it is the trust-era version
    home = tmp_path / "var"
    old = embedded_node(home, root=previous_version)
    user, key, share = "5550002", secp_key(), share_hex()
    old.start(90)
    try:
        assert v1_register(old.url, user, key, share).status_code == 200
        assert allows_trust((home / "pg_data" / "pg_hba.conf").read_text())
    finally:
        assert old.stop() == 0
    assert not (home / "pg_password").exists()

    new = embedded_node(home)
    new.env["PORT"] = old.env["PORT"]
    new.port, new.url = old.port, old.url
    new.start(90)
    try:
        assert_refused_to_others(home)
        got = v1_get(new.url, user, key)
        assert got.status_code == 200 and got.json()["data"]["share"] == share
        switched = [
            line for line in new.up_output().splitlines() if "embedded_pg.auth_switched" in line
        ]
        assert len(switched) == 1, new.up_output()[-3000:]
        assert_secret_stays_private(new, new.running_pids())
    finally:
        assert new.stop() == 0
    # The next start finds nothing to switch.
    again = embedded_node(home)
    again.start(90)
    try:
        assert new.up_output().count("embedded_pg.auth_switched") == 1
        assert v1_get(again.url, user, key).status_code == 200
    finally:
        assert again.stop() == 0
