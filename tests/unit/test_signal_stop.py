"""A program's stop flag survives a SIGTERM that lands while its main thread
is inside ``stop.wait()`` (shared/infra/signalstop.py): the handler used to
call ``Event.set()``, which waited for the lock the interrupted ``wait()``
held, on the same thread, for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from shared.infra.signalstop import SignalStop
from shared.program.runtime import StopFlag

ROOT = Path(__file__).resolve().parents[2]

# The window, made certain: the main thread holds the event's condition
# lock (as Event.wait does between entering and sleeping) when the signal's
# handler runs, at the next bytecode after os.kill.
SIGNAL_INSIDE_WAIT = textwrap.dedent(
    """
    import logging, os, signal
    from shared.program.runtime import StopFlag

    logging.basicConfig(level=logging.INFO)
    stop = StopFlag().install()
    with stop._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))
    print("handler returned", flush=True)
    print("stopped" if stop.wait(10) else "not stopped", flush=True)
    """
)


def test_a_signal_inside_wait_stops_the_program():
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_INSIDE_WAIT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["handler", "returned", "stopped"]
    assert "stop requested" in done.stderr  # logged once seen, outside the handler


def test_the_handler_takes_no_lock():
    stop = SignalStop()
    with stop._cond:  # held, as inside wait(): the handler must not need it
        stop.request(signal.SIGTERM)
    assert stop.signalled == signal.SIGTERM
    assert stop.is_set()
    assert stop.wait(0)


def test_a_waiting_thread_wakes_and_the_request_is_noticed_once():
    seen: list[int] = []

    class Recording(SignalStop):
        def noticed(self, signum: int) -> None:
            seen.append(signum)

    stop = Recording()
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: stop.wait(30) and woke.set())
    waiter.start()
    stop.request(signal.SIGINT)
    waiter.join(10)
    assert woke.is_set()
    assert stop.is_set() and stop.wait(0)
    assert seen == [signal.SIGINT]


def test_wait_times_out_without_a_request():
    stop = SignalStop()
    assert stop.wait(0.05) is False
    assert not stop.is_set()
    stop.set()  # set in code, as before
    assert stop.wait(0) and stop.is_set()


def test_a_real_sigterm_reaches_an_installed_flag():
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = StopFlag().install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
        assert stop.signalled == signal.SIGTERM
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_handling_puts_the_previous_handlers_back():
    def mine(*_args: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        stop = SignalStop()
        with stop.handling(signal.SIGTERM):
            assert signal.getsignal(signal.SIGTERM) == stop.request
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(10)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
