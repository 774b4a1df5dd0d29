"""What a load run cost: worker-seconds estimated from the /health series, and dollars.

Runpod bills a serverless worker from its start until it stops, rounded up to the second,
start-up and idle time included. A load run sees workers only through /health samples (every
--health-interval seconds), so the estimate integrates the worker count over time with the
trapezoid rule, from the first sample to the last: between two samples the count is taken as
their mean, since a worker seen first (or last) in one of them started (or stopped) at an
unknown moment in between, half-way on average. Counted: every state /health reports
(initializing, idle, running, throttled, unhealthy) but "ready", which repeats idle. Not in
the estimate: the per-worker rounding up (at most 1 s per worker start), a worker that starts
and stops between two samples, and time before the first and after the last sample (a warm
worker billed while no run is going). With warm workers and no scaling the estimate is exact
over the sampled span; with scaling each worker start or stop adds an error of at most half
an interval.

Against the embedded emulator the run also reads the emulator's own accounting (its
--worker-log: each worker's start and stop): `EmulatorUsage`, exact. Its billed seconds (each
worker rounded up, the emulator's whole life: warm workers before the first sample and after
the last included) are then the ones priced, and its worker-seconds within the sampled span
are the exact counterpart of the /health estimate.

Dollars: --gpu-price-per-s (or --gpu NAME's, runpod_testkit.gpu_prices) times worker-seconds
(billed seconds when the emulator's are known); per completed job; per 1,000 completed jobs;
and per day at the run's rate (dollars / duration x 86,400).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from runpod_testkit.compare_figures import fixed_point
from runpod_testkit.stats.series import HealthSample

__all__ = [
    "NOT_BILLED_STATES",
    "CostEstimate",
    "EmulatorUsage",
    "estimate_cost",
    "read_worker_log",
    "worker_seconds",
]

NOT_BILLED_STATES = frozenset({"ready"})
"""/health keys that are not workers of their own ("ready" repeats "idle")."""


def billed_workers(sample: HealthSample) -> int:
    return sum(n for state, n in sample.workers.items() if state not in NOT_BILLED_STATES)


def worker_seconds(samples: Sequence[HealthSample]) -> float:
    """The trapezoid-rule integral of the worker count over the samples' span (seconds)."""
    ordered = sorted(samples, key=lambda sample: sample.t)
    return sum(
        (billed_workers(before) + billed_workers(after)) / 2 * (after.t - before.t)
        for before, after in pairwise(ordered)
    )


@dataclass(frozen=True)
class EmulatorUsage:
    """The emulator's own accounting of one endpoint's workers (its --worker-log)."""

    workers: int
    worker_seconds: float
    billed_seconds: int
    seconds_in_span: float
    """Worker-seconds between the first and the last /health sample."""
    cold_start_jobs: int = 0
    """Jobs that waited on a worker's start-up (see runpod_testkit.coldstarts)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "workerSeconds": round(self.worker_seconds, 3),
            "billedSeconds": self.billed_seconds,
            "workerSecondsInSpan": round(self.seconds_in_span, 3),
            "coldStartJobs": self.cold_start_jobs,
        }


def read_worker_log(
    path: str | Path, *, endpoint_id: str, since_s: float, span: tuple[float, float]
) -> EmulatorUsage:
    """Sum the --worker-log lines of `endpoint_id` for workers started at or after `since_s`
    (a log appended to by earlier runs keeps theirs); OSError if it cannot be read."""
    workers, exact, billed, in_span, cold = 0, 0.0, 0, 0.0, 0
    low, high = span
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            started, stopped = record["startedAt"] / 1000, record["stoppedAt"] / 1000
            if record["endpointId"] != endpoint_id or started < since_s:
                continue
            workers += 1
            exact += record["seconds"]
            billed += record["billedSeconds"]
            in_span += max(0.0, min(stopped, high) - max(started, low))
            cold += record.get("coldStartJobs", 0)
    return EmulatorUsage(workers, exact, billed, in_span, cold)


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
    emulator: EmulatorUsage | None = None
    price_source: str | None = None
    """Where the price comes from (--gpu: the GPU, tier, source and date); None: given."""

    @property
    def priced_seconds(self) -> float:
        """The emulator's billed seconds when known, else the /health estimate."""
        return self.worker_seconds if self.emulator is None else self.emulator.billed_seconds

    @property
    def dollars(self) -> float | None:
        return None if self.price_per_s is None else self.priced_seconds * self.price_per_s

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
            "source": "health" if self.emulator is None else "emulator",
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
            "emulator": None if self.emulator is None else self.emulator.to_json(),
            "priceSource": self.price_source,
        }

    def html_rows(self) -> list[tuple[str, str]]:
        """(JSON key, shown value) of the report's cost table; the emulator's keys prefixed."""
        document = self.to_json()
        usage = document.pop("emulator")
        rows = list(document.items())
        if usage is not None:
            rows += [(f"emulator.{key}", value) for key, value in usage.items()]
        return [(key, _shown(value)) for key, value in rows]

    def html_section(self) -> str:
        """The report's cost section (`_sections.html.j2`, autoescaped)."""
        from runpod_testkit.templating import macro  # Jinja2 only when HTML is asked for

        return str(macro("_sections.html.j2", "cost_section")(self.html_rows()))

    def line(self) -> str:
        """The line under the end-of-run table."""
        text = (
            f"cost (estimated from {self.samples} /health samples over {self.span_s:.1f} s): "
            f"{self.worker_seconds:.1f} worker-seconds, peak {self.peak_workers} workers"
        )
        per_job = self.per_job(self.worker_seconds)
        if per_job is not None:
            text += f", {per_job:.3f} per completed job"
        if self.emulator is not None:
            usage = self.emulator
            text += (
                f"; the emulator's accounting: {usage.seconds_in_span:.1f} in that span, "
                f"{usage.billed_seconds} billed seconds in all ({usage.workers} workers)"
            )
        dollars = self.dollars
        if dollars is not None:
            text += f"; ${dollars:.4f} at ${self.price_per_s:g}/s"
            per_job_dollars = self.per_job(dollars)
            if per_job_dollars is not None:
                text += (
                    f", ${per_job_dollars:.6f} per completed job, "
                    f"${per_job_dollars * 1000:.4f} per 1,000 jobs"
                )
            if self.price_source is not None:
                text += f" (price: {self.price_source})"
        return text + "\n"


def _shown(value: object) -> str:
    if value is None:
        return "-"
    # Fixed point: a dollar figure per job reads $0.00007642, not 7.6423e-05.
    return fixed_point(value, 6) if isinstance(value, float) else str(value)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def estimate_cost(
    samples: Sequence[HealthSample],
    *,
    completed_jobs: int,
    price_per_s: float | None = None,
    duration_s: float | None = None,
    emulator: EmulatorUsage | None = None,
    price_source: str | None = None,
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
        emulator=emulator,
        price_source=price_source,
    )
