"""The api program's pool parent: forks the worker processes and supervises
them (server.py runs one worker per slot; handover.py replaces them all on a
reload)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from enum import Enum

from services.api.server.balance import ABSENT, ConnectionTable
from services.api.server.handover import READY_SECONDS

WORKER_STOP_SECONDS = 15


class PoolState(Enum):
    """What the pool's parent is doing; set by its signal handlers."""

    SERVING = "serving"  # supervising: a worker that dies is replaced
    RELOAD_REQUESTED = "reload_requested"  # SIGHUP: hand over to a fresh image (handover.py)
    STOPPING = "stopping"  # SIGTERM/SIGINT: stop every worker, replace none


class Retirement(Enum):
    """The previous image's workers after a reload (handover.py)."""

    NONE = "none"  # there are none
    WAITING = "waiting"  # they serve on until all of ours do (or READY_SECONDS pass)
    SIGNALLED = "signalled"  # SIGTERM sent; they finish their requests and exit


class WorkerPool:
    """Fork and supervise the worker processes (parent side).

    Each worker owns a slot (0..count-1) in the connection table; a worker
    that dies is replaced in the same slot, which is cleared meanwhile.
    """

    def __init__(self, count: int, run_worker, table: ConnectionTable, log: logging.Logger):
        self.count = count
        self.run_worker = run_worker  # called with the slot, in the child
        self.table = table
        self.log = log
        self.slots: dict[int, int] = {}  # pid -> slot
        self.state = PoolState.SERVING
        self.retirement = Retirement.NONE
        self.retiring: set[int] = set()  # the previous image's workers, until they exit
        self._retire_after = 0.0  # while WAITING: retire them anyway after this

    @property
    def stopping(self) -> bool:
        return self.state is PoolState.STOPPING

    @property
    def reload_requested(self) -> bool:
        return self.state is PoolState.RELOAD_REQUESTED

    def spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the parent's
                self.run_worker(slot)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported, then the worker dies
                self.log.exception("api worker crashed", extra={"event": "api.worker_crashed"})
                code = 1
            os._exit(code)
        self.slots[pid] = slot

    def request_reload(self, *_args) -> None:
        if self.state is PoolState.SERVING:
            self.state = PoolState.RELOAD_REQUESTED

    def reload_taken(self) -> None:
        """The program acts on the reload; a SIGHUP from now on asks again."""
        if self.state is PoolState.RELOAD_REQUESTED:
            self.state = PoolState.SERVING

    def retire_when_ready(self) -> None:
        """SIGTERM the previous image's workers once every new one is serving."""
        if not self.retiring or self.retirement is not Retirement.WAITING:
            return
        serving = all(count != ABSENT for count in self.table.counts())
        if serving or time.monotonic() > self._retire_after:
            for pid in self.retiring:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.retirement = Retirement.SIGNALLED
            self.log.info(
                "api reloaded: previous workers stopping",
                extra={"event": "api.handover_done", "previous": sorted(self.retiring)},
            )

    def stop(self, *_args) -> None:
        self.state = PoolState.STOPPING
        for pid in [*self.slots, *self.retiring]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def start(self, previous_workers: list[int] | None = None) -> None:
        """Fork the workers; ``previous_workers`` (a reload's) are stopped
        once the new ones serve."""
        self.retiring = set(previous_workers or ())
        self.retirement = Retirement.WAITING if self.retiring else Retirement.NONE
        self._retire_after = time.monotonic() + READY_SECONDS
        for slot in range(self.count):
            self.spawn(slot)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def supervise(self) -> None:
        """Supervise until stopped, or until a reload is requested (the
        workers then keep running for the next image to retire)."""
        deadline = None
        while self.slots or self.retiring:
            if self.reload_requested and not self.retiring:
                return
            self.retire_when_ready()
            if self.stopping and deadline is None:
                deadline = time.monotonic() + WORKER_STOP_SECONDS
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if deadline is not None and time.monotonic() > deadline:
                    for straggler in [*self.slots, *self.retiring]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(straggler, signal.SIGKILL)
                time.sleep(0.1)
                continue
            self.retiring.discard(pid)
            slot = self.slots.pop(pid, None)
            if slot is None:
                continue
            self.table.clear(slot)
            if not self.stopping:
                self.log.error(
                    "api worker exited, restarting it",
                    extra={
                        "event": "api.worker_exited",
                        "pid": pid,
                        "slot": slot,
                        "status": os.waitstatus_to_exitcode(status),
                    },
                )
                time.sleep(0.5)
                self.spawn(slot)
