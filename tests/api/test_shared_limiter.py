"""The cross-process limiter used with API_WORKERS > 1: one budget per client
shared by forked workers."""

import os

from services.api.web.shared_limiter import SharedFixedWindowLimiter


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_counts_hits_from_forked_processes_together():
    limiter = SharedFixedWindowLimiter(100, 60)
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            for _ in range(20):
                limiter.hit("10.0.0.1")
            os._exit(0)
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    decision = limiter.hit("10.0.0.1")
    assert decision.headers["RateLimit-Remaining"] == str(100 - 61)


def test_limit_window_and_headers():
    clock = FakeClock()
    limiter = SharedFixedWindowLimiter(2, 60, clock=clock)
    assert limiter.hit("a").allowed and limiter.hit("a").allowed
    rejected = limiter.hit("a")
    assert not rejected.allowed
    assert rejected.headers["Retry-After"] == "60"
    assert limiter.hit("b").allowed  # other clients unaffected
    clock.now += 60
    fresh = limiter.hit("a")
    assert fresh.allowed and fresh.headers["RateLimit-Remaining"] == "1"


def test_full_table_evicts_oldest_instead_of_failing():
    clock = FakeClock()
    limiter = SharedFixedWindowLimiter(5, 60, slots=4, clock=clock)
    for i in range(10):
        clock.now += 1
        assert limiter.hit(f"client-{i}").allowed
