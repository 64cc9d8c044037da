"""The api program's own limits on what one connection may cost
(services/api/server/limits.py, http_errors.py): per-address cap, header and idle
timeouts, the body limit enforced before reading, and waitress's own
answers in the JSON envelope."""

from __future__ import annotations

import json
import time

import pytest
import requests

from services.api.server.limits import BUCKETS, ClientTable, client_bucket
from services.api.web.body import MAX_BODY_BYTES
from tests.support.hostile_clients import (
    closed_by_server,
    connect,
    read_response,
    start_api_workers,
    stop_api_program,
)

PER_CLIENT = 20
HEADER_TIMEOUT = 2
IDLE_TIMEOUT = 3


@pytest.fixture(scope="module")
def port(env_for, config, tmp_path_factory):
    process, port = start_api_workers(
        env_for,
        config,
        tmp_path_factory.mktemp("limits"),
        API_MAX_CONNECTIONS_PER_CLIENT=str(PER_CLIENT),
        API_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        API_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT),
    )
    yield port
    assert stop_api_program(process) == 0


def _split(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def _assert_envelope(answer: bytes, status: int, code: str) -> dict:
    status_line, headers, body = _split(answer)
    assert status_line.split()[1] == str(status), answer[:300]
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["access-control-allow-origin"] == "*"
    envelope = json.loads(body)
    assert envelope["success"] is False and envelope["code"] == code, envelope
    assert isinstance(envelope["msg"], str) and envelope["msg"]
    return envelope


def _refused(port: int, source: str) -> bool:
    """True when the server closes a new connection from ``source`` at once."""
    try:
        sock = connect(port, source)
    except ConnectionResetError:  # reset before connect() even returned
        return True
    try:
        return closed_by_server(sock, 2)
    finally:
        sock.close()


def _status_ok(port: int, source: str) -> bool:
    try:
        sock = connect(port, source)
    except ConnectionResetError:
        return False
    try:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        return read_response(sock, 5).startswith(b"HTTP/1.1 200")
    except ConnectionResetError:  # refused: the address is (still) at its cap
        return False
    finally:
        sock.close()


@pytest.fixture(scope="module")
def proxied_port(env_for, config, tmp_path_factory):
    """Behind a trusted proxy at 127.0.0.40 (TRUST_PROXY_HOPS=1), the cap at 5."""
    process, port = start_api_workers(
        env_for,
        config,
        tmp_path_factory.mktemp("proxied-limits"),
        API_MAX_CONNECTIONS_PER_CLIENT="5",
        TRUST_PROXY_HOPS="1",
        TRUSTED_PROXIES="127.0.0.40",
    )
    yield port
    assert stop_api_program(process) == 0


def test_behind_a_proxy_only_the_proxy_is_exempt_from_the_cap(proxied_port):
    """The proxy's pool serves every client (a cap on it would answer end users
    502); a peer that reaches the port directly keeps the cap."""
    from_proxy = [connect(proxied_port, "127.0.0.40") for _ in range(8)]
    direct = [connect(proxied_port, "127.0.0.41") for _ in range(5)]
    try:
        time.sleep(0.5)  # accepted by now
        assert all(not closed_by_server(sock, 0.05) for sock in from_proxy + direct)
        assert _status_ok(proxied_port, "127.0.0.40")  # a ninth from the proxy: served
        assert _refused(proxied_port, "127.0.0.41"), "a sixth direct connection stayed open"
    finally:
        for sock in from_proxy + direct:
            sock.close()


def test_client_buckets_group_ipv6_by_64_and_map_ipv4_mapped_addresses():
    assert client_bucket("2001:db8:1:2::1") == client_bucket("2001:db8:1:2:ffff::9")
    assert client_bucket("::ffff:10.1.2.3") == client_bucket("10.1.2.3")
    assert 0 <= client_bucket("not an address") < BUCKETS


def test_client_table_sums_every_workers_row():
    table = ClientTable(2)
    table.add(0, 7, 3)
    table.add(1, 7, 2)
    assert table.held(7) == 5
    table.reset(1)
    assert table.held(7) == 3


def test_one_address_holds_at_most_the_cap_and_others_are_still_served(port):
    held = [connect(port, "127.0.0.30") for _ in range(PER_CLIENT)]
    try:
        time.sleep(0.5)  # accepted by now
        assert all(not closed_by_server(sock, 0.05) for sock in held)
        assert _refused(port, "127.0.0.30"), "a connection beyond the cap stayed open"
        assert _status_ok(port, "127.0.0.31")  # another address is unaffected
    finally:
        for sock in held:
            sock.close()
    # Closed connections give their places back.
    deadline = time.monotonic() + 5
    while not _status_ok(port, "127.0.0.30"):
        assert time.monotonic() < deadline, "the address stayed blocked after closing"
        time.sleep(0.2)


def test_slowloris_gets_408_in_the_envelope_and_is_closed(port):
    sock = connect(port, "127.0.0.32")
    try:
        started = time.monotonic()
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: node\r\n")
        answer = b""
        for _ in range(10):  # a header line every 0.5 s would go on forever
            time.sleep(0.5)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        answer = read_response(sock, 5)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    _assert_envelope(answer, 408, "REQUEST_TIMEOUT")
    assert elapsed < HEADER_TIMEOUT + 5


def test_a_body_that_stops_arriving_gets_408(port):
    sock = connect(port, "127.0.0.33")
    try:
        sock.sendall(
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        answer = read_response(sock, 2 * HEADER_TIMEOUT + 4)
    finally:
        sock.close()
    _assert_envelope(answer, 408, "REQUEST_TIMEOUT")


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(port):
    session = requests.Session()
    sock = connect(port, "127.0.0.34")
    try:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: node\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert closed_by_server(sock, IDLE_TIMEOUT + 4)
        assert time.monotonic() - started >= IDLE_TIMEOUT - 0.5
    finally:
        sock.close()
        session.close()


def test_200_mb_content_length_is_refused_at_once_without_reading_the_body(port):
    sock = connect(port, "127.0.0.35")
    try:
        started = time.perf_counter()
        sock.sendall(
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200000000\r\n\r\n"
        )
        answer = read_response(sock, 5)  # the server closes after answering
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    # Not one body byte was sent: an answer at all proves it was not waited for.
    _assert_envelope(answer, 413, "PAYLOAD_TOO_LARGE")
    assert elapsed < 2, f"{elapsed:.3f} s"
    print(f"200 MB Content-Length refused in {elapsed * 1000:.1f} ms")


class _Zeros:
    """A 200 MB request body that counts how much of it the client sent."""

    def __init__(self, size: int):
        self.size = size
        self.sent = 0

    def __len__(self) -> int:
        return self.size - self.sent

    def read(self, amount: int = -1) -> bytes:
        amount = self.size - self.sent if amount < 0 else min(amount, self.size - self.sent)
        self.sent += amount
        return bytes(amount)


def test_a_client_uploading_200_mb_gets_the_413_promptly(port):
    body = _Zeros(200_000_000)
    started = time.perf_counter()
    answer = requests.post(
        f"http://127.0.0.1:{port}/keyshare/v1/",
        data=body,
        headers={"Content-Type": "application/json", "Content-Length": "200000000"},
        timeout=10,
    )
    elapsed = time.perf_counter() - started
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert elapsed < 2, f"{elapsed:.3f} s"
    # The client stops when the node closes: it got no further than the socket buffers.
    assert body.sent < 50_000_000, f"{body.sent} bytes went out"


def test_expect_100_continue_with_a_huge_body_gets_413_not_continue(port):
    sock = connect(port, "127.0.0.35")
    try:
        sock.sendall(
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 200000000\r\n\r\n"
        )
        answer = read_response(sock, 5)
    finally:
        sock.close()
    assert b"100 Continue" not in answer
    _assert_envelope(answer, 413, "PAYLOAD_TOO_LARGE")


def test_chunked_upload_is_cut_at_the_limit(port):
    sock = connect(port, "127.0.0.36")
    sent = 0
    answer = b""
    try:
        sock.sendall(
            b"POST /keyshare/v1/ HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (8192, b"x" * 8192)
        sock.settimeout(0.2)
        while sent < 50 * MAX_BODY_BYTES:  # 5 MB: far past the limit
            try:
                sock.sendall(chunk)
                sent += 8192
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = sock.recv(65536)
                if answer:
                    break
            except TimeoutError:
                pass
        if not answer:
            answer = read_response(sock, 5)
        else:
            answer += read_response(sock, 5)
    finally:
        sock.close()
    _assert_envelope(answer, 413, "PAYLOAD_TOO_LARGE")
    assert sent < 4 * MAX_BODY_BYTES, f"the server read {sent} bytes before refusing"


def test_a_body_of_exactly_the_limit_still_reaches_the_application(port):
    body = b'{"pad":"' + b"x" * (MAX_BODY_BYTES - 10) + b'"}'
    assert len(body) == MAX_BODY_BYTES
    answer = requests.post(
        f"http://127.0.0.1:{port}/keyshare/v1/check",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code != 413, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /status HTTP/1.1\nHost: node\n\n",  # bare LF line ends
        b"GET /status HTTP/1.1\r\nHost node\r\n\r\n",  # a header line without a colon
        b"GET /status HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        # waitress quotes this line in its detail: the answer must not echo it
        b"GET /status HTTP/1.1\r\nX-Echo: secret-ab\rcd\r\n\r\n",
    ],
    ids=["bare-lf", "bad-header", "bad-content-length", "bare-cr-in-a-header"],
)
def test_malformed_requests_get_400_in_the_envelope_at_once(port, request_bytes):
    sock = connect(port, "127.0.0.37")
    try:
        started = time.monotonic()
        sock.sendall(request_bytes)
        answer = read_response(sock, 5)
    finally:
        sock.close()
    envelope = _assert_envelope(answer, 400, "INVALID_REQUEST")
    assert time.monotonic() - started < 2
    assert envelope["msg"].startswith("Malformed HTTP request")
    assert "secret" not in envelope["msg"] and '"' not in envelope["msg"], envelope


def test_oversized_headers_get_431_in_the_envelope(port):
    sock = connect(port, "127.0.0.38")
    try:
        sock.sendall(
            b"GET /status HTTP/1.1\r\nHost: node\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
        )
        answer = read_response(sock, 5)
    finally:
        sock.close()
    _assert_envelope(answer, 431, "HEADERS_TOO_LARGE")


def test_refused_connections_do_not_leak_places(port):
    # Many refused attempts from a full address leave its count at the cap,
    # not above: once its connections close it is served again.
    held = [connect(port, "127.0.0.40") for _ in range(PER_CLIENT)]
    try:
        time.sleep(0.3)
        for _ in range(30):
            assert _refused(port, "127.0.0.40")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while not _status_ok(port, "127.0.0.40"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
