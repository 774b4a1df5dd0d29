"""Self-tests of runpod_testkit.loadtest.arrivals: the open model's scheduler on a virtual clock.

gevent is imported (the hand-off between scheduler and users uses its primitives) but nothing
is monkey-patched, and time is virtual: the injected sleep advances a counter and yields.
"""

from __future__ import annotations

import random

import gevent
import pytest

from runpod_testkit.jobstats import DROPPED, LATE, JobStats
from runpod_testkit.loadtest.arrivals import LATE_AFTER_S, Arrivals, Ticket


class VirtualTime:
    def __init__(self, stop_after: int) -> None:
        self.now = 1_000.0
        self.sleeps = 0
        self.stop_after = stop_after
        self.arrivals: Arrivals | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        gevent.sleep(0)  # let users run
        if self.sleeps >= self.stop_after and self.arrivals is not None:
            self.arrivals.stop()


def scheduler(
    rate: float, *, stop_after: int, max_in_flight: int | None = None, share: float = 1.0
) -> tuple[Arrivals, VirtualTime, JobStats]:
    stats = JobStats()
    time = VirtualTime(stop_after)
    arrivals = Arrivals(
        stats,
        rate,
        max_in_flight,
        lambda: share,
        random.Random(42),
        clock=time.clock,
        sleep=time.sleep,
    )
    time.arrivals = arrivals
    return arrivals, time, stats


def test_without_idle_users_every_arrival_is_dropped() -> None:
    arrivals, time, stats = scheduler(50.0, stop_after=200)
    arrivals.start().join(timeout=10)
    assert stats.outcomes[DROPPED] == time.sleeps == 200
    assert 3.0 < (time.now - 1_000.0) < 5.0  # 200 arrivals at 50/s take about 4 s


def test_tickets_go_to_idle_users_up_to_the_cap() -> None:
    arrivals, _, stats = scheduler(10.0, stop_after=30, max_in_flight=2)
    carried: list[Ticket] = []

    def user() -> None:  # takes one ticket and keeps its job in flight
        ticket = arrivals.take()
        if ticket is not None:
            carried.append(ticket)

    users = [gevent.spawn(user) for _ in range(3)]
    gevent.sleep(0)  # all three wait for work
    greenlet = arrivals.start()
    greenlet.join(timeout=10)
    gevent.joinall(users, timeout=10)
    assert len(carried) == 2  # the cap, not the three idle users, limits it
    assert arrivals.busy == 2
    assert stats.outcomes[DROPPED] == 30 - 2
    assert carried[0].intended_at < carried[1].intended_at


def test_arrivals_are_poisson_at_the_rate_times_the_share() -> None:
    arrivals, time, stats = scheduler(40.0, stop_after=4000, share=0.5)
    arrivals.start().join(timeout=30)
    # Every sleep ends exactly at an intended time, so the clock is the sum of the gaps:
    # exponential draws at 40/s x 0.5 (same seed), about 4000 / 20 = 200 s in all.
    rng = random.Random(42)
    expected = 1_000.0 + sum(rng.expovariate(20.0) for _ in range(4000))
    assert time.now == pytest.approx(expected, abs=1e-6)
    assert abs((time.now - 1_000.0) - 200.0) < 16  # 5 standard deviations
    assert stats.outcomes[DROPPED] == 4000


def test_stop_releases_waiting_users() -> None:
    arrivals, _, _ = scheduler(1.0, stop_after=10**9)
    arrivals.start()
    results: list[Ticket | None] = []
    waiter = gevent.spawn(lambda: results.append(arrivals.take()))
    gevent.sleep(0)
    arrivals.stop()
    waiter.join(timeout=5)
    assert results == [None]
    assert arrivals.take() is None  # after a stop, nobody waits


def test_a_user_killed_while_waiting_leaves_the_pool() -> None:
    arrivals, _, stats = scheduler(10.0, stop_after=5)
    waiter = gevent.spawn(arrivals.take)
    gevent.sleep(0)
    waiter.kill(block=True)
    arrivals.start().join(timeout=10)
    assert stats.outcomes[DROPPED] == 5  # nobody left to take them
    assert arrivals.busy == 0


def test_late_submissions_are_counted() -> None:
    arrivals, _, stats = scheduler(1.0, stop_after=1)
    ticket = Ticket(intended_at=100.0)
    arrivals.sent(ticket, at=100.0 + LATE_AFTER_S / 2)
    assert stats.outcomes.get(LATE, 0) == 0
    arrivals.sent(ticket, at=100.0 + LATE_AFTER_S * 3)
    assert stats.outcomes[LATE] == 1
