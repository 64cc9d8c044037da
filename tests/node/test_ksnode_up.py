"""End to end: `ksnode up` in a temporary folder runs the whole node under a
real supervisord, restarts a killed program, and stops without leftovers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shared.db.embedded import free_port
from tests.support.fakes.oko_api import FakeOkoApi
from tests.support.node_process import KSNODE, alive
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]


def ctl(home: Path, *args: str) -> str:
    result = subprocess.run(
        [*KSNODE, "ctl", *args],
        env={**os.environ, "KSNODE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    return result.stdout


def program_pids(status_text: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+RUNNING\s+pid (\d+)", status_text, re.M)
    }


def plant_shared_package(folder: Path) -> None:
    """A ``shared`` package in the folder `ksnode up` runs from, as a local
    account could leave in a folder others may write to: a module of it that
    runs leaves PLANTED_MARK behind."""
    for name in ("shared/__init__.py", "shared/node/__init__.py"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("")
    (folder / "shared/node/keeper.py").write_text(
        f"open({str(folder / PLANTED_MARK)!r}, 'w').write('ran')\n"
    )


PLANTED_MARK = "planted-code-ran"
# The installed console script, as operators run it, for the nodes started
# in the folder with the planted package: `python -c` (KSNODE) would itself
# import the planted package from the current folder.
CONSOLE_KSNODE = shutil.which("ksnode") or str(Path(sys.executable).parent / "ksnode")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    home = tmp_path_factory.mktemp("node") / "var"
    port = free_port()
    oko = FakeOkoApi(password="pw").__enter__()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DB_", "PORT"))}
    env.update(
        {
            "KSNODE_HOME": str(home),
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "OKO_API_BASE_URL": oko.url,
            "KS_NODE_REPORT_PASSWORD": "pw",
            "REPORT_INTERVAL_SECONDS": "1",
            "HEARTBEAT_INTERVAL_SECONDS": "1",
        }
    )
    plant_shared_package(home.parent)
    started = time.monotonic()
    process = subprocess.Popen(
        [CONSOLE_KSNODE, "up"],
        env=env,
        cwd=home.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def status():
        try:
            return requests.get(url + "/status", timeout=1).json()
        except requests.RequestException:
            return None

    body = wait_until(status, 60)
    startup_seconds = time.monotonic() - started
    info = {
        "home": home,
        "url": url,
        "process": process,
        "oko": oko,
        "status": body,
        "startup_seconds": startup_seconds,
    }
    yield info
    if process.poll() is None:
        process.kill()
    oko.__exit__()


def test_status_answers_within_ten_seconds(node):
    assert node["status"] is not None, node["process"].stdout.read1().decode(errors="replace")
    print(f"startup to /status: {node['startup_seconds']:.2f} s")
    assert node["status"]["is_db_connected"] is True
    assert node["startup_seconds"] < 10


def test_three_programs_running(node):
    pids = wait_until(
        lambda: (lambda p: p if len(p) == 3 else None)(program_pids(ctl(node["home"], "status"))),
        20,
    )
    assert pids is not None and set(pids) == {"api", "backup_worker", "reporter"}


def test_reporter_reports_to_the_oko_api(node):
    assert node["oko"].received.wait(20)
    report = node["oko"].reports[0]
    assert report["public_key"] == node["status"]["ks_node_public_key"]


def test_killed_reporter_is_restarted_by_supervisord(node):
    # RUNNING only after startsecs: run alone, this test may come first.
    before = wait_until(lambda: program_pids(ctl(node["home"], "status")).get("reporter"), 30)
    assert before
    os.kill(before, signal.SIGKILL)
    restarted = wait_until(
        lambda: (lambda p: p.get("reporter") if p.get("reporter", before) != before else None)(
            program_pids(ctl(node["home"], "status"))
        ),
        30,
    )
    assert restarted and restarted != before


def test_logs_are_json_lines_of_every_program(node):
    import json

    log_dir = node["home"] / "logs"
    files = list(log_dir.glob("ksnode-*.log"))
    assert len(files) == 1
    programs = {json.loads(line)["program"] for line in files[0].read_text().splitlines() if line}
    assert {"ksnode", "api", "reporter", "backup_worker"} <= programs


def test_the_keeper_is_lean_and_keeps_its_pid(node):
    """Once prepared, `ksnode up` replaces its image with the keeper: same
    pid (the home's lock names it, supervisord watches it), no database
    driver, no crypto, and no secret on its command line."""
    pid = node["process"].pid
    home = node["home"]
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"shared.node.keeper" in command
    mapped = Path(f"/proc/{pid}/maps").read_text()
    assert "_psycopg" not in mapped  # psycopg2's C module
    assert "cryptography" not in mapped  # its Rust/OpenSSL bindings
    assert (home / "run" / "ksnode.lock").read_text().strip() == str(pid)
    password = (home / "pg_password").read_text().strip()
    assert password and password.encode() not in b" ".join(command)
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert password.encode() not in environ


def test_the_backup_worker_loads_no_aes_until_it_opens_a_value(node):
    """Its start checks the stored key ids (PBKDF2, hashlib) and opens no
    value on a database of ksn3 rows: cryptography's ~3 MiB stays out of it
    (shared/crypto/aesgcm.py), while the API, which opens shares, has it."""
    pids = wait_until(
        lambda: (p := program_pids(ctl(node["home"], "status"))) and len(p) == 3 and p, 20
    )
    assert pids
    assert "cryptography" not in Path(f"/proc/{pids['backup_worker']}/maps").read_text()
    assert "cryptography" in Path(f"/proc/{pids['api']}/maps").read_text()


def test_the_keeper_is_not_imported_from_the_current_folder(node):
    """`ksnode up` ran in a folder holding a planted shared/node/keeper.py;
    the keeper's exec uses python -P, so the installed one ran."""
    assert node["status"] is not None
    assert not (node["home"].parent / PLANTED_MARK).exists()


def test_programs_get_the_lean_allocator_settings(node):
    """glibc's arenas and trim threshold for small processes (keeper.py
    MALLOC_DEFAULTS) reach every program; they are read at process start."""
    pids = wait_until(
        lambda: (p := program_pids(ctl(node["home"], "status"))) and len(p) == 3 and p, 20
    )
    assert pids
    for program, pid in pids.items():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ, program
        assert b"MALLOC_TRIM_THRESHOLD_=131072" in environ, program


def test_sigterm_stops_everything(node):
    home = node["home"]
    pids = list(program_pids(ctl(home, "status")).values())
    pids.append(int((home / "run" / "supervisord.pid").read_text()))
    pids.append(int((home / "pg_data" / "postmaster.pid").read_text().splitlines()[0]))
    process = node["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(90) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 20)
    assert not (home / "pg_data" / "postmaster.pid").exists()


def test_second_up_reuses_the_data(node):
    home = node["home"]
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DB_", "PORT"))}
    env.update({"KSNODE_HOME": str(home), "PORT": str(port), "HOST": "127.0.0.1"})
    process = subprocess.Popen(
        [CONSOLE_KSNODE, "up"],
        env=env,
        cwd=home.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def status():
            try:
                return requests.get(f"http://127.0.0.1:{port}/status", timeout=1).json()
            except requests.RequestException:
                return None

        body = wait_until(status, 60)
        assert body is not None
        assert body["ks_node_public_key"] == node["status"]["ks_node_public_key"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(90) == 0
