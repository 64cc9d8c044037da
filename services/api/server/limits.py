"""What one client connection may cost the API, enforced by the server
before the application sees a request.

* One client address holds at most ``per_client`` connections across all
  workers (IPv6 clients count per /64, the block one subscriber gets);
  beyond it a new connection is reset as soon as it is accepted. Each
  worker counts its own connections per address in a shared table
  (``ClientTable``), so the cap is node-wide. Two workers accepting from
  the same address at the same instant can let it exceed the cap by one.
* A request's head must arrive within ``header_timeout`` seconds of its
  first byte and the whole request within twice that; otherwise the
  client gets a 408 in the JSON envelope and the connection is closed
  (slowloris: a few header bytes every few seconds, never finishing).
* A connection with no request in progress is closed after
  ``idle_timeout`` seconds without traffic (waitress's ``channel_timeout``);
  one receiving a request is under the timeouts above instead.
* A body larger than the API accepts is refused by waitress before it is
  read (``max_request_body_size``; see ``adjustments``).

Timeouts are checked once a second, so they fire up to a second late.
"""

from __future__ import annotations

import ipaddress
import mmap
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer

from services.api.server.connection_metrics import ConnectionMetrics, RefusalLog
from services.api.server.http_errors import (
    MAX_HEADER_BYTES,
    CountedErrorTask,
    EnvelopeParser,
    request_timeout,
)
from services.api.web.body import MAX_BODY_BYTES
from services.api.web.ratelimit import is_trusted_proxy
from shared.config import Config

BUCKETS = 1 << 16  # per worker; 256 KiB of shared memory each
COUNT_BYTES = 4
# waitress counts a chunked body's framing (chunk sizes, CRLFs) against its
# limit: leave room for it so that a chunked body the API would take is not
# refused early. A Content-Length in this margin is read and then refused
# by the application (Flask's MAX_CONTENT_LENGTH), still with a 413.
FRAMING_MARGIN_BYTES = 4096
CHECK_INTERVAL_SECONDS = 1
RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s


@dataclass(frozen=True)
class ConnectionLimits:
    per_client: int = 100  # 0: no cap
    header_timeout: float = 10.0
    idle_timeout: int = 60
    # Peers the cap does not apply to: behind trusted proxies (TRUST_PROXY_HOPS)
    # every connection of a proxy's upstream pool serves all its clients at
    # once, and a cap on it would answer end users 502 (issue 26); the proxy
    # limits each forwarded client (deploy/nginx/ksnode.conf, ``limit_conn``).
    # Any other peer (the port reached directly) keeps the cap.
    exempt: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> ConnectionLimits:
        return cls(
            per_client=config.api_max_connections_per_client,
            header_timeout=config.api_header_timeout_seconds,
            idle_timeout=config.api_idle_timeout_seconds,
            exempt=config.trusted_proxies if config.trust_proxy_hops > 0 else (),
        )

    def adjustments(self) -> dict[str, object]:
        """waitress settings that carry these limits."""
        return {
            "channel_timeout": self.idle_timeout,
            "cleanup_interval": CHECK_INTERVAL_SECONDS,
            "max_request_body_size": MAX_BODY_BYTES + FRAMING_MARGIN_BYTES,
            "max_request_header_size": MAX_HEADER_BYTES,
            # select() fails outright on a descriptor above 1024; poll() does not.
            "asyncore_use_poll": True,
        }


def client_bucket(host: str) -> int:
    """The shared-table bucket of a client address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        key = host.encode()
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        key = address.packed[:8]  # all of IPv4; an IPv6 /64
    return zlib.crc32(key) % BUCKETS


class ClientTable:
    """Connections held per client-address bucket, one row per worker, in
    memory shared across fork(). A worker writes only its own row; the cap
    looks at the sum. Distinct addresses rarely share a bucket (then they
    share the cap)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._memory = mmap.mmap(-1, COUNT_BYTES * BUCKETS * workers)
        self._counts = memoryview(self._memory).cast("i")
        self._lock = threading.Lock()

    def reset(self, slot: int) -> None:
        """Forget a slot's counts (a worker starting in it: its predecessor's are gone)."""
        start = slot * BUCKETS * COUNT_BYTES
        self._memory[start : start + BUCKETS * COUNT_BYTES] = bytes(BUCKETS * COUNT_BYTES)

    def held(self, bucket: int) -> int:
        return sum(self._counts[slot * BUCKETS + bucket] for slot in range(self.workers))

    def add(self, slot: int, bucket: int, delta: int) -> None:
        with self._lock:
            self._counts[slot * BUCKETS + bucket] += delta


class GuardedChannel(HTTPChannel):
    """A connection that answers in the envelope, can be timed out, and
    gives its place under the per-client cap back when it closes."""

    parser_class = EnvelopeParser
    error_task_class = CountedErrorTask
    client_bucket: int | None = None
    timed_out = False
    # What waitress's channel really has (waitress/channel.py) and its stubs
    # leave out or type as read-only (types-waitress: ``Sequence``).
    requests_lock: threading.Lock
    requests: list[HTTPRequestParser]
    request: EnvelopeParser | None  # made by parser_class

    def readable(self) -> bool:
        # After a timeout only the 408 goes out; nothing more is read.
        return not self.timed_out and super().readable()

    def time_out(self, seconds: float) -> bool:
        """Answer the request being received with 408 and close (event-loop
        thread); False if there was nothing to time out."""
        with self.requests_lock:
            if self.request is None or self.requests or self.will_close or self.close_when_flushed:
                return False  # nothing being received, or an answer is on its way already
            answer = self.parser_class(self.adj)
            answer.version = "1.1"
            answer.error = request_timeout(seconds)
            answer.completed = True
            self.request = None
            self.timed_out = True
            self.requests.append(answer)
        # A channel is waitress's own task here (it calls ``add_task(self)``
        # too); types-waitress types the argument as Task only.
        self.server.add_task(self)  # type: ignore[arg-type]
        return True

    def del_channel(self, map=None):
        super().del_channel(map)
        if self.client_bucket is not None:
            self.server.clients.add(self.server.slot, self.client_bucket, -1)
            self.client_bucket = None


class GuardedServer(TcpWSGIServer):
    """waitress's TCP server with the limits above. Call ``guard`` before
    ``__init__``; ``slot`` is the worker's row in ``clients``."""

    channel_class = GuardedChannel
    limits = ConnectionLimits()
    clients: ClientTable
    slot: int
    metrics: ConnectionMetrics
    refusals: RefusalLog
    # waitress's own (waitress/wasyncore.py, waitress/server.py), missing or
    # mistyped in types-waitress: the socket map, and the open connections by fd.
    _map: dict[int, Any]  # fd -> dispatcher (the stubs' map type says socket)
    active_channels: dict[int, GuardedChannel]  # type: ignore[assignment]  # stub: HTTPChannel

    def guard(
        self,
        limits: ConnectionLimits,
        clients: ClientTable,
        slot: int,
        metrics: ConnectionMetrics | None = None,
    ) -> None:
        """``metrics`` are the app's (routes/metrics.py); without them the
        counts go to a registry of their own that no scrape shows."""
        self.limits = limits
        self.clients = clients
        self.slot = slot
        self.metrics = metrics or ConnectionMetrics(CollectorRegistry())
        self.refusals = RefusalLog(limits.per_client)
        clients.reset(slot)

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
        except OSError:
            # The client may have reset before we got to it; nothing to do.
            if self.adj.log_socket_errors:
                self.logger.warning("server accept() threw an exception", exc_info=True)
            return
        if accepted is None:  # another worker took it
            return
        conn, addr = accepted
        bucket = None
        exempt = self.limits.exempt
        if self.limits.per_client > 0 and not (exempt and is_trusted_proxy(str(addr[0]), exempt)):
            bucket = client_bucket(str(addr[0]))
            if self.clients.held(bucket) >= self.limits.per_client:
                # A reset, not a FIN: no TIME_WAIT left behind per refusal.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
                conn.close()
                self.metrics.refused.inc()
                self.refusals.note(str(addr[0]))
                return
        try:
            self.set_socket_options(conn)
            channel = self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)
        except OSError:
            conn.close()
            return
        if bucket is not None:
            self.clients.add(self.slot, bucket, 1)
            channel.client_bucket = bucket

    def maintenance(self, now: float) -> None:
        """waitress's idle check (``now`` is its wall clock), and ours for
        requests that arrive too slowly; a connection being answered is
        left alone."""
        idle_cutoff = now - self.adj.channel_timeout
        allowed = self.limits.header_timeout
        clock = time.monotonic()
        for channel in list(self.active_channels.values()):
            if channel.requests:
                continue
            request = channel.request
            if request is None:
                if channel.last_activity < idle_cutoff and not channel.will_close:
                    channel.will_close = True  # closed at once by the event loop
                    self.metrics.timed_out.labels("idle").inc()
                continue
            limit = allowed * 2 if request.headers_finished else allowed
            if clock - request.started > limit and channel.time_out(limit):
                reason = "request" if request.headers_finished else "header"
                self.metrics.timed_out.labels(reason).inc()
        self.refusals.flush()  # the refusals of a burst's last seconds
