"""Hostile connections against a running ksnode: does a well-behaved client
still get prompt answers?

    python bench/connections.py --start        # start a node in a temp folder, measure, stop it
    python bench/connections.py --url http://127.0.0.1:4201 --bot-token TOKEN

Three scenarios, each measured from a well-behaved client at its own
loopback address (``--client-address``, default 127.0.0.2):

* baseline: nothing else connected;
* one address: ``--idle`` idle connections (connect, send nothing) and
  ``--slowloris`` slowloris connections (a request line, then one header
  line every 5 s, never finishing) from 127.0.0.10;
* ten addresses: the same spread over 127.0.0.11-20.

The attacker runs in its own process and behaves like a persistent one:
a connection the node closes is opened again 0.5 s later. During each
scenario the client sends ``--requests`` requests per row, one at a time,
to ``GET /status`` and v1 get (a Telegram user seeded first), each on a new
connection and on one keep-alive connection, ``--pause`` apart, and prints p50/p99/max
latency and how many requests failed or timed out (``--timeout``; a timed
out request counts with the timeout as its latency). Loopback addresses
other than 127.0.0.1 need Linux; the node must listen on 127.0.0.1 or
0.0.0.0 and run with ``RATE_LIMIT_PER_MINUTE=0``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import selectors
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import seed  # noqa: E402
from nodestats import Node, node_env, remove, start, wait_settled  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

SLOWLORIS_LINE_SECONDS = 5.0
REOPEN_SECONDS = 0.5


# ---------------------------------------------------------------- attacker


def _open(host: str, port: int, source: str, slowloris: bool) -> socket.socket | str:
    """A connected socket, or the name of the error that stopped it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.bind((source, 0))
        sock.connect((host, port))
        if slowloris:
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: node\r\n")
    except OSError as exc:
        sock.close()
        return type(exc).__name__
    sock.setblocking(False)
    return sock


def attack(host, port, sources, idle, slowloris, stop, ready, results) -> None:
    """Hold ``idle`` + ``slowloris`` connections open until ``stop`` is set."""
    selector = selectors.DefaultSelector()
    kinds = [False] * idle + [True] * slowloris
    reopen_at: dict[int, float] = {}  # index -> when to reopen
    opened_at: dict[int, float] = {}
    stats = {"opened": 0, "failed_connects": 0, "closed_by_node": 0, "closed_within_1s": 0}
    next_line: dict[int, float] = {}

    def open_one(index: int) -> None:
        sock = _open(host, port, sources[index % len(sources)], kinds[index])
        if isinstance(sock, str):
            stats["failed_connects"] += 1
            stats[f"failed_{sock}"] = stats.get(f"failed_{sock}", 0) + 1
            reopen_at[index] = time.monotonic() + REOPEN_SECONDS
            return
        stats["opened"] += 1
        opened_at[index] = time.monotonic()
        selector.register(sock, selectors.EVENT_READ, index)
        if kinds[index]:
            next_line[index] = time.monotonic() + SLOWLORIS_LINE_SECONDS

    for index in range(len(kinds)):
        open_one(index)
    ready.set()
    while not stop.is_set():
        for key, _ in selector.select(timeout=0.1):
            index = key.data
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if data:  # an answer (408, say): the node closes after it
                continue
            selector.unregister(key.fileobj)
            key.fileobj.close()
            stats["closed_by_node"] += 1
            if time.monotonic() - opened_at[index] < 1.0:
                stats["closed_within_1s"] += 1
            next_line.pop(index, None)
            reopen_at[index] = time.monotonic() + REOPEN_SECONDS
        now = time.monotonic()
        for index, when in list(reopen_at.items()):
            if when <= now:
                del reopen_at[index]
                open_one(index)
        for key in list(selector.get_map().values()):
            index = key.data
            if index in next_line and next_line[index] <= now:
                next_line[index] = now + SLOWLORIS_LINE_SECONDS
                try:
                    key.fileobj.send(b"X-Slow: %d\r\n" % int(now))
                except OSError:
                    pass
    # Count what the node still holds: take in the closes of the last moment first.
    settle = time.monotonic() + 0.5
    while time.monotonic() < settle:
        for key, _ in selector.select(timeout=0.1):
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                key.fileobj.close()
    stats["open_at_end"] = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    results.put(stats)


# ------------------------------------------------------------------ client


class Client:
    """One request at a time from ``source``, on a new or a kept connection."""

    def __init__(self, host: str, port: int, source: str, timeout: float):
        self.host, self.port, self.source, self.timeout = host, port, source, timeout
        self.kept: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout, source_address=(self.source, 0)
        )

    def request(self, method, path, body, headers, keep_alive: bool) -> tuple[float, str | None]:
        """(seconds, None) on a 200, else (seconds, what went wrong)."""
        started = time.perf_counter()
        for attempt in (1, 2):
            conn = self.kept if keep_alive and self.kept is not None else self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                answer = conn.getresponse()
                answer.read()
                if keep_alive and not answer.will_close:
                    self.kept = conn
                else:
                    conn.close()
                    self.kept = None
                status = None if answer.status == 200 else f"status {answer.status}"
                return time.perf_counter() - started, status
            except TimeoutError:
                conn.close()
                self.kept = None
                return time.perf_counter() - started, "timeout"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # A kept connection the node closed meanwhile: reconnect once.
                if keep_alive and self.kept is not None and attempt == 1:
                    self.kept = None
                    continue
                self.kept = None
                return time.perf_counter() - started, type(exc).__name__
        raise AssertionError("unreachable")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(client: Client, routes, requests: int, budget: float, pause: float) -> list[dict]:
    rows = []
    for name, method, path, body, headers in routes:
        for keep_alive in (False, True):
            client.kept = None
            latencies, failures, timeouts = [], 0, 0
            deadline = time.monotonic() + budget
            for _ in range(requests):
                seconds, problem = client.request(method, path, body, headers, keep_alive)
                latencies.append(seconds)
                timeouts += problem == "timeout"
                failures += problem is not None and problem != "timeout"
                if time.monotonic() > deadline:
                    break
                time.sleep(pause)
            if client.kept is not None:
                client.kept.close()
            rows.append(
                {
                    "route": name,
                    "connection": "keep-alive" if keep_alive else "new",
                    "sent": len(latencies),
                    "p50_ms": percentile(latencies, 0.5) * 1000,
                    "p99_ms": percentile(latencies, 0.99) * 1000,
                    "max_ms": max(latencies) * 1000,
                    "timeouts": timeouts,
                    "failures": failures,
                }
            )
            row = rows[-1]
            print(
                f"    {name:<12} {row['connection']:<10} p50 {row['p50_ms']:9.1f} ms  "
                f"p99 {row['p99_ms']:9.1f} ms  max {row['max_ms']:9.1f} ms  "
                f"timeouts {timeouts}  failures {failures}  ({len(latencies)} sent)",
                flush=True,
            )
    return rows


def run_scenario(name, sources, args, host, port, client, routes) -> tuple[list[dict], dict]:
    print(f"\n{name}", flush=True)
    if not sources:
        return measure(client, routes, args.requests, args.budget, args.pause), {}
    context = multiprocessing.get_context("spawn")
    stop, ready, results = context.Event(), context.Event(), context.Queue()
    attacker = context.Process(
        target=attack,
        args=(host, port, sources, args.idle, args.slowloris, stop, ready, results),
        daemon=True,
    )
    attacker.start()
    try:
        ready.wait(120)
        time.sleep(2)  # let the node take them all in
        rows = measure(client, routes, args.requests, args.budget, args.pause)
    finally:
        stop.set()
    stats = results.get(timeout=30)
    attacker.join(10)
    print(f"    attacker: {stats}", flush=True)
    time.sleep(args.idle_timeout_wait)
    return rows, stats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running node (else use --start)")
    parser.add_argument("--start", action="store_true", help="start a node in a temporary folder")
    parser.add_argument("--bot-token", default="123456:BENCH-bot-token")
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--slowloris", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200, help="per route and connection kind")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout, seconds")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds at most per row")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.05,
        help="seconds between the client's requests (the defaults make a scenario last "
        "longer than the node's header timeout, so slowloris connections get timed out)",
    )
    parser.add_argument("--client-address", default="127.0.0.2")
    parser.add_argument(
        "--idle-timeout-wait",
        type=float,
        default=3.0,
        help="pause between scenarios so the node drops the last one's connections",
    )
    args = parser.parse_args()
    if not args.url and not args.start:
        parser.error("give --url or --start")
    node: Node | None = None
    url = args.url
    if args.start:
        home = Path(tempfile.mkdtemp(prefix="ksnode-bench-")) / "var"
        node, _ = start(node_env(home, args.bot_token))
        wait_settled(node)
        url = node.url
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    try:
        user = str(int(time.time() * 1000))
        auth = {"Authorization": bearer_header(user, args.bot_token)}
        keys = seed(url, auth)
        v1_body = json.dumps({"auth_type": "telegram", "public_key": keys["v1"]})
        routes = [
            ("GET /status", "GET", "/status", None, {}),
            (
                "v1 get",
                "POST",
                "/keyshare/v1/",
                v1_body,
                {**auth, "Content-Type": "application/json"},
            ),
        ]
        client = Client(host, port, args.client_address, args.timeout)
        measure(client, routes, 20, 10, 0.01)  # warm-up, unmeasured
        results = []
        for name, sources in (
            ("baseline (no other connections)", []),
            (
                f"{args.idle} idle + {args.slowloris} slowloris from one address",
                ["127.0.0.10"],
            ),
            (
                f"{args.idle} idle + {args.slowloris} slowloris from ten addresses",
                [f"127.0.0.{n}" for n in range(11, 21)],
            ),
        ):
            rows, stats = run_scenario(name, sources, args, host, port, client, routes)
            results.append((name, rows, stats))
    finally:
        if node is not None:
            remove(node)
    print(f"\ncores: {os.cpu_count()}; client timeout {args.timeout:.0f} s")
    print(
        f"{'scenario':<48}{'route':<13}{'conn':<11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'timeouts':>9}{'failed':>7}"
    )
    for name, rows, _ in results:
        for row in rows:
            print(
                f"{name[:47]:<48}{row['route']:<13}{row['connection']:<11}{row['p50_ms']:9.1f}"
                f"{row['p99_ms']:9.1f}{row['max_ms']:9.1f}{row['timeouts']:>6}/{row['sent']:<3}"
                f"{row['failures']:>6}"
            )


if __name__ == "__main__":
    main()
