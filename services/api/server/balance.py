"""Spread client connections evenly over the API worker processes.

All workers accept on one shared listening socket. Left alone, whichever
worker wakes first takes the connection, so a burst of keep-alive
connections (a wallet backend, a proxy, a load test) often lands mostly on
one worker: that worker is held to one core by the GIL while the others
idle, and its clients see several times the latency.

Each worker publishes how many connections it holds in a small shared
table and only listens for new ones while no other live worker holds
fewer. Ties all listen, so at least the least-loaded worker always
accepts. A worker's entry carries the time it was last written; entries
older than ``STALE_SECONDS`` (a dead, stopped or hung worker: a live one
rewrites its entry at least once per event-loop pass, and an idle pass
ends after ``STOP_CHECK_SECONDS``) are ignored, so they can never stop the others
from accepting.

A worker decides whether to listen when its event-loop pass starts, and
keeps that choice while it waits for events. So when the worker that
listens accepts a connection and now holds more than another, it must wake
the others: the least loaded one may be waiting without listening (it held
more when its pass started). Each worker has a wake-up pipe in the table
for this; a worker that stops listening writes to every other worker's,
and so does the parent when a worker dies.
Without it nobody listened until an idle worker's wait ran out (up to
``STOP_CHECK_SECONDS``), once every other connection: a burst of 350 idle
connections kept every new client waiting for about 40 s (issue 12).

Keep-alive connections that were accepted unevenly anyway (a worker that
started late, or replaced one that died, finds the others holding every
connection) are moved over time: a worker holding two or more connections
above the least loaded one answers its next request with ``Connection:
close``, a clean close the client follows by reconnecting, and the new
connection goes where there is room. A client reconnects only when it next
needs the connection, so a worker sheds at most one connection per
``SHED_INTERVAL_SECONDS``: it must not close many before the first has
landed elsewhere.

``BalancedServer`` is the waitress server the API workers run; it also
sends small responses in one write (see its ``__init__``).
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.task import WSGITask
from waitress.wasyncore import file_dispatcher

from services.api.server.connection_metrics import ConnectionMetrics
from services.api.server.limits import ClientTable, ConnectionLimits, GuardedChannel, GuardedServer

ENTRY = struct.Struct("=id")  # connections held, monotonic time written
STALE_SECONDS = 3.0
ABSENT = -1
STOP_CHECK_SECONDS = 0.5
SHED_INTERVAL_SECONDS = 0.5
# A stopping worker closes an idle connection only after this long without
# traffic. A proxy's keep-alive pool may send a request on an idle connection
# at any moment, and nginx never retries a POST on another: closing it under
# that request loses the request (issue 26). So idle connections stay open
# until the proxy closes them (nginx: upstream keepalive_timeout, 4 s in
# deploy/nginx/ksnode.conf) or use them, and get "Connection: close" then.
DRAIN_QUIET_SECONDS = 5.0
SEND_BUFFER_BYTES = 18000  # larger responses still go out from the request thread


class ConnectionTable:
    """Per-worker connection counts in memory shared across fork(), and
    the per-client-address counts of limits.py (``clients``)."""

    def __init__(self, workers: int, *, clock=time.monotonic):
        self.workers = workers
        self._clock = clock
        self._memory = mmap.mmap(-1, ENTRY.size * workers)  # MAP_SHARED | MAP_ANONYMOUS
        # (read end, write end) per slot; non-blocking: a full pipe already
        # holds a pending wake-up.
        self._wake = [os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC) for _ in range(workers)]
        for slot in range(workers):
            ENTRY.pack_into(self._memory, slot * ENTRY.size, ABSENT, 0.0)
        self.clients = ClientTable(workers)

    def clear(self, slot: int) -> None:
        """Mark a slot as having no live worker (the parent calls this when
        one exits, a worker when it stops accepting) and wake the others:
        one of them may be waiting without listening because this one held
        fewer connections."""
        ENTRY.pack_into(self._memory, slot * ENTRY.size, ABSENT, 0.0)
        self.wake_others(slot)

    def publish(self, slot: int, connections: int) -> None:
        ENTRY.pack_into(self._memory, slot * ENTRY.size, connections, self._clock())

    def counts(self) -> list[int]:
        """Live workers' connection counts by slot; ABSENT for dead or stale ones."""
        now = self._clock()
        result = []
        for slot in range(self.workers):
            connections, written = ENTRY.unpack_from(self._memory, slot * ENTRY.size)
            fresh = connections != ABSENT and now - written <= STALE_SECONDS
            result.append(connections if fresh else ABSENT)
        return result

    def may_accept(self, slot: int, connections: int) -> bool:
        """Publish this worker's count; True unless another live worker holds fewer."""
        self.publish(slot, connections)
        others = self._others(slot)
        return not others or connections <= min(others)

    def holds_too_many(self, slot: int, connections: int) -> bool:
        """True when this worker holds two or more connections above the least loaded other."""
        others = self._others(slot)
        return bool(others) and connections >= min(others) + 2

    def wake_fd(self, slot: int) -> int:
        """The file descriptor a worker watches for wake-ups by the others."""
        return self._wake[slot][0]

    def wake_others(self, slot: int) -> None:
        for index, (_, write_end) in enumerate(self._wake):
            if index != slot:
                try:
                    os.write(write_end, b"w")
                except BlockingIOError:
                    pass

    def _others(self, slot: int) -> list[int]:
        return [
            count for index, count in enumerate(self.counts()) if index != slot and count != ABSENT
        ]


class SheddingTask(WSGITask):
    """Closes its connection after the response while its worker holds too many."""

    def build_response_header(self):
        if self.channel.server.should_shed():
            # As if the client had asked: waitress then answers with
            # "Connection: close" (HTTP/1.0 and 1.1 alike) and closes after it.
            self.request.headers["CONNECTION"] = "close"
        keep_open = self._bodiless_keep_alive()
        head = super().build_response_header()
        if keep_open and self.close_on_finish:
            # waitress 3.0 closes after every HTTP/1.1 answer without a
            # Content-Length, even a 204 or 304, whose end is known without
            # one (RFC 9112 §6.3): a CORS preflight would cost the browser (or
            # the proxy's upstream pool) a new connection each time. The
            # reference keeps it open; so do we.
            self.close_on_finish = False
            head = head.replace(b"\r\nConnection: close\r\n", b"\r\n", 1)
        return head

    def _bodiless_keep_alive(self) -> bool:
        """An HTTP/1.1 answer with no body (204, 304) that nobody asked to close."""
        return (
            self.version == "1.1"
            and not self.has_body
            # the stubs type a task's request as waitress's Error; it is the parser
            and self.request.headers.get("CONNECTION", "").lower() != "close"  # type: ignore[attr-defined]
            and not any(name.lower() == "connection" for name, _ in self.response_headers)
        )


class BalancedChannel(GuardedChannel):
    task_class = SheddingTask


class WakeUp(file_dispatcher):
    """A worker's end of its wake-up pipe: being woken is the whole message
    (the next event-loop pass looks at the table again)."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        try:
            while self.recv(4096):
                pass
        except BlockingIOError:
            pass


class BalancedServer(GuardedServer):
    """waitress's TCP server that listens only while it is among the least
    loaded, and sheds connections while it holds too many; with the
    connection limits of limits.py."""

    channel_class = BalancedChannel

    def __init__(
        self,
        application,
        sock,
        *,
        table: ConnectionTable,
        slot: int,
        limits: ConnectionLimits | None = None,
        metrics: ConnectionMetrics | None = None,
        **adjustments,
    ):
        self.table = table
        self._last_shed = float("-inf")
        self._draining = False
        self._listening = False
        limits = limits or ConnectionLimits()
        self.guard(limits, table.clients, slot, metrics)
        adj = Adjustments(sockets=[sock], **{**adjustments, **limits.adjustments()})
        # waitress sends a response's head and then its body from the request
        # thread as soon as each is written: two TCP segments per small JSON
        # answer. Below this size they wait in the buffer and the event loop
        # sends them in one. Measured on 2 cores, GET /status p99 went from
        # ~11 ms to ~6 ms. (Set as an attribute: the keyword is deprecated.)
        adj.send_bytes = SEND_BUFFER_BYTES
        sockinfo = (sock.family, sock.type, sock.proto, sock.getsockname())
        super().__init__(application, {}, True, sock, adj=adj, bind_socket=False, sockinfo=sockinfo)
        # waitress's file_dispatcher takes a file descriptor (waitress/wasyncore.py);
        # types-waitress says BytesIO.
        WakeUp(table.wake_fd(slot), map=self._map)  # type: ignore[arg-type]

    def should_shed(self) -> bool:
        if self._draining:
            # Stopping: each response closes its connection, so the client's
            # next request opens a new one, which a live worker accepts.
            return True
        now = time.monotonic()
        if now - self._last_shed < SHED_INTERVAL_SECONDS:
            return False
        if not self.table.holds_too_many(self.slot, len(self.active_channels)):
            return False
        self._last_shed = now
        return True

    def serve_until(self, stop: threading.Event, *, drain_seconds: float) -> None:
        """Serve until ``stop`` is set; then stop accepting (in this process
        only: the other workers keep the socket) and let the requests in
        progress finish, for at most ``drain_seconds``.

        waitress's own ``run()`` loops until its map is empty, which idle
        keep-alive connections never let happen; and closing the server from
        a signal handler, while the loop may be walking the map, is unsafe.
        So the handler only sets ``stop`` and this loop looks at it after
        every pass; an idle pass waits at most ``STOP_CHECK_SECONDS``.
        """

        def one_pass() -> None:
            self.asyncore.loop(
                timeout=STOP_CHECK_SECONDS,
                map=self._map,
                use_poll=self.adj.asyncore_use_poll,
                count=1,
            )

        while not stop.is_set():
            one_pass()
        self._draining = True
        self.table.clear(self.slot)  # no longer a candidate for new connections
        # Stop accepting, but keep the trigger open: waitress's close() would
        # close it too, and every request still in progress would then fail
        # with EBADF when it wakes the loop to send its answer.
        wasyncore.dispatcher.close(self)
        deadline = time.monotonic() + drain_seconds
        while self._busy() and time.monotonic() < deadline:
            one_pass()

    def _busy(self) -> bool:
        """A request is in progress, or a connection was active too recently
        to close safely: one answered with keep-alive just before the stop,
        or just accepted, may be carrying a request that is still on its way
        (it will be answered, with ``Connection: close``)."""
        recent = time.time() - DRAIN_QUIET_SECONDS  # waitress stamps channels with time.time()
        return any(
            channel.requests
            or channel.request is not None
            or channel.total_outbufs_len
            or channel.last_activity > recent
            for channel in list(self.active_channels.values())
        )

    def readable(self) -> bool:
        listening = super().readable()
        # Called once per event-loop pass: the count stays fresh even when not listening.
        listening = self.table.may_accept(self.slot, len(self.active_channels)) and listening
        if self._listening and not listening:
            # The count is published: a woken worker sees it (see the module doc).
            self.table.wake_others(self.slot)
        self._listening = listening
        return listening
