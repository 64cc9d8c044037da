"""A fake Oko API on 127.0.0.1 that receives telemetry reports (spec §10)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from tests.support.fakes.local_http import LocalHTTPServer


class FakeOkoApi:
    def __init__(
        self,
        password: str = "report-pw",
        status: int = 200,
        delay: float = 0.0,
        redirect_to: str | None = None,
    ):
        self.password = password
        self.redirect_to = redirect_to  # answer 307 with this Location
        self.status = status
        self.delay = delay
        self.reports: list[dict] = []
        self.headers: list[dict] = []
        self.paths: list[str] = []
        self.received = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if fake.delay:
                    threading.Event().wait(fake.delay)
                fake.paths.append(self.path)
                fake.headers.append(dict(self.headers))
                try:
                    fake.reports.append(json.loads(raw))
                except ValueError:
                    fake.reports.append({"_raw": raw.decode("latin-1")})
                fake.received.set()
                status = fake.status
                if self.headers.get("X-KS-NODE-PASSWORD") != fake.password:
                    status = 401
                body = b'{"success":true}' if status == 200 else b'{"success":false}'
                if fake.redirect_to is not None:
                    status, body = 307, b""
                self.send_response(status)
                if fake.redirect_to is not None:
                    self.send_header("Location", fake.redirect_to + self.path)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def __enter__(self) -> FakeOkoApi:
        self.http.start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.stop()
