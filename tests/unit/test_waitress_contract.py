"""The waitress internals the API's server layer (services/api/server/) builds
on. waitress promises none of them; pyproject.toml pins the minor version the
suite was run with, and this test names each one, so an upgrade that moves
one fails here, by name, instead of somewhere under load."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    ServerNotImplemented,
)

TESTED_MINOR = "3.0"

# (class, method, the parameter names our override or call relies on)
OVERRIDDEN = [
    (HTTPChannel, "readable", ["self"]),
    (HTTPChannel, "del_channel", ["self", "map"]),
    (HTTPChannel, "__init__", ["self", "server", "sock", "addr", "adj", "map"]),
    (TcpWSGIServer, "handle_accept", ["self"]),
    (TcpWSGIServer, "maintenance", ["self", "now"]),
    (TcpWSGIServer, "readable", ["self"]),
    (TcpWSGIServer, "fix_addr", ["self", "addr"]),
    (TcpWSGIServer, "add_task", ["self", "task"]),
    (TcpWSGIServer, "set_socket_options", ["self", "conn"]),
    (WSGITask, "build_response_header", ["self"]),
    (ErrorTask, "execute", ["self"]),
    (HTTPRequestParser, "received", ["self", "data"]),
    (HTTPRequestParser, "__init__", ["self", "adj"]),
    (Error, "to_response", ["self", "ident"]),
]

# Attributes the server layer reads or sets on waitress objects.
CLASS_ATTRIBUTES = [
    (TcpWSGIServer, "channel_class"),
    (HTTPChannel, "parser_class"),
    (WSGITask, "has_body"),
    (WSGITask, "close_on_finish"),
    (wasyncore, "loop"),
    (wasyncore, "file_dispatcher"),
]
ADJUSTMENTS = [
    "channel_timeout",
    "log_socket_errors",
    "asyncore_use_poll",
    "connection_limit",
    "max_request_header_size",
    "max_request_body_size",
    "cleanup_interval",
]


def test_waitress_is_the_tested_minor():
    assert version("waitress").rsplit(".", 1)[0] == TESTED_MINOR, (
        "waitress was upgraded: run the server-layer tests (tests/api/test_connection_*.py, "
        "tests/node/test_zero_downtime.py), update this file's lists, then TESTED_MINOR "
        "and the pin in pyproject.toml"
    )


@pytest.mark.parametrize(
    ("owner", "name", "params"), OVERRIDDEN, ids=[f"{c.__name__}.{n}" for c, n, _ in OVERRIDDEN]
)
def test_overridden_method_keeps_its_shape(owner, name, params):
    method = getattr(owner, name, None)
    assert callable(method), f"waitress {owner.__name__}.{name} is gone"
    found = list(inspect.signature(method).parameters)
    assert found[: len(params)] == params, f"{owner.__name__}.{name}{found}"


@pytest.mark.parametrize(("owner", "name"), CLASS_ATTRIBUTES)
def test_attribute_exists(owner, name):
    assert hasattr(owner, name), f"waitress {getattr(owner, '__name__', owner)}.{name} is gone"


@pytest.mark.parametrize("name", ADJUSTMENTS)
def test_adjustment_exists(name):
    assert hasattr(Adjustments(), name), f"waitress Adjustments.{name} is gone"


def test_error_classes_keep_their_codes():
    assert BadRequest.code == 400
    assert RequestEntityTooLarge.code == 413
    assert RequestHeaderFieldsTooLarge.code == 431
    assert ServerNotImplemented.code == 501
    assert issubclass(BadRequest, Error)


def test_a_new_channel_has_the_state_the_limits_read():
    """Attributes read on a live channel (services/api/server/limits.py and
    http_errors.py): set in HTTPChannel.__init__, so check them on one."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    conn, addr = listener.accept()
    try:
        server = TcpWSGIServer(
            lambda e, s: [],
            {},
            False,
            listener,
            bind_socket=False,
            sockinfo=(listener.family, listener.type, listener.proto, listener.getsockname()),
        )
        channel = HTTPChannel(server, conn, addr, server.adj, map={})
        for name in ("requests", "request", "server", "adj", "will_close", "close_when_flushed"):
            assert hasattr(channel, name), f"HTTPChannel().{name} is gone"
        parser = HTTPRequestParser(server.adj)
        for name in ("error", "headers_finished", "header_plus", "expect_continue"):
            assert hasattr(parser, name), f"HTTPRequestParser().{name} is gone"
        channel.del_channel({})
    finally:
        client.close()
        conn.close()
        listener.close()
