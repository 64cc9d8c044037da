"""`ksnode reload`: load new code into a running node without failing a request.

Order, and why:
0. The code on disk must start (shared/node/codecheck.py: every program's
   modules import, the settings and secret files load), checked in a fresh
   interpreter before anything is touched: a broken upgrade is refused
   with its reason while every program keeps running the old code.
1. Migrations (and the server keypair check), run by this command, i.e. by
   the new code. Migrations only add, so the programs still running the
   old code keep working on the new schema.
2. ``backup_worker``, then ``reporter``: restarting them costs no request,
   so they are the canary. supervisord waits ``startsecs`` before calling a
   program started; if the new code cannot start, the reload stops there
   and the api keeps serving the old code.
3. ``api`` last, in place (services/api/server/handover.py): its pool parent
   re-executes itself with the new code, starts new workers on the same
   listening socket and only then stops the old ones, which finish what
   they are serving. (With a single worker it is restarted; its socket is
   held by ``ksnode up``, so connections wait in the backlog meanwhile.)
   Then the node's own address must answer ``/status``.

The programs keep supervisord's environment: settings changed in the
environment or ``.env`` since ``ksnode up`` need a node restart, and
changes to supervisord.conf need ``ksnode ctl update``.
"""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import requests
from supervisor.xmlrpc import SupervisorTransport

from shared.config import Config
from shared.errors import NodeFailure
from shared.node.codecheck import check_code
from shared.node.reloadstate import refusal_since

ORDER = ("backup_worker", "reporter", "api")
STATUS_DEADLINE_SECONDS = 60.0
HANDOVER_DEADLINE_SECONDS = 90.0  # new image start + READY_SECONDS + the old workers' drain


class ReloadError(NodeFailure):
    """The reload stopped; the message says where and why."""


class ProcessInfo(TypedDict):
    """The two fields of supervisord's ``getProcessInfo`` answer a reload reads."""

    statename: str
    pid: int


def _info(answer: object, name: str) -> ProcessInfo:
    """An XML-RPC answer is untyped: check the fields used instead of trusting
    them, so a surprise is a ReloadError naming it, not a KeyError."""
    if isinstance(answer, dict):
        statename, pid = answer.get("statename"), answer.get("pid")
        if isinstance(statename, str) and isinstance(pid, int):
            return {"statename": statename, "pid": pid}
    raise ReloadError(f"{name}: unexpected answer from supervisord: {answer!r}")


def supervisor(run_dir: Path) -> xmlrpc.client.ServerProxy:
    transport = SupervisorTransport(None, None, serverurl=f"unix://{run_dir / 'supervisor.sock'}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def check_running(rpc: xmlrpc.client.ServerProxy, run_dir: Path) -> None:
    try:
        state = rpc.supervisor.getState()
    except (OSError, xmlrpc.client.Error) as exc:
        raise ReloadError(
            f"the node is not running here (no supervisord at {run_dir / 'supervisor.sock'}: "
            f"{exc}); start it with `ksnode up`"
        ) from None
    # str(): an untyped XML-RPC value, shown as supervisord sent it
    statename = str(state.get("statename") if isinstance(state, dict) else state)
    if statename != "RUNNING":
        raise ReloadError(f"supervisord is {statename}, not RUNNING")


def restart_program(rpc: xmlrpc.client.ServerProxy, name: str) -> int:
    """Stop (gracefully: the program finishes its current work) and start
    ``name``; return the new pid. Raises ReloadError if it does not stay up."""
    try:
        info = _info(rpc.supervisor.getProcessInfo(name), name)
        if info["statename"] in ("RUNNING", "STARTING"):
            rpc.supervisor.stopProcess(name, True)
        rpc.supervisor.startProcess(name, True)  # returns once past startsecs
        info = _info(rpc.supervisor.getProcessInfo(name), name)
    except xmlrpc.client.Fault as exc:
        raise ReloadError(f"{name} did not restart: {exc.faultString}") from None
    except OSError as exc:
        raise ReloadError(f"{name}: lost supervisord: {exc}") from None
    if info["statename"] != "RUNNING":
        raise ReloadError(f"{name} is {info['statename']} after restart")
    return info["pid"]


def children(pid: int) -> list[int]:
    """Child pids of ``pid`` (Linux /proc); empty when unknown."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _process_info(rpc: xmlrpc.client.ServerProxy, name: str = "api") -> ProcessInfo:
    try:
        return _info(rpc.supervisor.getProcessInfo(name), name)
    except (OSError, xmlrpc.client.Error) as exc:
        raise ReloadError(f"{name}: {exc}") from None


def reload_api(rpc: xmlrpc.client.ServerProxy, run_dir: Path) -> tuple[int, str]:
    """Hand the api program over to new code in place (SIGHUP, see
    services/api/server/handover.py) and wait until its previous workers are gone;
    restart it instead when it has no worker pool. Returns (pid, how)."""
    info = _process_info(rpc)
    pid = info["pid"]
    previous = set(children(pid)) if info["statename"] == "RUNNING" else set()
    if not previous:
        return restart_program(rpc, "api"), "restarted"
    signalled = time.time()
    try:
        rpc.supervisor.signalProcess("api", "HUP")
    except (OSError, xmlrpc.client.Error) as exc:
        raise ReloadError(f"api: cannot signal it: {exc}") from None
    deadline = time.monotonic() + HANDOVER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        current = set(children(pid))
        if current and not current & previous:
            break
        refused = refusal_since(run_dir, pid, signalled)
        if refused:
            raise ReloadError(f"api: reload refused, still serving the old code: {refused}")
        info = _process_info(rpc)
        if info["statename"] != "RUNNING" or info["pid"] != pid:
            # The re-executed image died: no point waiting for a handover.
            raise ReloadError(
                f"api: the new code did not start (the program is {info['statename']}); see its log"
            )
        time.sleep(0.2)
    else:
        raise ReloadError("api: its previous workers did not hand over in time")
    info = _process_info(rpc)
    if info["statename"] != "RUNNING" or info["pid"] != pid:
        raise ReloadError(f"api is {info['statename']} after the reload")
    return pid, "reloaded in place"


def wait_for_status(
    config: Config, deadline_seconds: float = STATUS_DEADLINE_SECONDS
) -> dict[str, Any]:
    host = config.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{config.port}/status"
    deadline = time.monotonic() + deadline_seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=5)
            body = response.json() if response.status_code == 200 else None
            # Checked: the caller reads fields of it.
            if isinstance(body, dict):
                return body
            last = f"HTTP {response.status_code}"
        except (requests.RequestException, ValueError) as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise ReloadError(f"api restarted but {url} did not answer 200 in time ({last})")


def reload_node(
    config: Config,
    prepare: Callable[[Config], None],
    say: Callable[[str], None] = print,
) -> dict:
    """Run the steps above; ``prepare`` runs migrations and the keypair check
    against the node's database. Returns the new /status body."""
    rpc = supervisor(config.run_dir)
    check_running(rpc, config.run_dir)
    problem = check_code(list(ORDER))
    if problem:
        raise ReloadError(f"the code on disk does not start, nothing was reloaded: {problem}")
    say("code on disk starts: " + ", ".join(ORDER))
    prepare(config)
    say("schema and keypair ready")
    for name in ORDER:
        if name == "api":
            pid, how = reload_api(rpc, config.run_dir)
        else:
            pid, how = restart_program(rpc, name), "restarted"
        say(f"{name}: {how}, pid {pid}")
    status = wait_for_status(config)
    say(f"api answers: version {status.get('version')}, git {status.get('git_hash')}")
    return status
