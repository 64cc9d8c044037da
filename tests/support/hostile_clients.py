"""Helpers for the hostile-connection tests: the real api program with
several workers, raw sockets from chosen loopback addresses, and a
well-behaved client that times its requests."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from shared.db.embedded import free_port
from shared.node.reload import children
from tests.support.api_program import start_api_program


def start_api_workers(env_for, config, tmp_path, workers: int = 2, **env):
    """The api program as production runs it (``python -m services.api``) on
    a free port, once /status answers and all ``workers`` are forked:
    (program, port)."""
    port = free_port()
    environment = {
        **os.environ,
        **env_for(
            config.db_name,
            PORT=str(port),
            HOST="127.0.0.1",
            API_WORKERS=str(workers),
            LOG_DIR=str(tmp_path / "logs"),
            KSNODE_HOME=str(tmp_path / "home"),
            **env,
        ),
    }
    ready = lambda program: len(children(program.pid)) == workers  # noqa: E731
    return start_api_program(environment, ready=ready), port


def stop_api_program(program: subprocess.Popen) -> int:
    program.terminate()
    try:
        return program.wait(30)
    except subprocess.TimeoutExpired:
        program.kill()
        return program.wait(5)


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_response(sock: socket.socket, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes (or ``limit`` seconds pass)."""
    sock.settimeout(limit)
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def timed_gets(
    port: int, path: str, count: int, source: str, timeout: float = 5.0, budget: float = 30.0
) -> tuple[list[float], int]:
    """``count`` GETs one after the other, each on a new connection from
    ``source``; (latencies of the answered ones, number that failed or were
    not sent within ``budget`` seconds)."""
    latencies, failed = [], 0
    deadline = time.monotonic() + budget
    for sent in range(count):
        if time.monotonic() > deadline:
            return latencies, failed + count - sent
        started = time.perf_counter()
        try:
            sock = connect(port, source, timeout)
            try:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n".encode()
                )
                answer = read_response(sock, timeout)
            finally:
                sock.close()
            if not answer.startswith(b"HTTP/1.1 200"):
                failed += 1
                continue
        except OSError:
            failed += 1
            continue
        latencies.append(time.perf_counter() - started)
    return latencies, failed


def p99(values: list[float]) -> float:
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
