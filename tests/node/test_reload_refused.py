"""A broken upgrade on disk does not take a serving node down on reload.

The node runs from a copy of the code (`ksnode up` from that folder); the
tests then break the copy the way a half-copied release would, and reload:
the reload is refused promptly with the reason, every program keeps running
the old code and no request fails. Real supervisord, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from shared.node.reload import children
from shared.node.reloadstate import refusal_path
from tests.conftest import create_database
from tests.support.node_process import ROOT, NodeProcess, database_env
from tests.support.processes import wait_until
from tests.support.steady_load import SteadyLoad

BROKEN_IMPORT = '\nraise ImportError("half-copied release: services/api/app.py")\n'


@pytest.fixture(scope="module")
def node(pg_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("reload-refused")
    code = base / "code"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("shared", "services"):
        shutil.copytree(ROOT / folder, code / folder, ignore=ignore)
    shutil.copy(ROOT / "supervisord.conf", code / "supervisord.conf")
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(base / "var", db_env)
    node.root = code
    node.start()
    yield node
    assert node.stop() == 0


class BrokenFile:
    """Replace a file of the node's code for the duration of a with block."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text
        self.original = path.read_text()

    def __enter__(self) -> BrokenFile:
        self.path.write_text(self.text)
        return self

    def __exit__(self, *_exc) -> None:
        self.path.write_text(self.original)


def reload_with(node: NodeProcess, path: Path, text: str, what: str):
    """`ksnode reload` while ``path`` holds ``text``; (result, seconds)."""
    with BrokenFile(path, text):
        started = time.monotonic()
        result = node.ksnode("reload", timeout=120)
        took = time.monotonic() - started
    print(f"{what} answered in {took:.1f} s")
    return result, took


def snapshot(node: NodeProcess) -> tuple[dict[str, int], set[int]]:
    pids = wait_until(lambda: (p := node.pids()) and len(p) == 3 and p, 30)
    assert pids, node.ksnode("ctl", "status").stdout
    return pids, set(children(pids["api"]))


def test_reload_with_code_that_cannot_import_is_refused_and_touches_nothing(node):
    pids, workers = snapshot(node)
    app = node.root / "services" / "api" / "app.py"
    result, took = reload_with(node, app, app.read_text() + BROKEN_IMPORT, "refused reload")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the code on disk does not start, nothing was reloaded" in result.stderr
    assert "api: ImportError: half-copied release" in result.stderr
    assert "Traceback" not in result.stderr
    assert took < 30
    # Nothing was restarted: not even the canaries.
    assert snapshot(node) == (pids, workers)
    assert node.status()


def test_sighup_with_broken_code_keeps_the_old_workers_serving(node):
    pids, workers = snapshot(node)
    app = node.root / "services" / "api" / "app.py"
    refusal = refusal_path(node.home / "run")
    with SteadyLoad(node.url, clients=4, timeout=30) as load:
        time.sleep(0.5)
        with BrokenFile(app, app.read_text() + BROKEN_IMPORT):
            signalled = time.time()
            os.kill(pids["api"], signal.SIGHUP)  # as `supervisorctl signal HUP api`
            assert wait_until(refusal.exists, 30), "no refusal recorded"
        time.sleep(1.0)
        result = load.stop()
    record = json.loads(refusal.read_text())
    assert record["pid"] == pids["api"] and record["at"] >= signalled
    assert "half-copied release" in record["reason"]
    assert result.failed == 0, result.reasons
    assert result.ok > 20
    assert snapshot(node) == (pids, workers)
    assert wait_until(lambda: "api.reload_refused" in node.log_text(), 10)


def test_reload_after_the_code_is_fixed_goes_through(node):
    pids, workers = snapshot(node)
    result = node.ksnode("reload", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "code on disk starts: backup_worker, reporter, api" in result.stdout
    assert "api: reloaded in place" in result.stdout
    after, new_workers = snapshot(node)
    assert after["api"] == pids["api"]
    assert new_workers and not new_workers & workers


def test_reload_whose_new_api_dies_after_the_check_fails_fast(node):
    """Code that imports but fails when the program starts passes the check;
    the re-executed api exits, and the reload says so instead of waiting
    out its 90 s handover deadline."""
    server = node.root / "services" / "api" / "server" / "program.py"
    text = server.read_text()
    marker = "    handover = parse_args(sys.argv[1:] if argv is None else argv)\n"
    assert marker in text
    broken = text.replace(marker, marker + '    raise SystemExit("api: cannot start")\n')
    result, took = reload_with(node, server, broken, "failed handover")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "api: the new code did not start" in result.stderr
    assert took < 45
    # Fixed on disk: supervisord's retries bring the api back.
    assert wait_until(node.status, 60), "api did not come back after the fix"
