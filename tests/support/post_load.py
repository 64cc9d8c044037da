"""A steady load of key share reads (POST /keyshare/v1/, the wallet's read)
through the proxy: nginx never retries a POST on another connection, so a
connection the node resets under it is a failed request the client sees."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from tests.support.proxy_clients import client_from
from tests.support.steady_load import LoadResult


class PostLoad:
    def __init__(self, url: str, cert: Path, body: dict, headers: dict, share: str, clients: int):
        self.url = url + "/keyshare/v1/"
        self.cert = cert
        self.body = body
        self.headers = headers
        self.share = share
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.result = LoadResult()
        self._threads = [
            threading.Thread(target=self._client, args=(f"127.0.9.{index + 1}",), daemon=True)
            for index in range(clients)
        ]

    def __enter__(self) -> PostLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)
        return self.result

    def _client(self, source: str) -> None:
        with client_from(source, self.cert) as session:
            while not self._stop.is_set():
                started = time.monotonic()
                reason = None
                try:
                    response = session.post(
                        self.url, json=self.body, headers=self.headers, timeout=30
                    )
                    if response.status_code != 200:
                        reason = f"HTTP {response.status_code}"
                    elif response.json()["data"]["share"] != self.share:
                        reason = "wrong share"
                except requests.RequestException as exc:
                    reason = type(exc).__name__
                elapsed = time.monotonic() - started
                with self._lock:
                    self.result.longest_seconds = max(self.result.longest_seconds, elapsed)
                    if reason is None:
                        self.result.ok += 1
                    else:
                        self.result.failed += 1
                        self.result.reasons[reason] = self.result.reasons.get(reason, 0) + 1
