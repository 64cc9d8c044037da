"""Bounded load of registrations and share reads against a node, every answer
recorded with its time: what failover tests and bench/failover.py judge."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from tests.support.keyshare_helpers import new_user_id, secp_key, share_hex, v1_get, v1_register


@dataclass
class Answer:
    kind: str  # "register" or "read"
    started: float
    ended: float
    status: int | str  # an HTTP status, or the exception's name (a hang, a reset)
    code: str | None  # the JSON envelope's code, None when the body was not JSON
    user: str = ""
    key: str = ""
    share: str = ""


class FailoverLoad:
    """``writers`` threads registering new users, ``readers`` reading one
    stored share, each pausing ``pause`` seconds between requests."""

    def __init__(self, url: str, *, writers: int = 3, readers: int = 2, pause: float = 0.02):
        self.url = url
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.pause = pause
        self.reader = (new_user_id(), secp_key(), share_hex())
        r = v1_register(url, *self.reader)
        assert r.status_code == 200, r.text
        self._threads = [
            threading.Thread(target=self._write, daemon=True) for _ in range(writers)
        ] + [threading.Thread(target=self._read, daemon=True) for _ in range(readers)]

    def __enter__(self) -> FailoverLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def _call(self, kind: str, call, user="", key="", share="") -> None:
        started = time.monotonic()
        try:
            r = call()
            status: int | str = r.status_code
            try:
                code = r.json().get("code", "OK" if r.status_code == 200 else None)
            except ValueError:
                code = None
        except requests.RequestException as exc:
            status, code = type(exc).__name__, None
        self._record(Answer(kind, started, time.monotonic(), status, code, user, key, share))

    def _write(self) -> None:
        while not self._stop.is_set():
            user, key, share = new_user_id(), secp_key(), share_hex()
            self._call(
                "register",
                lambda u=user, k=key, s=share: v1_register(self.url, u, k, s, 20),
                user,
                key,
                share,
            )
            self._stop.wait(self.pause)

    def _read(self) -> None:
        user, key, _share = self.reader
        while not self._stop.is_set():
            self._call("read", lambda: v1_get(self.url, user, key, 20))
            self._stop.wait(self.pause)

    # -- judging ---------------------------------------------------------------
    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def acknowledged(self) -> list[Answer]:
        return [a for a in self.snapshot() if a.kind == "register" and a.status == 200]

    def served_again_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the end of the first registration that
        started after it and was answered 200."""
        ends = [a.ended for a in self.acknowledged() if a.started >= moment]
        return min(ends) - moment if ends else None

    def gap(self, moment: float) -> float | None:
        """From the last registration answered 200 before ``moment`` to the
        first one after it."""
        acks = self.acknowledged()
        before = [a.ended for a in acks if a.ended <= moment]
        after = [a.ended for a in acks if a.started >= moment]
        if not before or not after:
            return None
        return min(after) - max(before)
