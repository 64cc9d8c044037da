"""What `ksnode up` prints: the programs' JSON lines unchanged, supervisord's
lines as JSON, and a reader that stops reading never stalls the node."""

import json
import os
import threading
import time

from shared.node.logrelay import Relay, convert


def test_program_json_lines_pass_unchanged():
    line = b'{"time": "t", "level": "info", "program": "api", "message": "api listening"}\n'
    assert convert(line) == line


def test_supervisord_lines_become_json():
    out = json.loads(convert(b"2026-11-29 13:44:37,361 INFO spawned: 'api' with pid 23073\n"))
    assert out["program"] == "supervisord" and out["level"] == "info"
    assert out["message"] == "spawned: 'api' with pid 23073"


def test_the_unix_socket_auth_warning_is_not_shown():
    line = b"2026-11-29 13:44:36,357 CRIT Server 'unix_http_server' running without any HTTP authentication checking\n"
    assert convert(line) is None


def test_a_raw_traceback_passes_as_is():
    assert convert(b'  File "x.py", line 1') == b'  File "x.py", line 1\n'


def test_a_reader_that_stops_reading_never_blocks_the_writers():
    src_r, src_w = os.pipe()
    sink_r, sink_w = os.pipe()
    relay = Relay(os.fdopen(src_r, "rb"), os.fdopen(sink_w, "wb"), limit=10).start()
    line = b'{"program": "api", "message": "' + b"x" * 1000 + b'"}\n'
    done = threading.Event()

    def programs():
        with os.fdopen(src_w, "wb") as source:
            for _ in range(500):  # ~500 KB: far more than the sink pipe and the queue hold
                source.write(line)
                source.flush()
        done.set()

    threading.Thread(target=programs, daemon=True).start()
    assert done.wait(15), "writing to supervisord's side blocked"
    received = b""
    deadline = time.monotonic() + 15
    with os.fdopen(sink_r, "rb") as sink:
        while time.monotonic() < deadline and b"logrelay.dropped" not in received:
            received += sink.read1(1 << 16)
        relay.join(5)
    assert b"logrelay.dropped" in received
    assert received.count(line) < 500
