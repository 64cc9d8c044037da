"""The rest of the bad-input class (issue 16 item 4), against the production
api program (services/api/server/program.py, two worker processes): huge strings in
every field, deep nesting, bodies over the limit, invalid UTF-8, duplicate
keys, out-of-range numbers, odd ids, many and huge headers, a long URL. Each
gets a prompt JSON answer (4xx, or 200 where the field is simply not
found), or waitress' own 4xx for header limits; the node stays up and no
worker process restarts."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import time

import pytest
import requests

from shared.db.embedded import free_port
from shared.node.reload import children
from tests.support.api_program import start_api_program
from tests.support.fakes.telegram import bearer
from tests.support.keyshare_helpers import POST_ROUTES, ed_key, keyshare_bodies, secp_key, share_hex
from tests.support.ops import OPS_HEADERS
from tests.support.processes import terminate

BODY_LIMIT = 100 * 1024
CLIENTS = itertools.count(1)
PROMPT_SECONDS = 10.0


class Node:
    def __init__(self, program: subprocess.Popen, port: int):
        self.program = program
        self.url = f"http://127.0.0.1:{port}"
        self.port = port

    def post(self, path: str, **kw) -> requests.Response:
        # Each request from a new client (one trusted proxy hop): the admin
        # routes' own limits, on in every program, would otherwise answer 429
        # before the body checks this module is about.
        client = next(CLIENTS)
        headers = {"X-Forwarded-For": f"10.{client >> 16 & 255}.{client >> 8 & 255}.{client & 255}"}
        headers.update(kw.pop("headers", None) or {})
        return requests.post(self.url + path, timeout=30, headers=headers, **kw)

    def workers(self) -> list[int]:
        return sorted(children(self.program.pid))

    def api_health(self) -> dict:
        return requests.get(self.url + "/health", timeout=10, headers=OPS_HEADERS).json()[
            "programs"
        ]["api"]


@pytest.fixture(scope="module")
def node(env_for, config, module_tmp):
    """The real api program (two workers) on this module's database."""
    port = free_port()
    environment = {
        **os.environ,
        **env_for(
            config.db_name,
            PORT=str(port),
            HOST="127.0.0.1",
            API_WORKERS="2",
            HEARTBEAT_INTERVAL_SECONDS="1",
            ADMIN_PASSWORD="",  # backup routes refuse at once, no PBKDF2 per request
            TRUST_PROXY_HOPS="1",  # Node.post: a client address per request
            LOG_DIR=str(module_tmp / "limits-logs"),
            KSNODE_HOME=str(module_tmp / "limits-home"),
        ),
    }
    program = start_api_program(environment, ready=lambda p: len(children(p.pid)) == 2)
    yield Node(program, port)
    terminate(program, 30)


@pytest.fixture(scope="module")
def no_restarts(node):
    """Worker pids and the api heartbeat's start time before the sweep; the
    last test of the module compares them after it."""
    time.sleep(1.5)  # both workers have beaten at least once
    return node.workers(), node.api_health()["started_at"]


def full_bodies() -> dict[str, dict]:
    return {
        **keyshare_bodies(secp_key(), share_hex(), ed_key(), share_hex()),
        "/pg_dump/v1/backup": {"password": "x"},
        "/pg_dump/v1/restore": {"password": "x", "dump_path": "a.dump"},
        "/pg_dump/v1/get_backup_history": {"days": 7},
    }


def fields_of(body: dict, prefix: tuple = ()) -> list[tuple]:
    """Paths of every leaf member of a body, plus the top-level auth fields."""
    paths = []
    for key, value in body.items():
        if isinstance(value, dict):
            paths += fields_of(value, (*prefix, key))
        paths.append((*prefix, key))
    if not prefix:
        paths += [("auth_type",), ("user_auth_id",)]
    return paths


def with_value(body: dict, path: tuple, value) -> dict:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def send(node: Node, route: str, data: bytes, headers: dict | None = None) -> requests.Response:
    started = time.monotonic()
    headers = {"Content-Type": "application/json", **bearer(), **(headers or {})}
    response = node.post(route, data=data, headers=headers)
    assert time.monotonic() - started < PROMPT_SECONDS, route
    return response


def assert_json_answer(response: requests.Response, *allowed: int) -> dict:
    # This node runs without ADMIN_PASSWORD: its backup routes answer the
    # documented 503 ADMIN_DISABLED at once, whatever the body.
    admin_off = response.status_code == 503 and '"code":"ADMIN_DISABLED"' in response.text
    assert admin_off or response.status_code < 500, (response.status_code, response.text[:300])
    assert admin_off or response.status_code in allowed or 400 <= response.status_code < 500, (
        response.text[:300]
    )
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    if response.status_code >= 400:
        assert body["success"] is False and isinstance(body["msg"], str), body
    return body


@pytest.mark.parametrize("route", POST_ROUTES)
def test_ten_thousand_characters_in_every_field(node, no_restarts, route):
    body = {"auth_type": "telegram", **full_bodies()[route]}
    for path in fields_of(body):
        for text in ("x" * 10_000, "é" * 10_000):
            r = send(node, route, json.dumps(with_value(body, path, text)).encode())
            # a field that is only looked up (user_auth_id on check) finds nothing: 200
            assert_json_answer(r, 200)
            assert text not in r.text or path[-1] in ("curve_type", "auth_type", "dump_path")


@pytest.mark.parametrize("route", POST_ROUTES)
def test_a_million_characters_is_a_413(node, no_restarts, route):
    body = with_value(full_bodies()[route], ("auth_type",), "x" * 1_000_000)
    r = send(node, route, json.dumps(body).encode())
    assert (r.status_code, assert_json_answer(r)["code"]) == (413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("route", POST_ROUTES)
def test_bodies_just_over_and_far_over_the_limit_are_413(node, no_restarts, route):
    for size in (BODY_LIMIT + 1, 10 * 1024 * 1024):
        data = b'{"a":"' + b"x" * (size - 8) + b'"}'
        assert len(data) == size
        r = send(node, route, data)
        assert (r.status_code, assert_json_answer(r)["code"]) == (413, "PAYLOAD_TOO_LARGE")
    r = send(node, route, b'{"a":"' + b"x" * (BODY_LIMIT - 8) + b'"}')  # exactly the limit
    assert r.status_code != 413


@pytest.mark.parametrize("route", POST_ROUTES)
def test_deep_nesting(node, no_restarts, route):
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 kB: over the limit
    assert send(node, route, deep).status_code == 413
    under = b'{"a":' + b"[" * 51_000 + b"]" * 51_000 + b"}"  # as deep as fits in 100 kB
    r = send(node, route, under)
    assert (r.status_code, assert_json_answer(r)["code"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize(
    "raw",
    [b'{"auth_type":"telegram","public_key":"\xff\xfe"}', b"\xc3\x28", b'{"a":"\xed\xa0\x80"}'],
)
def test_invalid_utf8_is_a_400(node, no_restarts, route, raw):
    r = send(node, route, raw)
    assert (r.status_code, assert_json_answer(r)["msg"]) == (400, "Request body is not valid UTF-8")


def test_duplicate_keys_keep_the_last_like_json_parse(node, no_restarts):
    key = secp_key()
    raw = b'{"public_key":"zz","public_key":"' + key.encode() + b'"}'
    r = send(node, "/keyshare/v1/check", raw)
    assert (r.status_code, r.json()) == (200, {"success": True, "data": {"exists": False}})
    raw = b'{"public_key":"' + key.encode() + b'","public_key":"zz"}'
    assert send(node, "/keyshare/v1/check", raw).json()["code"] == "PUBLIC_KEY_INVALID"


@pytest.mark.parametrize(
    "number", [b"1e400", b"-1e400", b"1" * 400, b"9" * 5000, b"-12", b"0.5", b"1e-400"]
)
@pytest.mark.parametrize("route", POST_ROUTES)
def test_odd_numbers_in_every_field(node, no_restarts, route, number):
    body = {"auth_type": "telegram", **full_bodies()[route]}
    for path in fields_of(body):
        marker = "__NUMBER__"
        raw = json.dumps(with_value(body, path, marker)).replace(f'"{marker}"', number.decode())
        assert_json_answer(send(node, route, raw.encode()), 200)


@pytest.mark.parametrize(
    "user_id", [-5, 1.5, 1e300, 10**30, 10**400, "-1", "0x1f", "1e400", "9" * 246]
)
def test_odd_telegram_ids_register_or_are_refused_cleanly(node, no_restarts, user_id):
    body = {"auth_type": "telegram", **full_bodies()["/keyshare/v2/register"]}
    r = send(node, "/keyshare/v2/register", json.dumps(body).encode(), bearer(user_id))
    assert_json_answer(r, 200)


def test_a_thousand_headers(node, no_restarts):
    headers = {f"X-Filler-{i}": "v" * 10 for i in range(1000)}
    r = send(node, "/keyshare/v1/check", json.dumps({"public_key": "zz"}).encode(), headers)
    assert (r.status_code, r.json()["code"]) == (400, "PUBLIC_KEY_INVALID")


def test_a_one_megabyte_header_is_refused_by_the_server(node, no_restarts):
    try:
        r = send(node, "/keyshare/v1/check", b"{}", {"X-Huge": "h" * 1024 * 1024})
    except requests.ConnectionError:
        return  # waitress closed the connection before reading it all: nothing reached the app
    # waitress' own answer (max_request_header_size, 256 kB): 431, before the app runs
    assert r.status_code == 431, (r.status_code, r.text[:200])


def test_a_hundred_kilobyte_url(node, no_restarts):
    # within waitress' 256 kB header limit: the app answers as usual
    r = requests.get(f"{node.url}/status?q={'a' * 100 * 1024}", timeout=30)
    assert r.status_code == 200 and r.json()["is_db_connected"] is True
    path = "/keyshare/" + "a" * 100 * 1024
    r = requests.post(node.url + path, json={}, timeout=30)
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")


def raw_request(node: Node, head: bytes) -> tuple[int, dict]:
    """Send a request head as written (a dict cannot repeat a header name)."""
    port = int(node.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head)
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_a_header_repeated_fifty_thousand_times_is_refused(node, no_restarts):
    head = b"GET /status HTTP/1.1\r\nHost: x\r\n" + b"A:b\r\n" * 50_000 + b"\r\n"
    status, body = raw_request(node, head)
    assert (status, body["code"]) == (431, "HEADERS_TOO_LARGE")
    assert body["msg"] == "A request header is repeated more than 100 times"
    # A hundred repeats in a large head (counted, more than any client sends): served.
    repeats = (b"A:" + b"b" * 200 + b"\r\n") * 100
    head = b"GET /status HTTP/1.1\r\nHost: x\r\n" + repeats + b"Connection: close\r\n\r\n"
    status, body = raw_request(node, head)
    assert status == 200 and body["is_db_connected"] is True


def test_zz_the_node_is_up_and_no_worker_restarted(node, no_restarts):
    """Runs last in this module (pytest keeps file order)."""
    workers, started_at = no_restarts
    assert requests.get(f"{node.url}/status", timeout=10).status_code == 200
    assert node.workers() == workers
    time.sleep(1.5)  # a fresh beat from whichever worker
    health = node.api_health()
    assert health["started_at"] == started_at
    assert health["pid"] in workers
    assert node.program.poll() is None
