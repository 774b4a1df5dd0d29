"""One immutable snapshot of a run: everything a view shows, computed once from `JobStats`.

The terminal table, the CSV, the JSON document, the web UI tab and the HTML report each render
a `RunSnapshot` and compute nothing of their own: the percentiles, the outcome counts with
their explanations, the chart series, the /health samples, the SLO, the cost and the comparison
with a baseline are the same numbers in every view.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from runpod_testkit.operations import JobStatus
from runpod_testkit.slo import slo_series
from runpod_testkit.stats.names import (
    INTERRUPTED,
    METRICS,
    NON_TERMINAL_OUTCOMES,
    PACED,
    SUBMITTED,
    UNJUDGED_OUTCOMES,
    UNKNOWN_OUTCOME,
)
from runpod_testkit.stats.series import HealthSample

if TYPE_CHECKING:
    from runpod_testkit.coldstarts import ColdStarts
    from runpod_testkit.compare import Comparison
    from runpod_testkit.cost import CostEstimate
    from runpod_testkit.stats.accumulator import Accumulator, MetricSummary
    from runpod_testkit.stats.thresholds import ThresholdResult

__all__ = [
    "DISTRIBUTION_PERCENT_TICKS",
    "HEALTH_CHART_POINTS",
    "JOBS_CHART_POINTS",
    "METRIC_CHART_POINTS",
    "OUTCOME_NOTES",
    "HealthRequests",
    "Outcomes",
    "RunSnapshot",
    "take_snapshot",
]

# Windows per time chart: latency lines stay readable at ~200, per-window job rates need
# coarser windows to be more than noise; /health is sampled, not summed, so it keeps more.
METRIC_CHART_POINTS = 200
JOBS_CHART_POINTS = 100
HEALTH_CHART_POINTS = 600

OUTCOME_NOTES: Mapping[str, str] = MappingProxyType(
    {
        SUBMITTED: "jobs the endpoint accepted",
        INTERRUPTED: "in flight at stop; cancelled by the run, not a failure",
        UNKNOWN_OUTCOME: "got a 5xx or lost its connection: a job may exist; not resubmitted",
    }
)
"""The one explanation of an outcome that every view shows next to its count."""

DISTRIBUTION_PERCENT_TICKS: tuple[tuple[float, str], ...] = (
    (0.0, "0%"),
    (math.log10(2), "50%"),
    (1.0, "90%"),
    (2.0, "99%"),
    (3.0, "99.9%"),
    (4.0, "99.99%"),
    (5.0, "99.999%"),
)
"""(x, label) ticks of the percentile charts, x = log10(1 / (1 - p))."""


@dataclass(frozen=True)
class Outcomes:
    """Job outcome counts and what the views say about them."""

    counts: Mapping[str, int]
    """"submitted" first, then by name (empty before any job)."""
    interrupted: int
    ended: int
    """Ended jobs other than interrupted ones: the failure rate's denominator."""
    failures: int
    failure_rate: float | None
    e2e_samples: int
    ended_with_status: int
    """Jobs that ended with a server status (COMPLETED, FAILED, ...)."""

    @property
    def rows(self) -> Mapping[str, int]:
        """The counts a table shows: {"submitted": 0} before any job."""
        return self.counts or {SUBMITTED: 0}

    @property
    def completed(self) -> int:
        return self.counts.get(JobStatus.COMPLETED, 0)

    def note(self, outcome: str) -> str:
        return OUTCOME_NOTES.get(outcome, "")

    @property
    def without_e2e(self) -> int:
        """Jobs that ended with a server status but have no e2e sample."""
        return max(0, self.ended_with_status - self.e2e_samples)

    @property
    def e2e_note(self) -> str | None:
        """Why there are fewer e2e samples than jobs that ended (None when they agree).

        The tracker times e2e from the submission to the answer that showed the job ended. A
        job that ends while the run is stopping is counted from the answer to the run's own
        cancel (or from a /runsync that answered after its user stopped): it ended, but the
        client did not watch it end, so it has no e2e."""
        missing = self.without_e2e
        if not missing or not self.e2e_samples:  # no e2e at all: recorded by other means
            return None
        return (
            f"{self.e2e_samples} e2e samples for {self.ended_with_status} jobs that ended with a "
            f"server status: {missing} ended while the run was stopping (seen in the answer to "
            "the run's cancel, or a /runsync answered after its user stopped), so their end "
            "time was not observed"
        )


@dataclass(frozen=True)
class HealthRequests:
    """The /health sampler's own requests, kept out of Locust's request statistics."""

    requests: int = 0
    failures: int = 0
    total_ms: float = 0.0

    @property
    def mean_ms(self) -> float | None:
        return None if not self.requests else round(self.total_ms / self.requests, 1)


@dataclass(frozen=True)
class RunSnapshot:
    """Everything a view of a run shows. Build it with `take_snapshot`."""

    metrics: Mapping[str, MetricSummary]
    outcomes: Outcomes
    stream: Mapping[str, int | float | None]
    requests: Mapping[str, int]
    pacing: Mapping[str, int | float]
    paced: int
    thresholds: tuple[ThresholdResult, ...]
    series: Mapping[str, Any]
    """Chart series: "metrics" at METRIC_CHART_POINTS windows, "jobs" at JOBS_CHART_POINTS,
    "health" at HEALTH_CHART_POINTS (the shapes of JobStats.series_json)."""
    distributions: Mapping[str, tuple[tuple[float, float], ...]]
    """Per metric, (x, value) points of the value-at-percentile curve, x = log10(1/(1-p))."""
    health: tuple[HealthSample, ...]
    histograms: Mapping[str, str]
    slo: Mapping[str, Any] | None = None
    slo_over_time: Mapping[str, Any] | None = None
    """The SLO per window of the "jobs" series, for its chart (`slo_series`' shape); None
    without --slo or without charts."""
    cost: CostEstimate | None = None
    cold_starts: ColdStarts | None = None
    comparison: Comparison | None = None
    lost_workers: tuple[str, ...] = ()
    """One line per worker lost in a distributed run (the master's WorkerLedger)."""
    health_requests: HealthRequests = field(default_factory=HealthRequests)

    @property
    def latest_health(self) -> HealthSample | None:
        return self.health[-1] if self.health else None


def take_snapshot(
    stats: Accumulator,
    thresholds: Iterable[ThresholdResult] = (),
    *,
    duration_s: float | None = None,
    cost: CostEstimate | None = None,
    cold_starts: ColdStarts | None = None,
    comparison: Comparison | None = None,
    lost_workers: Sequence[str] = (),
    health_requests: HealthRequests | None = None,
    charts: bool = True,
) -> RunSnapshot:
    """Read `stats` once. `duration_s` (the run's length) gives the SLO's goodput. Without
    `charts` the chart series and distributions are left empty (for a view that draws none:
    the web UI's table, which is read every couple of seconds)."""
    raw = stats.raw_outcomes()
    skipped = NON_TERMINAL_OUTCOMES | UNJUDGED_OUTCOMES
    ended = sum(n for name, n in raw.items() if name not in skipped)
    failures = ended - raw.get(JobStatus.COMPLETED, 0)
    metrics = {name: stats.summary(name) for name in METRICS}
    outcomes = Outcomes(
        counts=MappingProxyType(stats.outcomes),
        interrupted=raw.get(INTERRUPTED, 0),
        ended=ended,
        failures=failures,
        failure_rate=None if ended == 0 else failures / ended,
        e2e_samples=metrics["e2e"].count,
        ended_with_status=sum(n for name, n in raw.items() if name in JobStatus.TERMINAL),
    )
    return RunSnapshot(
        metrics=MappingProxyType(metrics),
        outcomes=outcomes,
        stream=MappingProxyType(stats.stream_summary()),
        requests=MappingProxyType(stats.request_counts()),
        pacing=MappingProxyType(stats.pacing_summary()),
        paced=stats.raw_request_count(PACED),
        thresholds=tuple(thresholds),
        series=MappingProxyType(_chart_series(stats) if charts else _NO_SERIES),
        distributions=MappingProxyType(
            {name: _distribution(stats, name, metrics[name]) if charts else () for name in METRICS}
        ),
        health=tuple(stats.health_samples()),
        histograms=MappingProxyType(stats.encoded_histograms()),
        slo=stats.slo_summary(duration_s),
        slo_over_time=slo_series(stats, JOBS_CHART_POINTS) if charts else None,
        cost=cost,
        cold_starts=cold_starts,
        comparison=comparison,
        lost_workers=tuple(lost_workers),
        health_requests=health_requests or HealthRequests(),
    )


_NO_SERIES: Mapping[str, Any] = MappingProxyType(
    {
        "metrics": {name: {"width": 1, "points": []} for name in METRICS},
        "jobs": {"width": 1, "points": []},
        "health": {"width": 1, "points": []},
    }
)


def _chart_series(stats: Accumulator) -> dict[str, Any]:
    return {
        "metrics": stats.series_json(max_points=METRIC_CHART_POINTS, parts=("metrics",))["metrics"],
        "jobs": stats.series_json(max_points=JOBS_CHART_POINTS, parts=("jobs",))["jobs"],
        "health": stats.series_json(max_points=HEALTH_CHART_POINTS, parts=("health",))["health"],
    }


def _distribution(
    stats: Accumulator, name: str, summary: MetricSummary
) -> tuple[tuple[float, float], ...]:
    count = summary.count
    # Enough resolution to be smooth, no further out than the samples allow (1 in count).
    top = min(5.0, math.log10(count)) if count > 1 else 0.0
    steps = [i / 20 for i in range(int(top * 20) + 1)]
    percents = [100 * (1 - 10**-x) for x in steps]
    values = stats.percentiles(name, percents)
    points = [(x, float(values[p])) for x, p in zip(steps, percents, strict=True) if p in values]
    if points and count > 1:
        points.append((top, float(summary.max if summary.max is not None else points[-1][1])))
    return tuple(points)
