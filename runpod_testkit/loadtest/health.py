"""A background greenlet sampling /health (queue depth, workers by state) into JobStats.

One sampler per run: it runs on the master (or the single process), never on workers. Its
requests go to an event hook of its own, not to Locust's `request` event, so they stay out of
Locust's request statistics and its Aggregated row (the load is what the users sent); the
sampler counts them itself (`requests()`), and the job statistics show them apart. Each sample
feeds JobStats' health series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gevent

from runpod_testkit.loadtest.caller import EndpointCaller
from runpod_testkit.operations import OPERATIONS
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.snapshot import HealthRequests

__all__ = ["HealthSampler", "SamplerRequests"]

HEALTH = OPERATIONS["health"]


class SamplerRequests:
    """The request event of the sampler's session, in place of Locust's `request` event:
    FastHttpSession calls `fire(...)` on its request event with the same keywords, and this
    one only counts (no Locust statistics, no Locust listeners)."""

    def __init__(self) -> None:
        self._requests = 0
        self._failures = 0
        self._total_ms = 0.0

    def fire(
        self, *, response_time: float | None = None, exception: object = None, **_kwargs: Any
    ) -> None:
        self._requests += 1
        self._failures += exception is not None
        self._total_ms += response_time or 0.0

    def counts(self) -> HealthRequests:
        return HealthRequests(self._requests, self._failures, self._total_ms)


@dataclass(eq=False)
class HealthSampler:
    """Samples /health through `caller` every `interval_s` seconds (0: never) into `stats`."""

    caller: EndpointCaller
    stats: JobStats
    interval_s: float
    requests: SamplerRequests = field(default_factory=SamplerRequests)
    """Counts the sampler's requests when its caller's session fires it."""
    _greenlet: gevent.Greenlet | None = field(default=None, init=False)

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
