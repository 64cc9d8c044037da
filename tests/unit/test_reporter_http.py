"""The reporter's POST with the standard library (services/reporter/oko_client.py)
against real servers on 127.0.0.1: what arrives, redirects, errors, timeouts,
proxies from the environment and TLS verification as ``requests`` did them."""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from services.reporter.oko_client import MAX_BODY_BYTES, OkoClient
from services.reporter.telemetry import PASSWORD_HEADER, ReportResult, send
from tests.support.fakes.local_http import LocalHTTPServer
from tests.support.fakes.tls import make_ca, make_server_cert, pem

PATH = "/tss/v1/ks_node/telemetry"
PASSWORD = "report-pw"
BODY = {
    "public_key": "02" + "ab" * 32,
    "key_share_count": 3,
    "payload": {"db_status": "ERROR", "error_msg": 'naïve "quoted" </script>'},
}
ENVIRONMENT = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUEST_METHOD",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No proxy or CA setting of the machine running the tests leaks in."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def report(base_url: str, timeout: float = 2.0, client: OkoClient | None = None) -> ReportResult:
    return send(client or OkoClient(), base_url, PASSWORD, dict(BODY), timeout)


@dataclass
class Seen:
    method: str
    target: str  # the request line's target, as sent
    headers: list[tuple[str, str]]  # names as sent (case kept), in order
    body: bytes

    def header(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(found) <= 1, found
        return found[0] if found else None


@dataclass
class Answer:
    status: int = 200
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"success":true}'
    length: int | None = None  # Content-Length to announce (default: len(body))
    hold: float = 0.0  # seconds to wait after writing the body, connection open
    trickle: float = 0.0  # seconds between the body's bytes, written one by one


class Recorder:
    """A real HTTP (or HTTPS) server that records every request and answers
    with ``answer``."""

    def __init__(
        self,
        answer: Answer | None = None,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ):
        self.answer = answer or Answer()
        self.seen: list[Seen] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one_request(self):  # every method alike
                try:
                    super().handle_one_request()
                except OSError:
                    self.close_connection = True

            def __getattr__(self, name):
                if name.startswith("do_"):
                    return self.record
                raise AttributeError(name)

            def record(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                # The target as sent (self.path collapses a leading "//").
                target = self.requestline.split(" ")[1]
                recorder.seen.append(Seen(self.command, target, list(self.headers.items()), body))
                answer = recorder.answer
                self.send_response(answer.status, answer.reason)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                length = len(answer.body) if answer.length is None else answer.length
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if answer.trickle:
                    self.wfile.flush()
                    for byte in answer.body:
                        time.sleep(answer.trickle)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                else:
                    self.wfile.write(answer.body)
                    self.wfile.flush()
                if answer.hold:
                    time.sleep(answer.hold)

            def log_message(self, *args):
                pass

        self.http = LocalHTTPServer(Handler, host, tls)
        self.port, self.url = self.http.port, self.http.url

    def __enter__(self) -> Recorder:
        self.http.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.stop()


def _pipe(one: socket.socket, other: socket.socket) -> None:
    sockets = [one, other]
    while True:
        ready, _, _ = select.select(sockets, [], [], 5)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            (other if sock is one else one).sendall(data)


class Proxy:
    """A tiny real forward proxy: absolute-URI requests are forwarded, CONNECT
    is tunnelled; every request line and its headers are recorded."""

    def __init__(self):
        self.seen: list[Seen] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_CONNECT(self):  # noqa: N802 - http.server API
                proxy.seen.append(Seen("CONNECT", self.path, list(self.headers.items()), b""))
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                try:
                    _pipe(self.connection, upstream)
                finally:
                    upstream.close()
                    self.close_connection = True

            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                proxy.seen.append(Seen("POST", self.path, list(self.headers.items()), body))
                url = urlsplit(self.path)
                upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
                forwarded = {
                    name: value
                    for name, value in self.headers.items()
                    if not name.lower().startswith("proxy-") and name.lower() != "connection"
                }
                upstream.request("POST", url.path, body=body, headers=forwarded)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status, answer.reason)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def __enter__(self) -> Proxy:
        self.http.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1 signed by it, and the CA file."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = make_ca()
    cert_pem, key_pem = make_server_cert(ca_key, ca_cert)
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca"].write_bytes(pem(ca_cert))
    files["cert"].write_bytes(cert_pem)
    files["key"].write_bytes(key_pem)
    return files


@pytest.fixture()
def server_tls(tls_files) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    return context


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what arrives ---------------------------------------------------------


def test_body_and_headers_arrive_as_requests_sent_them():
    with Recorder() as oko:
        result = report(oko.url)
    assert result == ReportResult(True, 200, 3, None)
    [seen] = oko.seen
    assert (seen.method, seen.target) == ("POST", PATH)
    # The same bytes and Content-Type as requests' json= (what the reporter used).
    prepared = requests.Request(
        "POST", oko.url + PATH, json=BODY, headers={PASSWORD_HEADER: PASSWORD}
    ).prepare()
    assert seen.body == prepared.body
    assert json.loads(seen.body) == BODY
    assert seen.header("Content-Type") == prepared.headers["Content-Type"] == "application/json"
    assert seen.header("Content-Length") == str(len(prepared.body))
    # The header name exactly as before (the fake Oko API of the reference
    # tests looks it up case-sensitively, and so may a proxy's rule).
    assert (PASSWORD_HEADER, PASSWORD) in seen.headers
    assert seen.header("Host") == f"127.0.0.1:{oko.port}"
    assert seen.header("Authorization") is None


def test_the_url_is_plain_concatenation_of_the_base_url_and_the_path():
    with Recorder() as oko:
        assert report(oko.url + "/").ok
        assert report(oko.url + "/oko api").ok
    # A trailing slash gives "//tss" like the reference; unsafe characters
    # are percent-encoded as requests did.
    assert [seen.target for seen in oko.seen] == ["/" + PATH, "/oko%20api" + PATH]


def test_user_info_in_the_url_becomes_basic_auth_and_never_an_error_text():
    with Recorder() as oko:
        result = report(oko.url.replace("://", "://oko:p%40ss@"))
    assert result.ok
    [seen] = oko.seen
    assert seen.target == PATH
    assert seen.header("Authorization") == "Basic " + base64.b64encode(b"oko:p@ss").decode()
    assert seen.header("Host") == f"127.0.0.1:{oko.port}"
    # A network failure says what failed, never the URL's secret or the password.
    result = report(f"http://oko:sekret@127.0.0.1:{unused_port()}")
    assert result == ReportResult(False, None, 3, "ConnectionRefusedError: request failed")


def test_an_unusable_url_is_a_failed_report_not_a_crash():
    assert report("ftp://127.0.0.1/x").error == "UnsupportedURL: request failed"
    assert report("http://127.0.0.1:port-sekret").error == "ValueError: request failed"


# --- answers --------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_password_goes_nowhere_else(status):
    with Recorder() as elsewhere:
        answer = Answer(status=status, headers={"Location": elsewhere.url + PATH}, body=b"")
        with Recorder(answer) as oko:
            result = report(oko.url)
    assert [(seen.target, seen.header(PASSWORD_HEADER)) for seen in oko.seen] == [(PATH, PASSWORD)]
    assert elsewhere.seen == []  # no request at all, so no password
    reason = http.client.responses[status]
    assert result == ReportResult(
        False, status, 3, f"Telemetry response contains error: {status} {reason}"
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "Unauthorized"), (500, "Internal Server Error"), (503, "Oko Is Resting")],
)
def test_a_non_2xx_is_a_failed_report_with_status_and_reason(status, reason):
    with Recorder(Answer(status=status, reason=reason, body=b'{"success":false}')) as oko:
        result = report(oko.url)
    assert result == ReportResult(
        False, status, 3, f"Telemetry response contains error: {status} {reason}"
    )


def test_any_2xx_is_a_sent_report():
    with Recorder(Answer(status=204, body=b"")) as oko:
        assert report(oko.url) == ReportResult(True, 204, 3, None)


# --- timeouts and bounded reads -------------------------------------------


def test_a_server_that_never_answers_fails_within_the_timeout():
    # A listening socket nobody accepts from: the kernel completes the
    # connection and takes the request, and no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        result = report(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        elapsed = time.monotonic() - started
    assert result == ReportResult(False, None, 3, "TimeoutError: request failed")
    assert elapsed < 1.5


def test_an_unreachable_server_is_a_failed_report():
    result = report(f"http://127.0.0.1:{unused_port()}", timeout=0.5)
    assert result == ReportResult(False, None, 3, "ConnectionRefusedError: request failed")


def test_a_body_that_never_ends_does_not_hold_the_report_beyond_the_timeout():
    # The status came: the report was received; the stalled body is dropped.
    answer = Answer(body=b"{", length=1000, hold=5)
    with Recorder(answer) as oko:
        started = time.monotonic()
        result = report(oko.url, timeout=0.5)
        elapsed = time.monotonic() - started
    assert result == ReportResult(True, 200, 3, None)
    assert elapsed < 1.5


def test_a_body_dripping_a_byte_at_a_time_is_read_only_until_the_timeout():
    # Each byte comes well within the timeout, so only a deadline on the
    # whole body ends the read.
    with Recorder(Answer(body=b" " * 100, trickle=0.1)) as oko:
        started = time.monotonic()
        result = report(oko.url, timeout=0.5)
        elapsed = time.monotonic() - started
    assert result == ReportResult(True, 200, 3, None)
    assert elapsed < 1.2


class HeaderDripper:
    """A server that reads the request, then sends the status line and a
    header one byte every 0.1 s, for minutes: each byte well within the
    client's timeout."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.closed = threading.Event()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                received = b""
                while b"\r\n\r\n" not in received:
                    received += conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 3000:
                    if self.closed.wait(0.1):
                        return
                    conn.sendall(bytes([byte]))
        except OSError:
            pass  # the client gave up: what this test wants

    def __enter__(self) -> HeaderDripper:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closed.set()
        self.listener.close()
        self.thread.join(5)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_status_and_headers_dripping_a_byte_at_a_time_end_at_the_timeout(
    scheme, monkeypatch, tls_files, server_tls
):
    """Before, only each read was bounded: the report waited as long as the
    bytes kept coming (up to 100 header lines of 64 KiB), with nothing
    logged and the last result still on show."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files["ca"]))
    with HeaderDripper(server_tls if scheme == "https" else None) as oko:
        started = time.monotonic()
        result = report(oko.url, timeout=0.5)
        elapsed = time.monotonic() - started
    assert result == ReportResult(False, None, 3, "TimeoutError: request failed")
    assert elapsed < 1.5


def test_a_huge_body_is_read_only_in_part():
    answer = Answer(body=b"x" * (MAX_BODY_BYTES * 64))
    with Recorder(answer) as oko:
        started = time.monotonic()
        result = report(oko.url)
        assert time.monotonic() - started < 1.5
    assert result == ReportResult(True, 200, 3, None)


# --- proxies from the environment -----------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_the_environment_proxy_is_used(monkeypatch, variable):
    with Recorder() as oko, Proxy() as proxy:
        monkeypatch.setenv(variable, proxy.url)
        result = report(oko.url)
    assert result == ReportResult(True, 200, 3, None)
    [via] = proxy.seen
    assert (via.method, via.target) == ("POST", oko.url + PATH)  # absolute URI
    assert via.header(PASSWORD_HEADER) == PASSWORD
    [seen] = oko.seen
    assert seen.target == PATH and json.loads(seen.body) == BODY


def test_proxy_credentials_go_to_the_proxy(monkeypatch):
    with Recorder() as oko, Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("://", "://pu:p%3Aw@"))
        assert report(oko.url).ok
    [via] = proxy.seen
    assert via.header("Proxy-Authorization") == "Basic " + base64.b64encode(b"pu:p:w").decode()
    assert oko.seen[0].header("Proxy-Authorization") is None


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "127.0.0.0/8", "localhost, 127.0.0.1", "*", "example.com,127.0.0.1"]
)
def test_no_proxy_bypasses_the_proxy(monkeypatch, no_proxy):
    with Recorder() as oko, Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        assert report(oko.url).ok
    assert proxy.seen == []
    assert len(oko.seen) == 1


@pytest.mark.parametrize("no_proxy", ["10.0.0.0/8", "127.0.0.2", "example.com"])
def test_a_no_proxy_that_does_not_match_keeps_the_proxy(monkeypatch, no_proxy):
    with Recorder() as oko, Proxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", no_proxy)
        assert report(oko.url).ok
    assert len(proxy.seen) == 1


def test_https_goes_through_the_proxy_with_connect(monkeypatch, tls_files, server_tls):
    with Recorder(tls=server_tls) as oko, Proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files["ca"]))
        result = report(oko.url)
    assert result == ReportResult(True, 200, 3, None)
    [via] = proxy.seen
    assert (via.method, via.target) == ("CONNECT", f"127.0.0.1:{oko.port}")
    assert via.header(PASSWORD_HEADER) is None  # only inside the TLS tunnel
    assert oko.seen[0].header(PASSWORD_HEADER) == PASSWORD


def test_a_dead_proxy_is_a_failed_report(monkeypatch):
    with Recorder() as oko:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_port()}")
        result = report(oko.url)
    assert result == ReportResult(False, None, 3, "ConnectionRefusedError: request failed")
    assert oko.seen == []


# --- TLS ------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_tls_is_verified_against_the_configured_ca_bundle(
    monkeypatch, tls_files, server_tls, variable
):
    monkeypatch.setenv(variable, str(tls_files["ca"]))
    with Recorder(tls=server_tls) as oko:
        assert report(oko.url) == ReportResult(True, 200, 3, None)
    assert oko.seen[0].header(PASSWORD_HEADER) == PASSWORD


def test_requests_ca_bundle_wins_over_curl_ca_bundle(monkeypatch, tls_files, server_tls):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls_files["ca"]))
    with Recorder(tls=server_tls) as oko:
        result = report(oko.url)
    assert result == ReportResult(False, None, 3, "SSLCertVerificationError: request failed")
    assert oko.seen == []


def test_without_a_bundle_setting_certifi_is_used(monkeypatch, tls_files, server_tls):
    import certifi

    with Recorder(tls=server_tls) as oko:
        # certifi's real bundle does not know the test CA: refused, nothing sent.
        result = report(oko.url)
        assert result.error == "SSLCertVerificationError: request failed"
        assert oko.seen == []
        monkeypatch.setattr(certifi, "where", lambda: str(tls_files["ca"]))
        assert report(oko.url).ok


def test_without_certifi_the_system_ca_store_is_used(monkeypatch, tls_files, server_tls):
    monkeypatch.setitem(sys.modules, "certifi", None)  # import certifi fails
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))  # OpenSSL's default store
    with Recorder(tls=server_tls) as oko:
        assert report(oko.url).ok


def test_an_unreadable_ca_bundle_is_a_failed_report(monkeypatch, tmp_path, server_tls):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with Recorder(tls=server_tls) as oko:
        result = report(oko.url)
    assert result == ReportResult(False, None, 3, "CABundleUnreadable: request failed")
    assert oko.seen == []


def test_the_wrong_host_name_is_refused(monkeypatch, tls_files, server_tls):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files["ca"]))
    try:
        # The certificate names 127.0.0.1 and localhost, not 127.0.0.2.
        oko = Recorder(tls=server_tls, host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address here")
    with oko:
        result = report(oko.url)
    assert result.error == "SSLCertVerificationError: request failed"
    assert oko.seen == []


# --- the reporter process -------------------------------------------------


def test_the_reporter_imports_neither_requests_nor_urllib3():
    code = (
        "import sys, services.reporter.main;"
        "print('requests' in sys.modules, 'urllib3' in sys.modules, 'urllib.request' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False", "False"]
