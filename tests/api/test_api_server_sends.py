"""The API's waitress server sends a small response's head and body in one
write (one TCP segment, services/api/server/balance.py), and large ones whole."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from services.api.server.balance import BalancedServer, ConnectionTable


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "OPTIONS":  # a CORS preflight's answer
        start_response("204 No Content", [("Access-Control-Allow-Origin", "*")])
        return [b""]
    size = int(environ["PATH_INFO"].strip("/") or 2)
    body = b"x" * size
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
    return [body]


@pytest.fixture()
def server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    srv = BalancedServer(app, sock, table=ConnectionTable(1), slot=0, threads=2, ident=None)
    sends: list[int] = []
    real_send = srv.channel_class.send

    def counting_send(channel, data, do_close=True):
        sends.append(len(data))
        return real_send(channel, data, do_close)

    srv.channel_class = type("CountingChannel", (srv.channel_class,), {"send": counting_send})
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", sends
    srv.close()
    srv.task_dispatcher.shutdown(timeout=5)


def test_small_response_is_one_send(server):
    url, sends = server
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(url + "/2", timeout=5).text == "xx"
    assert len(sends) == 3 and all(100 < n < 200 for n in sends), sends


def test_large_response_arrives_whole(server):
    url, _ = server
    assert len(requests.get(url + "/300000", timeout=5).content) == 300_000


def test_a_204_keeps_the_connection_open(server):
    """waitress alone closes after a 204 (no Content-Length); every CORS
    preflight would then cost a new connection."""
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        for _ in range(2):
            conn.sendall(b"OPTIONS /x HTTP/1.1\r\nHost: a\r\nOrigin: https://b\r\n\r\n")
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                chunk = conn.recv(1)
                assert chunk, "the server closed the connection after a 204"
                head += chunk
            assert head.startswith(b"HTTP/1.1 204")
            assert b"connection: close" not in head.lower()
        conn.sendall(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert conn.recv(4096).endswith(b"xx")


def test_a_204_asked_to_close_closes(server):
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"OPTIONS /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 204") and b"connection: close" in data.lower()
