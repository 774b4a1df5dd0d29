"""What a load run cost: worker-seconds estimated from the /health series, and dollars.

Runpod bills a serverless worker from its start until it stops, rounded up to the second,
start-up and idle time included. A load run sees workers only through /health samples (every
--health-interval seconds), so the estimate integrates the worker count over time: each
sample's count holds until the next sample (a step function), from the first sample to the
last. Counted: every state /health reports (initializing, idle, running, throttled,
unhealthy) but "ready", which repeats idle. Not in the estimate: the per-worker rounding up
(at most 1 s per worker start), a worker's life between samples when it starts and stops
unseen, and time before the first and after the last sample (a warm worker billed while no
run is going). Against the embedded emulator with warm workers and no scaling the estimate
is exact over the sampled span; with scaling its error is at most one interval per change.

Dollars: --gpu-price-per-s times worker-seconds; per completed job; per 1,000 completed jobs;
and per day at the run's rate (dollars / duration x 86,400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from runpod_testkit.jobstats import HealthSample

__all__ = ["NOT_BILLED_STATES", "CostEstimate", "estimate_cost", "worker_seconds"]

NOT_BILLED_STATES = frozenset({"ready"})
"""/health keys that are not workers of their own ("ready" repeats "idle")."""


def billed_workers(sample: HealthSample) -> int:
    return sum(n for state, n in sample.workers.items() if state not in NOT_BILLED_STATES)


def worker_seconds(samples: Sequence[HealthSample]) -> float:
    """The step-function integral of the worker count over the samples' span (seconds)."""
    ordered = sorted(samples, key=lambda sample: sample.t)
    return sum(billed_workers(before) * (after.t - before.t) for before, after in pairwise(ordered))


@dataclass(frozen=True)
class CostEstimate:
    worker_seconds: float
    span_s: float
    """From the first /health sample to the last."""
    samples: int
    peak_workers: int
    completed_jobs: int
    price_per_s: float | None
    duration_s: float | None
    """The run's duration (test start to stop), for the per-day projection."""

    @property
    def dollars(self) -> float | None:
        return None if self.price_per_s is None else self.worker_seconds * self.price_per_s

    def per_job(self, value: float | None) -> float | None:
        if value is None or not self.completed_jobs:
            return None
        return value / self.completed_jobs

    def to_json(self) -> dict[str, Any]:
        """The "cost" object of --job-stats-json."""
        dollars = self.dollars
        per_job = self.per_job(dollars)
        per_day = (
            dollars / self.duration_s * 86_400 if dollars is not None and self.duration_s else None
        )
        return {
            "source": "health",
            "workerSeconds": round(self.worker_seconds, 3),
            "spanS": round(self.span_s, 3),
            "samples": self.samples,
            "peakWorkers": self.peak_workers,
            "completedJobs": self.completed_jobs,
            "workerSecondsPerJob": _round(self.per_job(self.worker_seconds), 6),
            "pricePerS": self.price_per_s,
            "dollars": _round(dollars, 6),
            "dollarsPerJob": _round(per_job, 8),
            "dollarsPer1000Jobs": _round(None if per_job is None else per_job * 1000, 6),
            "dollarsPerDayAtThisRate": _round(per_day, 2),
        }

    def line(self) -> str:
        """The line under the end-of-run table."""
        text = (
            f"cost (estimated from {self.samples} /health samples over {self.span_s:.1f} s): "
            f"{self.worker_seconds:.1f} worker-seconds, peak {self.peak_workers} workers"
        )
        per_job = self.per_job(self.worker_seconds)
        if per_job is not None:
            text += f", {per_job:.3f} per completed job"
        dollars = self.dollars
        if dollars is not None:
            text += f"; ${dollars:.4f} at ${self.price_per_s:g}/s"
            per_job_dollars = self.per_job(dollars)
            if per_job_dollars is not None:
                text += f", ${per_job_dollars * 1000:.4f} per 1,000 jobs"
        return text + "\n"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def estimate_cost(
    samples: Sequence[HealthSample],
    *,
    completed_jobs: int,
    price_per_s: float | None = None,
    duration_s: float | None = None,
) -> CostEstimate | None:
    """None with fewer than two samples (no span to integrate over)."""
    if len(samples) < 2:
        return None
    times = [sample.t for sample in samples]
    return CostEstimate(
        worker_seconds=worker_seconds(samples),
        span_s=max(times) - min(times),
        samples=len(samples),
        peak_workers=max(billed_workers(sample) for sample in samples),
        completed_jobs=completed_jobs,
        price_per_s=price_per_s,
        duration_s=duration_s,
    )
