"""What the connection limits (services/api/server/limits.py) report: /metrics
counters of refused and timed-out connections and of the server's own
error answers, summed over the workers of the real api program, the codes
those answers carry, and the refusal log line naming who was refused."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from services.api.server.connection_metrics import SERVER_ANSWERS
from services.api.web.body import MAX_BODY_BYTES
from services.api.web.errors import STATUS_BY_CODE
from tests.support.hostile_clients import (
    closed_by_server,
    connect,
    read_response,
    start_api_workers,
    stop_api_program,
)
from tests.support.ops import OPS_HEADERS

PER_CLIENT = 5
HEADER_TIMEOUT = 1
IDLE_TIMEOUT = 2
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def node(env_for, config, tmp_path_factory):
    home = tmp_path_factory.mktemp("connmetrics")
    process, port = start_api_workers(
        env_for,
        config,
        home,
        API_MAX_CONNECTIONS_PER_CLIENT=str(PER_CLIENT),
        API_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        API_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT),
    )
    yield port, home / "logs"
    assert stop_api_program(process) == 0


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics (all workers), keyed by name and labels."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10, headers=OPS_HEADERS).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(port: int, name: str, **labels: str) -> float:
    return samples(port).get((name, tuple(sorted(labels.items()))), 0.0)


def grows_by(port: int, name: str, amount: float, action, **labels: str) -> float:
    """Run ``action`` and wait (up to 10 s) until the counter has grown by at least ``amount``."""
    before = value(port, name, **labels)
    action()
    deadline = time.monotonic() + 10
    while True:
        grown = value(port, name, **labels) - before
        if grown >= amount or time.monotonic() > deadline:
            return grown
        time.sleep(0.2)


def send_and_read(port: int, source: str, data: bytes, wait: float = 5) -> bytes:
    sock = connect(port, source)
    try:
        sock.sendall(data)
        return read_response(sock, wait)
    finally:
        sock.close()


def test_every_series_exists_from_the_start(node):
    port, _ = node
    found = samples(port)
    assert ("ksnode_connections_refused_total", ()) in found
    for reason in ("header", "request", "idle"):
        assert ("ksnode_connections_timed_out_total", (("reason", reason),)) in found
    for status, code in SERVER_ANSWERS:
        key = ("ksnode_http_rejected_requests_total", (("code", code), ("status", str(status))))
        assert key in found


def test_refused_connections_are_counted_and_logged_with_the_address(node):
    port, logs = node
    source = "127.0.0.50"
    held: list[socket.socket] = []

    def flood() -> None:
        held.extend(connect(port, source) for _ in range(PER_CLIENT))
        time.sleep(0.5)  # all accepted by now
        for _ in range(7):
            try:
                extra = connect(port, source)
            except ConnectionResetError:
                continue
            assert closed_by_server(extra, 2)
            extra.close()

    try:
        assert grows_by(port, "ksnode_connections_refused_total", 7, flood) == 7
    finally:
        for sock in held:
            sock.close()
    # A line names the address and how many of its connections were refused
    # (each worker logs its own refusals; together they make the seven).
    deadline = time.monotonic() + 15
    while True:
        lines = [
            json.loads(line)
            for path in sorted(logs.glob("*.log"))
            for line in path.read_text().splitlines()
            if '"api.connections_refused"' in line
        ]
        ours = [line for line in lines if source in line["clients"]]
        if sum(line["clients"][source] for line in ours) >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sum(line["clients"][source] for line in ours) == 7, lines
    for line in ours:
        assert line["client"] == source and line["limit"] == PER_CLIENT
        assert line["refused"] == sum(line["clients"].values())


def test_slow_headers_are_counted_as_header_timeouts_and_408s(node):
    port, _ = node
    answers: list[bytes] = []

    def slowloris() -> None:
        answers.append(send_and_read(port, "127.0.0.51", b"GET /status HTTP/1.1\r\nHost: n\r\n"))

    before = value(
        port, "ksnode_http_rejected_requests_total", status="408", code="REQUEST_TIMEOUT"
    )
    assert grows_by(port, "ksnode_connections_timed_out_total", 1, slowloris, reason="header") == 1
    assert answers[0].startswith(b"HTTP/1.1 408")
    after = value(port, "ksnode_http_rejected_requests_total", status="408", code="REQUEST_TIMEOUT")
    assert after - before == 1


def test_a_body_that_stops_is_counted_as_a_request_timeout(node):
    port, _ = node

    def stalled_body() -> None:
        answer = send_and_read(
            port,
            "127.0.0.52",
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{",
            2 * HEADER_TIMEOUT + 4,
        )
        assert answer.startswith(b"HTTP/1.1 408")

    assert grows_by(port, "ksnode_connections_timed_out_total", 1, stalled_body, reason="request")
    assert value(port, "ksnode_connections_timed_out_total", reason="header") >= 0


def test_idle_connections_closed_by_the_idle_timeout_are_counted(node):
    port, _ = node

    def idle() -> None:
        quiet = [connect(port, "127.0.0.53") for _ in range(3)]
        try:
            assert all(closed_by_server(sock, IDLE_TIMEOUT + 4) for sock in quiet)
        finally:
            for sock in quiet:
                sock.close()

    before_header = value(port, "ksnode_connections_timed_out_total", reason="header")
    assert grows_by(port, "ksnode_connections_timed_out_total", 3, idle, reason="idle") == 3
    # A connection that never sent a byte is idle, not a slow request.
    assert value(port, "ksnode_connections_timed_out_total", reason="header") == before_header


@pytest.mark.parametrize(
    "request_bytes,status,code",
    [
        (
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200000000\r\n\r\n",
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            b"GET /status HTTP/1.1\r\nHost: n\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n",
            431,
            "HEADERS_TOO_LARGE",
        ),
        (b"GET /status HTTP/1.1\nHost: n\n\n", 400, "INVALID_REQUEST"),
        (
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "NOT_IMPLEMENTED",
        ),
    ],
    ids=["413", "431", "400", "501"],
)
def test_the_servers_own_error_answers_are_counted(node, request_bytes, status, code):
    port, _ = node
    answers: list[bytes] = []

    def send() -> None:
        answers.append(send_and_read(port, "127.0.0.54", request_bytes))

    name = "ksnode_http_rejected_requests_total"
    assert grows_by(port, name, 1, send, status=str(status), code=code) == 1
    head, _, body = answers[0].partition(b"\r\n\r\n")
    assert head.split()[1] == str(status).encode()
    assert json.loads(body) == {"success": False, "code": code, "msg": json.loads(body)["msg"]}


def test_a_413_from_the_application_is_not_counted_as_the_servers(node):
    # A body within waitress's framing margin is refused by Flask: an
    # application answer, counted in ksnode_http_requests_total instead.
    port, _ = node
    name = "ksnode_http_rejected_requests_total"
    before = value(port, name, status="413", code="PAYLOAD_TOO_LARGE")
    answer = requests.post(
        f"http://127.0.0.1:{port}/keyshare/v1/check",
        data=b"x" * (MAX_BODY_BYTES + 10),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 413
    assert value(port, name, status="413", code="PAYLOAD_TOO_LARGE") == before


def test_the_servers_codes_are_registered_and_documented():
    operator = (ROOT / "docs" / "operator.md").read_text()
    differences = (ROOT / "docs" / "differences.md").read_text()
    for status, code in SERVER_ANSWERS:
        assert STATUS_BY_CODE[code] == status
        assert f"{status} {code}" in operator or f"`{status} {code}`" in operator, code
        assert code in differences, code
    for metric in (
        "ksnode_connections_refused_total",
        "ksnode_connections_timed_out_total",
        "ksnode_http_rejected_requests_total",
    ):
        assert metric in operator
