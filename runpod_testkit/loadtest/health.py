"""A background greenlet sampling /health (queue depth, workers by state) into JobStats.

One sampler per run: it runs on the master (or the single process), never on workers. Its
requests are named "health" in Locust's table; each sample also feeds JobStats' health series.
"""

from __future__ import annotations

import gevent

from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.caller import EndpointCaller
from runpod_testkit.operations import OPERATIONS

__all__ = ["HealthSampler"]

HEALTH = OPERATIONS["health"]


class HealthSampler:
    def __init__(self, caller: EndpointCaller, stats: JobStats, interval_s: float) -> None:
        self.caller = caller
        self.stats = stats
        self.interval_s = interval_s
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None and self.interval_s > 0:
            self._greenlet = gevent.spawn(self._loop)

    def stop(self, *, last_sample: bool = False) -> None:
        """Stop sampling; with `last_sample`, take one more (the state the run left behind)."""
        if self._greenlet is None:
            return
        self._greenlet.kill(block=True)
        self._greenlet = None
        if last_sample:
            self.sample()

    def sample(self) -> None:
        verdict = self.caller.call(HEALTH)
        if verdict.usable:
            self.stats.record_health(verdict.body)

    def _loop(self) -> None:
        while True:
            self.sample()
            gevent.sleep(self.interval_s)
