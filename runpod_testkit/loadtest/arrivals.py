"""The open model: jobs arrive at a fixed mean rate (a Poisson process), whatever the completions.

Locust alone is a closed model: each user submits its next job when the previous one ends, so a
slow endpoint slows the offered load and hides its own queueing. Here one scheduler greenlet per
process draws exponential gaps and hands each arrival, at its intended time, to an idle user
(users become the pool that carries jobs). An arrival with no idle user, or with the in-flight
cap reached, is counted as "dropped"; one that is sent more than LATE_AFTER_S after its intended
time as "late". e2e and ttfc count from the intended time, so generator lag shows in them too.

Distributed: each process offers `rate * its users / all users`, so the rates add up to the
total (and ramp up with the users); the in-flight cap is split the same way.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import gevent
from gevent.event import AsyncResult

from runpod_testkit.stats.names import DROPPED, LATE
from runpod_testkit.stats.recorder import JobStats

__all__ = ["LATE_AFTER_S", "Arrivals", "Ticket"]

LATE_AFTER_S = 0.1
_IDLE_POLL_S = 0.05


@dataclass(frozen=True)
class Ticket:
    intended_at: float
    """Epoch seconds at which the job should have been sent."""


class Arrivals:
    def __init__(
        self,
        stats: JobStats,
        rate: float,
        max_in_flight: int | None,
        share: Callable[[], float],
        rng: random.Random | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = gevent.sleep,
    ) -> None:
        self.stats = stats
        self.rate = rate
        self.max_in_flight = max_in_flight
        self.share = share
        """This process's share of the users, 0..1 (1 when it runs alone)."""
        self.busy = 0
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._idle: deque[AsyncResult] = deque()
        self._greenlet: gevent.Greenlet | None = None
        self._stopped = False

    def start(self) -> gevent.Greenlet:
        """Start the scheduler greenlet (returned, for joining)."""
        self._stopped = False
        self._greenlet = gevent.spawn(self._schedule)
        return self._greenlet

    def stop(self) -> None:
        """No more arrivals; idle users get None."""
        self._stopped = True
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.kill(block=False)
        while self._idle:
            self._idle.popleft().set(None)

    # ---- the users' side

    def take(self) -> Ticket | None:
        """Wait (as an idle user) for the next arrival; None once stopped."""
        if self._stopped:
            return None
        waiter = AsyncResult()
        self._idle.append(waiter)
        received = False
        try:
            ticket: Ticket | None = waiter.get()
            received = True
            return ticket
        finally:
            if not received:  # the user was killed while waiting
                if waiter in self._idle:
                    self._idle.remove(waiter)
                elif waiter.ready() and waiter.value is not None:
                    self.release()  # handed a ticket it will never carry
                    self.stats.record_outcome(DROPPED)

    def sent(self, ticket: Ticket, at: float | None = None) -> None:
        """The job of `ticket` is being sent now: count it as late if it is."""
        if (self._clock() if at is None else at) - ticket.intended_at > LATE_AFTER_S:
            self.stats.record_outcome(LATE)

    def release(self) -> None:
        """The job of a ticket ended (or never started)."""
        self.busy = max(0, self.busy - 1)

    # ---- the scheduler

    def _cap(self, share: float) -> float:
        if self.max_in_flight is None:
            return math.inf
        return max(1, math.ceil(self.max_in_flight * share))

    def _schedule(self) -> None:
        intended = self._clock()
        while not self._stopped:
            share = min(1.0, max(0.0, self.share()))
            if share <= 0 or self.rate <= 0:
                self._sleep(_IDLE_POLL_S)
                intended = self._clock()
                continue
            intended += self._rng.expovariate(self.rate * share)
            delay = intended - self._clock()
            if delay > 0:
                self._sleep(delay)
            self._arrive(Ticket(intended), share)

    def _arrive(self, ticket: Ticket, share: float) -> None:
        while self._idle and self._idle[0].ready():
            self._idle.popleft()
        if not self._idle or self.busy >= self._cap(share):
            self.stats.record_outcome(DROPPED, at=ticket.intended_at)
            return
        self.busy += 1
        self._idle.popleft().set(ticket)
