"""A longer ADMIN_BACKOFF_MAX_SECONDS never lets a guesser check more
passwords: the counts that caused a wait outlive it (they were forgotten 900 s
after the last check, so a wait of an hour reset them to 5 + 20 free guesses)."""

from __future__ import annotations

from services.api.routes.admin_backoff import AdminBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def checks_in(seconds: float, cap: float) -> int:
    """Password checks one client gets by retrying as soon as it is let."""
    clock = Clock()
    backoff = AdminBackoff(cap, slots=64, clock=clock)
    end, checks = clock.now + seconds, 0
    while clock.now < end:
        wait = backoff.admit("203.0.113.9")
        if wait == 0:
            checks += 1
            clock.now += 0.01
        else:
            clock.now += wait
    return checks


def test_a_longer_cap_means_fewer_checks():
    six_hours = 6 * 3600
    short, long, longest = (checks_in(six_hours, cap) for cap in (300, 3600, 86400))
    assert long < short and longest <= long
    assert longest <= 30  # the free guesses and a handful of long waits


def test_a_wait_longer_than_fifteen_minutes_keeps_the_count():
    clock = Clock()
    backoff = AdminBackoff(3600, slots=64, clock=clock)
    while backoff.admit("198.51.100.1") == 0:
        clock.now += 0.01
    clock.now += 3600  # the whole (capped) wait, far past 900 s
    assert backoff.admit("198.51.100.1") == 0  # one check, then waiting again
    assert backoff.admit("198.51.100.1") > 0


def test_a_quiet_client_is_forgotten_after_the_longest_wait():
    clock = Clock()
    backoff = AdminBackoff(300, slots=64, clock=clock)
    while backoff.admit("198.51.100.2") == 0:
        clock.now += 0.01
    clock.now += 300 + 900  # the cap, then the quiet time
    for _ in range(5):  # a fresh client's free checks
        assert backoff.admit("198.51.100.2") == 0
