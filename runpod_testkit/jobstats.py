"""Job statistics of a load run: latency histograms, outcome counts and time series.

One `JobStats` per process. Locust workers ship `pop_transport()` (a small JSON-able dict of
what they saw since the last report) to the master, which adds it with `merge_transport()`.
Merging is exact: counts add, and the percentiles of a merge equal those of one `JobStats`
fed all the values, because HDR histograms with the same layout add bucket by bucket.

All metrics are integer milliseconds:
  delayTime, executionTime  as the server reports them on terminal jobs
  e2e                       client side: submission to the terminal state seen
  ttfc                      client side: submission to the first stream chunk
  chunkGap                  client side: between the arrivals of consecutive stream chunks
  webhookDelay              WebhookUser: a job's end to its webhook's arrival (estimated)

Besides the metrics: outcome counts (server statuses and client-side outcomes, among them
"interrupted": jobs the load run itself cancelled when it stopped, which are not failures, and
"unknown": submissions that got a 5xx or lost their connection, so a job may exist that the run
never saw), streams followed to the end with their chunk count, the /health series, and request
counts that are not about one job: answers that were throttled (429), server errors (5xx),
connection errors and refusals (401/403), retries, and requests that client-side pacing held
back (with the time they waited).

Not thread-safe: under Locust every greenlet runs on one thread, which is all it needs.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

from hdrh.histogram import HdrHistogram

from runpod_testkit.operations import MAX_JOB_LIFETIME_MS, JobStatus

if TYPE_CHECKING:
    from runpod_testkit.slo import Slo
    from runpod_testkit.thresholds import ThresholdResult

__all__ = [
    "CLIENT_ERROR",
    "CLIENT_TIMEOUT",
    "CONNECTION_ERROR",
    "DROPPED",
    "HIGHEST_TRACKABLE_MS",
    "INTERRUPTED",
    "LATE",
    "METRICS",
    "NON_TERMINAL_OUTCOMES",
    "PACED",
    "PACED_WAIT_MS",
    "REFUSED",
    "REPORTED_PERCENTILES",
    "REQUEST_COUNTS",
    "RETRIED",
    "SERVER_ERROR",
    "SLO_MET",
    "SUBMITTED",
    "THROTTLED",
    "UNJUDGED_OUTCOMES",
    "UNKNOWN_OUTCOME",
    "HealthSample",
    "JobStats",
    "JobStatsFormatError",
    "MetricSummary",
]

METRICS = ("delayTime", "executionTime", "e2e", "ttfc", "chunkGap", "webhookDelay")
# (label in JSON/CSV/tables, percentile)
REPORTED_PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)
HIGHEST_TRACKABLE_MS = MAX_JOB_LIFETIME_MS  # 7 days; larger values are clamped to it
SIGNIFICANT_DIGITS = 3

# Outcome names. Server statuses are counted under their own (upper-case) string; the
# lower-case names below are client-side outcomes.
SUBMITTED = "submitted"
CLIENT_ERROR = "error"  # the client could not submit or follow the job (HTTP/transport error)
CLIENT_TIMEOUT = "timeout"  # the client gave up before seeing a terminal state
DROPPED = "dropped"  # open model: an arrival was never submitted (no free user)
LATE = "late"  # open model: an arrival was submitted behind its schedule
INTERRUPTED = "interrupted"  # in flight when the run stopped, and cancelled by it
UNKNOWN_OUTCOME = "unknown"  # a /run or /runsync that got a 5xx or lost its connection
SLO_MET = "sloMet"  # in the outcome series only: jobs that met the --slo, per window
# Every other outcome ends exactly one job; these do not.
NON_TERMINAL_OUTCOMES = frozenset({SUBMITTED, DROPPED, LATE})
# Ended jobs that say nothing about the endpoint: kept out of the failure rate.
UNJUDGED_OUTCOMES = frozenset({INTERRUPTED})

# Request counts (not jobs): the keys of the "requests" object of --job-stats-json.
THROTTLED = "throttled"  # HTTP 429
SERVER_ERROR = "serverError"  # HTTP 5xx
CONNECTION_ERROR = "connectionError"  # no HTTP answer (refused, reset, timed out)
REFUSED = "refused"  # HTTP 401 or 403
RETRIED = "retried"  # requests sent again after one of the above
REQUEST_COUNTS = (THROTTLED, SERVER_ERROR, CONNECTION_ERROR, REFUSED, RETRIED)
PACED = "paced"  # requests held back by client-side pacing
PACED_WAIT_MS = "pacedWaitMs"  # the time they waited, in total

TRANSPORT_VERSION = 3  # 2: chunkGap, streams and chunks; 3: request counts
DEFAULT_MAX_BUCKETS = 3600  # per time series; the bucket width doubles to stay under it


class JobStatsFormatError(ValueError):
    """A transport payload (from a Locust worker) does not have the expected shape."""


# --------------------------------------------------------------------------- histograms


def _new_hdr() -> Any:
    # Lowest trackable value 1: values below 2048 ms are exact, and 0 has its own bucket.
    return HdrHistogram(1, HIGHEST_TRACKABLE_MS, SIGNIFICANT_DIGITS)


def _to_ms(value: float) -> int:
    """Round to whole milliseconds and clamp into the histogram's range."""
    kind = type(value)  # the usual cases first: this runs for every value recorded
    if kind is int and 0 <= value < HIGHEST_TRACKABLE_MS:
        return value  # type: ignore[return-value]  # an int, as just checked
    if kind is float and 0 < value < HIGHEST_TRACKABLE_MS:
        return round(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a metric value must be a number of milliseconds, got {value!r:.40}")
    if math.isnan(value):
        raise ValueError("a metric value must not be NaN")
    if value <= 0:
        return 0
    if value >= HIGHEST_TRACKABLE_MS:
        return HIGHEST_TRACKABLE_MS
    return round(value)


class _Histogram:
    """An HDR histogram plus the exact min, max and sum (HDR rounds those to its buckets).

    Recording is on the load generator's hot path and hdrh's record_value is pure Python:
    values gather in a dict (value -> count) and go into the HDR histogram when it is read."""

    __slots__ = ("_hdr", "_pending", "max", "min", "total")

    def __init__(self) -> None:
        self._hdr: Any = _new_hdr()
        self._pending: dict[int, int] = {}
        self.min: int | None = None
        self.max: int | None = None
        self.total = 0

    @property
    def hdr(self) -> Any:
        """The HDR histogram with every recorded value in it."""
        if self._pending:
            hdr, pending, self._pending = self._hdr, self._pending, {}
            for value, count in pending.items():
                hdr.record_value(value, count)
        return self._hdr

    @hdr.setter
    def hdr(self, value: Any) -> None:
        self._hdr = value
        self._pending = {}

    @property
    def count(self) -> int:
        return int(self.hdr.get_total_count())

    def record(self, value: int) -> None:
        pending = self._pending
        pending[value] = pending.get(value, 0) + 1
        low = self.min
        if low is None:
            self.min = self.max = value
        elif value < low:
            self.min = value
        elif value > self.max:  # type: ignore[operator]  # set together with min
            self.max = value
        self.total += value

    def merge(self, other: _Histogram) -> None:
        if other.min is None or other.max is None:
            return
        self.hdr.add(other.hdr)
        self.min = other.min if self.min is None else min(self.min, other.min)
        self.max = other.max if self.max is None else max(self.max, other.max)
        self.total += other.total

    def percentiles(self, percents: Iterable[float]) -> dict[float, int]:
        """HDR value at each percentile, clamped into [min, max] (HDR reports bucket tops)."""
        if self.min is None or self.max is None:
            return {}
        wanted = sorted(set(percents))
        found = self.hdr.get_percentile_to_value_dict(wanted)
        return {p: min(max(int(found[p]), self.min), self.max) for p in wanted}

    def to_transport(self) -> dict[str, Any]:
        return {
            "hdr": self.hdr.encode().decode("ascii"),
            "min": self.min,
            "max": self.max,
            "sum": self.total,
        }

    @classmethod
    def from_transport(cls, data: object, where: str) -> _Histogram:
        obj = _mapping(data, where)
        encoded = obj.get("hdr")
        if not isinstance(encoded, str):
            raise JobStatsFormatError(f"{where}.hdr: expected a base64 string")
        try:
            hdr = HdrHistogram.decode(encoded)
        except Exception as exc:  # hdrh raises assorted types for a corrupt blob
            raise JobStatsFormatError(f"{where}.hdr: not an HDR histogram ({exc})") from None
        if (
            hdr.lowest_trackable_value != 1
            or hdr.highest_trackable_value != HIGHEST_TRACKABLE_MS
            or hdr.significant_figures != SIGNIFICANT_DIGITS
        ):
            raise JobStatsFormatError(f"{where}.hdr: histogram layout differs from this version")
        result = cls()
        result.hdr = hdr
        result.total = _int(obj.get("sum"), f"{where}.sum")
        count = result.count
        if count == 0:
            if obj.get("min") is not None or obj.get("max") is not None or result.total:
                raise JobStatsFormatError(f"{where}: min/max/sum given for an empty histogram")
            return result
        result.min = _int(obj.get("min"), f"{where}.min")
        result.max = _int(obj.get("max"), f"{where}.max")
        if result.min > result.max:
            raise JobStatsFormatError(f"{where}: min {result.min} > max {result.max}")
        return result


@dataclass(frozen=True)
class MetricSummary:
    """One metric's summary; every field but `count` is None when there are no samples."""

    count: int
    min: int | None
    max: int | None
    mean: float | None
    percentiles: Mapping[str, int | None]  # keyed by the REPORTED_PERCENTILES labels

    def to_json(self) -> dict[str, int | float | None]:
        """The per-metric object of the --job-stats-json file, keys in their stable order."""
        out: dict[str, int | float | None] = {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
        }
        for label, _ in REPORTED_PERCENTILES:
            out[label] = self.percentiles.get(label)
        return out


# --------------------------------------------------------------------------- time series

_Slot = TypeVar("_Slot")


class _Buckets(Generic[_Slot]):
    """Per-window slots keyed by epoch second aligned to `width`.

    When there are more than `max_buckets` windows the width doubles (windows stay aligned
    to multiples of the width, so two series always line up when merged). The final width
    is the smallest power of two that fits, whatever the order of adds and merges.
    """

    def __init__(
        self,
        max_buckets: int,
        new: Callable[[], _Slot],
        combine: Callable[[_Slot, _Slot], None],
    ) -> None:
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.max_buckets = max_buckets
        self.width = 1
        self.slots: dict[int, _Slot] = {}
        self._new = new
        self._combine = combine

    def _key(self, epoch_s: float) -> int:
        return int(epoch_s // self.width) * self.width

    def at(self, epoch_s: float) -> _Slot:
        key = self._key(epoch_s)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = self._new()
            if len(self.slots) > self.max_buckets:
                self._fit()
                slot = self.slots[self._key(epoch_s)]
        return slot

    def _rekey(self, width: int) -> None:
        self.width = width
        old, self.slots = self.slots, {}
        for key in sorted(old):
            self._absorb(self._key(key), old[key])

    def _absorb(self, key: int, slot: _Slot) -> None:
        target = self.slots.get(key)
        if target is None:
            target = self.slots[key] = self._new()
        self._combine(target, slot)

    def _fit(self) -> None:
        while len(self.slots) > self.max_buckets:
            self._rekey(self.width * 2)

    def merge(self, other: _Buckets[_Slot]) -> None:
        if other.width > self.width:
            self._rekey(other.width)
        for key in sorted(other.slots):
            self._absorb(self._key(key), other.slots[key])
        self._fit()

    def coarsened(self, max_points: int) -> _Buckets[_Slot]:
        """A copy with at most `max_points` windows (for charts)."""
        copy = _Buckets(max_points, self._new, self._combine)
        copy.merge(self)
        return copy

    def clear(self) -> None:
        self.width = 1
        self.slots = {}


def _coarse_key(value: int) -> int:
    """Bucket of a value in a window's small histogram: exact below 64, then 32 per octave."""
    if value < 64:
        return value
    shift = value.bit_length() - 6
    return (value >> shift) << shift


def _coarse_top(key: int) -> int:
    if key < 64:
        return key
    return key + (1 << (key.bit_length() - 6)) - 1


class _Window:
    """One time window of one metric: count, sum, max and a ~3%-resolution histogram."""

    __slots__ = ("coarse", "count", "max", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.max = 0
        self.coarse: Counter[int] = Counter()

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        if value > self.max:  # noqa: PLR1730  # a comparison costs less than a call to max()
            self.max = value
        key = value if value < 64 else _coarse_key(value)
        coarse = self.coarse
        coarse[key] = coarse.get(key, 0) + 1

    def combine(self, other: _Window) -> None:
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
        self.coarse.update(other.coarse)

    def percentile(self, percent: float) -> int:
        # Same rank rule as HDR: the smallest value with at least round(p% of count) below it.
        target = max(1, int(percent * self.count / 100 + 0.5))
        seen = 0
        for key in sorted(self.coarse):
            seen += self.coarse[key]
            if seen >= target:
                return min(_coarse_top(key), self.max)
        return self.max


@dataclass(frozen=True)
class HealthSample:
    """One /health reading: queue depth, jobs in progress and workers by state."""

    t: float  # epoch seconds
    in_queue: int
    in_progress: int
    workers: Mapping[str, int]

    def order_key(self) -> tuple[float, int, int, tuple[tuple[str, int], ...]]:
        return (self.t, self.in_queue, self.in_progress, tuple(sorted(self.workers.items())))

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "inQueue": self.in_queue,
            "inProgress": self.in_progress,
            "workers": dict(sorted(self.workers.items())),
        }


class _HealthSlot:
    """Keeps the latest sample of its window (samples from several workers interleave)."""

    __slots__ = ("sample",)

    def __init__(self) -> None:
        self.sample: HealthSample | None = None

    def combine(self, other: _HealthSlot) -> None:
        if other.sample is None:
            return
        if self.sample is None or other.sample.order_key() > self.sample.order_key():
            self.sample = other.sample


def _combine_counters(target: Counter[str], other: Counter[str]) -> None:
    target.update(other)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


# --------------------------------------------------------------------------- JobStats


class JobStats:
    """Histograms, outcome counts and time series of one load run (or one worker's share)."""

    def __init__(
        self,
        *,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_buckets = max_buckets
        self._clock = clock
        self._histograms = {name: _Histogram() for name in METRICS}
        self._outcomes: Counter[str] = Counter()
        self._metric_series: dict[str, _Buckets[_Window]] = {
            name: self._new_metric_series() for name in METRICS
        }
        self._outcome_series: _Buckets[Counter[str]] = _Buckets(
            max_buckets, Counter, _combine_counters
        )
        self._health_series: _Buckets[_HealthSlot] = _Buckets(
            max_buckets, _HealthSlot, _HealthSlot.combine
        )
        self._streams = 0
        self._chunks = 0
        self._requests: Counter[str] = Counter()
        self.slo: Slo | None = None
        """--slo: each COMPLETED job that meets it is counted (see runpod_testkit.slo)."""
        self._slo_met = 0

    def _new_metric_series(self) -> _Buckets[_Window]:
        return _Buckets(self._max_buckets, _Window, _Window.combine)

    # ---- recording

    def record(self, metric: str, value_ms: float, *, at: float | None = None) -> None:
        """Record one value (ms; rounded, and clamped into 0 .. 7 days) of a metric."""
        if metric not in self._histograms:
            raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
        self._record(metric, _to_ms(value_ms), self._now(at))

    def _record(self, metric: str, value: int, when: float) -> None:
        self._histograms[metric].record(value)
        self._metric_series[metric].at(when).add(value)

    def record_outcome(self, outcome: str, n: int = 1, *, at: float | None = None) -> None:
        """Count `n` jobs under an outcome: a server status string or a client-side name."""
        if not isinstance(outcome, str) or not outcome:
            raise ValueError(f"an outcome must be a non-empty string, got {outcome!r:.40}")
        if n < 0:
            raise ValueError("an outcome count must not be negative")
        self._outcomes[outcome] += n
        self._outcome_series.at(self._now(at))[outcome] += n

    def record_submitted(self, n: int = 1, *, at: float | None = None) -> None:
        self.record_outcome(SUBMITTED, n, at=at)

    def record_terminal(
        self,
        status: str,
        *,
        delay_time_ms: float | None = None,
        execution_time_ms: float | None = None,
        e2e_ms: float | None = None,
        ttfc_ms: float | None = None,
        at: float | None = None,
    ) -> None:
        """Count one job that ended with `status` and record whichever metrics are known."""
        when = self._now(at)
        self.record_outcome(status, at=when)
        slo = self.slo
        if (
            slo is not None
            and status == JobStatus.COMPLETED
            and slo.met(delay_time_ms, execution_time_ms, e2e_ms, ttfc_ms)
        ):
            self._slo_met += 1
            self._outcome_series.at(when)[SLO_MET] += 1  # the SLO over time
        # Once per job on the load generator's hot path: the metric names need no check.
        for metric, value in (
            ("delayTime", delay_time_ms),
            ("executionTime", execution_time_ms),
            ("e2e", e2e_ms),
            ("ttfc", ttfc_ms),
        ):
            if value is not None:
                self._record(metric, _to_ms(value), when)

    def record_stream(
        self, chunks: int, gaps_ms: Iterable[float] = (), *, at: float | None = None
    ) -> None:
        """Count one job followed on /stream until drained: its chunks, and the gaps (ms)
        between consecutive chunk arrivals (chunkGap)."""
        if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 0:
            raise ValueError(f"a chunk count must be an integer >= 0, got {chunks!r:.40}")
        when = self._now(at)
        self._streams += 1
        self._chunks += chunks
        for gap in gaps_ms:
            self.record("chunkGap", gap, at=when)

    def record_request(self, kind: str, n: int = 1) -> None:
        """Count `n` requests of a kind of REQUEST_COUNTS (throttled, serverError, ...)."""
        if kind not in REQUEST_COUNTS:
            raise ValueError(f"unknown request count {kind!r}; expected one of {REQUEST_COUNTS}")
        self._requests[kind] += n

    def record_paced(self, wait_s: float) -> None:
        """Count one request that client-side pacing held back for `wait_s` seconds."""
        self._requests[PACED] += 1
        self._requests[PACED_WAIT_MS] += round(wait_s * 1000)

    def record_health(self, body: object, *, at: float | None = None) -> HealthSample | None:
        """Record a /health response body; returns None (and records nothing) if unusable."""
        if not isinstance(body, Mapping):
            return None
        jobs, workers = body.get("jobs"), body.get("workers")
        if not isinstance(jobs, Mapping) or not isinstance(workers, Mapping):
            return None
        in_queue, in_progress = _count(jobs.get("inQueue")), _count(jobs.get("inProgress"))
        if in_queue is None or in_progress is None:
            return None
        by_state = {
            str(state): number
            for state, value in workers.items()
            if (number := _count(value)) is not None
        }
        sample = HealthSample(self._now(at), in_queue, in_progress, by_state)
        slot = _HealthSlot()
        slot.sample = sample
        self._health_series.at(sample.t).combine(slot)
        return sample

    def _now(self, at: float | None) -> float:
        return self._clock() if at is None else at

    # ---- reading

    def summary(self, metric: str) -> MetricSummary:
        hist = self._histogram(metric)
        count = hist.count
        if count == 0:
            return MetricSummary(
                0, None, None, None, {label: None for label, _ in REPORTED_PERCENTILES}
            )
        found = hist.percentiles(p for _, p in REPORTED_PERCENTILES)
        return MetricSummary(
            count=count,
            min=hist.min,
            max=hist.max,
            mean=round(hist.total / count, 3),
            percentiles={label: found[p] for label, p in REPORTED_PERCENTILES},
        )

    def percentile(self, metric: str, percent: float) -> int | None:
        """Value at `percent` (0 < percent <= 100) or None without samples."""
        if not 0 < percent <= 100:
            raise ValueError("a percentile must be in (0, 100]")
        return self._histogram(metric).percentiles([percent]).get(percent)

    def percentiles(self, metric: str, percents: Iterable[float]) -> dict[float, int]:
        """Values at many percentiles in one pass (empty dict without samples)."""
        wanted = list(percents)
        if not all(0 <= p <= 100 for p in wanted):
            raise ValueError("a percentile must be in [0, 100]")
        return self._histogram(metric).percentiles(wanted)

    def count(self, metric: str) -> int:
        return self._histogram(metric).count

    def _histogram(self, metric: str) -> _Histogram:
        try:
            return self._histograms[metric]
        except KeyError:
            raise ValueError(
                f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}"
            ) from None

    @property
    def outcomes(self) -> dict[str, int]:
        """All outcome counts, "submitted" first, then by name."""
        return _ordered_outcomes(self._outcomes)

    @property
    def submitted(self) -> int:
        return self._outcomes[SUBMITTED]

    @property
    def interrupted(self) -> int:
        """Jobs in flight when the run stopped, which it cancelled."""
        return self._outcomes[INTERRUPTED]

    @property
    def terminal_count(self) -> int:
        """Jobs that ended, other than interrupted ones: every outcome except submitted,
        dropped, late and interrupted (the failure rate's denominator)."""
        skipped = NON_TERMINAL_OUTCOMES | UNJUDGED_OUTCOMES
        return sum(n for name, n in self._outcomes.items() if name not in skipped)

    @property
    def failure_count(self) -> int:
        """Ended jobs that did not complete: other server statuses plus client errors/timeouts
        (interrupted jobs are not failures)."""
        return self.terminal_count - self._outcomes[JobStatus.COMPLETED]

    @property
    def failure_rate(self) -> float | None:
        terminal = self.terminal_count
        return None if terminal == 0 else self.failure_count / terminal

    @property
    def streams(self) -> int:
        """Jobs followed on /stream until drained."""
        return self._streams

    @property
    def chunks(self) -> int:
        """Chunks those streams carried, in total."""
        return self._chunks

    def stream_summary(self) -> dict[str, int | float | None]:
        """The "stream" object of the --job-stats-json file (the gaps are metrics.chunkGap)."""
        per_stream = round(self._chunks / self._streams, 3) if self._streams else None
        return {"streams": self._streams, "chunks": self._chunks, "chunksPerStream": per_stream}

    def request_counts(self) -> dict[str, int]:
        """The "requests" object of --job-stats-json: every kind, 0 when none."""
        return {kind: self._requests[kind] for kind in REQUEST_COUNTS}

    def pacing_summary(self) -> dict[str, int | float]:
        """The "pacing" object of --job-stats-json: requests held back and their total wait."""
        return {
            "held": self._requests[PACED],
            "waitS": round(self._requests[PACED_WAIT_MS] / 1000, 3),
        }

    def encoded_histograms(self) -> dict[str, str]:
        """Each metric's HDR histogram (with samples), encoded as HdrHistogram's compressed
        base64: the "histograms" object of --job-stats-json, which `runpod-testkit compare`
        reads to judge run-to-run noise."""
        return {
            name: hist.hdr.encode().decode("ascii")
            for name, hist in self._histograms.items()
            if hist.count
        }

    @property
    def slo_met(self) -> int:
        """Jobs that met the --slo (0 without one)."""
        return self._slo_met

    def slo_summary(self, duration_s: float | None) -> dict[str, Any] | None:
        """The "slo" object of --job-stats-json (None without --slo): the rules, ended jobs
        (interrupted ones apart), jobs that met every rule, attainment (their share) and
        goodput (per second of `duration_s`)."""
        if not self.slo:
            return None
        ended = self.terminal_count
        return {
            "rules": [rule.rule for rule in self.slo.rules],
            "jobs": ended,
            "met": self._slo_met,
            "attainment": round(self._slo_met / ended, 6) if ended else None,
            "goodputPerS": round(self._slo_met / duration_s, 3) if duration_s else None,
        }

    def outcome_windows(
        self, max_points: int | None = None
    ) -> tuple[int, list[tuple[int, Counter[str]]]]:
        """The outcome series: its width (s) and (window start, counts) in time order, at most
        `max_points` windows; the counts include SLO_MET (runpod_testkit.slo.slo_series)."""
        series = self._outcome_series
        if max_points is not None:
            series = series.coarsened(max_points)
        return series.width, sorted(series.slots.items())

    def health_samples(self) -> list[HealthSample]:
        slots = self._health_series.slots
        return [s.sample for _, s in sorted(slots.items()) if s.sample is not None]

    # ---- merging and transport

    def merge(self, other: JobStats) -> None:
        """Add everything `other` saw into this object (`other` is left unchanged)."""
        for name in METRICS:
            self._histograms[name].merge(other._histograms[name])
            self._metric_series[name].merge(other._metric_series[name])
        self._outcomes.update(other._outcomes)
        self._outcome_series.merge(other._outcome_series)
        self._health_series.merge(other._health_series)
        self._streams += other._streams
        self._chunks += other._chunks
        self._requests.update(other._requests)
        self._slo_met += other._slo_met

    def reset(self) -> None:
        self._histograms = {name: _Histogram() for name in METRICS}
        self._outcomes = Counter()
        for series in self._metric_series.values():
            series.clear()
        self._outcome_series.clear()
        self._health_series.clear()
        self._streams = 0
        self._chunks = 0
        self._requests = Counter()
        self._slo_met = 0

    def to_transport(self) -> dict[str, Any]:
        """A small JSON-able dict of everything recorded (see `from_transport`)."""
        return {
            "version": TRANSPORT_VERSION,
            "metrics": {
                name: hist.to_transport() for name, hist in self._histograms.items() if hist.count
            },
            "jobs": dict(self._outcomes),
            "stream": {"streams": self._streams, "chunks": self._chunks},
            "requests": {kind: n for kind, n in self._requests.items() if n},
            "sloMet": self._slo_met,
            "series": {
                "metrics": {
                    name: _series_to_transport(series, _window_to_transport)
                    for name, series in self._metric_series.items()
                    if series.slots
                },
                "jobs": _series_to_transport(self._outcome_series, dict),
                "health": _series_to_transport(self._health_series, _health_to_transport),
            },
        }

    def pop_transport(self) -> dict[str, Any]:
        """`to_transport()` then `reset()`: what a Locust worker ships in each report."""
        payload = self.to_transport()
        self.reset()
        return payload

    @classmethod
    def from_transport(cls, payload: object, *, max_buckets: int = DEFAULT_MAX_BUCKETS) -> JobStats:
        """Rebuild from `to_transport()` output; JobStatsFormatError on a malformed payload."""
        obj = _mapping(payload, "payload")
        if obj.get("version") != TRANSPORT_VERSION:
            raise JobStatsFormatError(
                f"payload.version: expected {TRANSPORT_VERSION}, got {obj.get('version')!r:.20}"
            )
        stats = cls(max_buckets=max_buckets)
        for name, data in _mapping(obj.get("metrics"), "payload.metrics").items():
            if name not in METRICS:
                raise JobStatsFormatError(f"payload.metrics: unknown metric {name!r:.40}")
            stats._histograms[name] = _Histogram.from_transport(data, f"payload.metrics.{name}")
        for outcome, n in _mapping(obj.get("jobs"), "payload.jobs").items():
            if not outcome:
                raise JobStatsFormatError("payload.jobs: empty outcome name")
            stats._outcomes[outcome] = _int(n, f"payload.jobs.{outcome:.40}")
        stream = _mapping(obj.get("stream"), "payload.stream")
        stats._streams = _int(stream.get("streams"), "payload.stream.streams")
        stats._chunks = _int(stream.get("chunks"), "payload.stream.chunks")
        known = {*REQUEST_COUNTS, PACED, PACED_WAIT_MS}
        for kind, n in _mapping(obj.get("requests"), "payload.requests").items():
            if kind not in known:
                raise JobStatsFormatError(f"payload.requests: unknown count {kind!r:.40}")
            stats._requests[kind] = _int(n, f"payload.requests.{kind}")
        stats._slo_met = _int(obj.get("sloMet", 0), "payload.sloMet")
        series = _mapping(obj.get("series"), "payload.series")
        for name, data in _mapping(series.get("metrics"), "payload.series.metrics").items():
            if name not in METRICS:
                raise JobStatsFormatError(f"payload.series.metrics: unknown metric {name!r:.40}")
            _series_from_transport(
                stats._metric_series[name], data, f"payload.series.metrics.{name}", _window_from
            )
        _series_from_transport(
            stats._outcome_series, series.get("jobs"), "payload.series.jobs", _counter_from
        )
        _series_from_transport(
            stats._health_series, series.get("health"), "payload.series.health", _health_from
        )
        return stats

    def merge_transport(self, payload: object) -> None:
        """Merge a worker's `pop_transport()`; nothing is merged if it is malformed."""
        self.merge(JobStats.from_transport(payload, max_buckets=self._max_buckets))

    # ---- output

    def to_json(self, thresholds: Iterable[ThresholdResult] = ()) -> dict[str, Any]:
        """The --job-stats-json document (a stable interface: docs/interfaces.md#job-stats-json),
        plus "stream", "requests" and "pacing" objects after the keys that page names."""
        return {
            "metrics": {name: self.summary(name).to_json() for name in METRICS},
            "jobs": self.outcomes,
            "thresholds": [result.to_json() for result in thresholds],
            "stream": self.stream_summary(),
            "requests": self.request_counts(),
            "pacing": self.pacing_summary(),
        }

    def series_json(self, max_points: int | None = None) -> dict[str, Any]:
        """Time series for charts, each at most `max_points` windows (all when None).

        {"metrics": {metric: {"width": s, "points": [{"t","count","mean","p50","p95","max"}]}},
         "jobs": {"width": s, "points": [{"t", "<outcome>": n, ...}]},
         "health": {"width": s, "points": [{"t","inQueue","inProgress","workers"}]}}
        """

        def view(series: _Buckets[_Slot]) -> _Buckets[_Slot]:
            return series if max_points is None else series.coarsened(max_points)

        metrics: dict[str, Any] = {}
        for name in METRICS:
            windows = view(self._metric_series[name])
            metrics[name] = {
                "width": windows.width,
                "points": [
                    {
                        "t": t,
                        "count": w.count,
                        "mean": round(w.total / w.count, 3),
                        "p50": w.percentile(50.0),
                        "p95": w.percentile(95.0),
                        "max": w.max,
                    }
                    for t, w in sorted(windows.slots.items())
                ],
            }
        jobs = view(self._outcome_series)
        health = view(self._health_series)
        return {
            "metrics": metrics,
            "jobs": {
                "width": jobs.width,
                "points": [{"t": t, **_ordered_outcomes(c)} for t, c in sorted(jobs.slots.items())],
            },
            "health": {
                "width": health.width,
                "points": [
                    slot.sample.to_json()
                    for _, slot in sorted(health.slots.items())
                    if slot.sample is not None
                ],
            },
        }

    def to_report_json(self, thresholds: Iterable[ThresholdResult] = ()) -> dict[str, Any]:
        """`to_json()` plus a "series" key (for reports; --job-stats-json uses `to_json`)."""
        return {**self.to_json(thresholds), "series": self.series_json()}

    def write_json(self, path: str | Path, thresholds: Iterable[ThresholdResult] = ()) -> None:
        """Write `to_json()` (the --job-stats-json file)."""
        text = json.dumps(self.to_json(thresholds), indent=2) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    def csv_rows(self) -> list[list[str]]:
        """Header plus one row per metric; empty cells where a metric has no samples. Then
        one row per request count (`requests.throttled`, ..., `pacing.held`) with its number
        in the count column."""
        header = ["metric", "count", "min", *(label for label, _ in REPORTED_PERCENTILES)]
        rows = [[*header, "max", "mean"]]
        for name in METRICS:
            summary = self.summary(name)
            cells: list[int | float | None] = [
                summary.count,
                summary.min,
                *(summary.percentiles[label] for label, _ in REPORTED_PERCENTILES),
                summary.max,
                summary.mean,
            ]
            rows.append([name, *("" if c is None else str(c) for c in cells)])
        blank = [""] * (len(rows[0]) - 2)
        counts = [(f"requests.{kind}", n) for kind, n in self.request_counts().items()]
        counts.append(("pacing.held", self._requests[PACED]))
        rows += [[name, str(n), *blank] for name, n in counts]
        return rows

    def write_csv(self, target: str | Path | IO[str]) -> None:
        """Write `csv_rows()` to a path or an open text file."""
        if isinstance(target, (str, Path)):
            with Path(target).open("w", encoding="utf-8", newline="") as handle:
                csv.writer(handle).writerows(self.csv_rows())
        else:
            csv.writer(target).writerows(self.csv_rows())

    def format_table(self, thresholds: Iterable[ThresholdResult] = ()) -> str:
        """Plain-text summary for the end of a headless run."""
        rows = self.csv_rows()[: len(METRICS) + 1]
        rows[0][0] = "metric (ms)"
        display = [[cell if cell else "-" for cell in row] for row in rows]
        for row in display[1:]:
            if row[-1] != "-":
                row[-1] = f"{float(row[-1]):.1f}"
        widths = [max(len(row[i]) for row in display) for i in range(len(display[0]))]
        lines = [
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
            for row in display
        ]
        outcomes = self.outcomes or {SUBMITTED: 0}
        name_width = max(len("outcome"), *(len(name) for name in outcomes))
        count_width = max(len("jobs"), *(len(str(n)) for n in outcomes.values()))
        lines += ["", f"{'outcome'.ljust(name_width)}  {'jobs'.rjust(count_width)}"]
        lines += [
            f"{name.ljust(name_width)}  {n:>{count_width}}{_OUTCOME_NOTES.get(name, '')}"
            for name, n in outcomes.items()
        ]
        rate = self.failure_rate
        if rate is not None:
            ended = f"{self.failure_count} of {self.terminal_count} ended jobs"
            if self.interrupted:
                ended += "; interrupted jobs are not counted"
            lines.append(f"failure rate {rate:.2%} ({ended})")
        if self._streams:
            summary = self.stream_summary()
            lines.append(
                f"streams {self._streams}: {self._chunks} chunks, {summary['chunksPerStream']:g} "
                "per stream (chunkGap: the time between chunk arrivals)"
            )
        lines += self._request_lines()
        results = list(thresholds)
        if results:
            lines += ["", "thresholds"]
            lines += [f"{'PASS' if r.passed else 'FAIL'}  {r.rule}  ({r.message})" for r in results]
        return "\n".join(lines) + "\n"

    def _request_lines(self) -> list[str]:
        """Requests that did not get a usable answer, apart from contract failures, and what
        pacing did; nothing when all is zero."""
        counts = self._requests
        lines: list[str] = []
        if any(counts[kind] for kind in REQUEST_COUNTS):
            lines.append(
                f"requests: throttled (429) {counts[THROTTLED]}, server error (5xx) "
                f"{counts[SERVER_ERROR]}, connection error {counts[CONNECTION_ERROR]}, "
                f"refused (401/403) {counts[REFUSED]}; retried {counts[RETRIED]} "
                "(not contract failures)"
            )
        if counts[PACED]:
            held = counts[PACED]
            lines.append(
                f"pacing: held back {held} request{'' if held == 1 else 's'}, "
                f"{counts[PACED_WAIT_MS] / 1000:.1f} s in total (under the endpoint's rate limits)"
            )
        return lines


_OUTCOME_NOTES = {
    INTERRUPTED: "  (in flight at stop; cancelled by the run, not a failure)",
    UNKNOWN_OUTCOME: "  (got a 5xx or lost its connection: a job may exist; not resubmitted)",
}


def _ordered_outcomes(counts: Mapping[str, int]) -> dict[str, int]:
    ordered = {SUBMITTED: counts[SUBMITTED]} if SUBMITTED in counts else {}
    ordered.update(
        (name, counts[name]) for name in sorted(counts) if name not in (SUBMITTED, SLO_MET)
    )
    return ordered


# --------------------------------------------------------------------------- transport helpers


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise JobStatsFormatError(f"{where}: expected an object")
    return value


def _list(value: object, where: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise JobStatsFormatError(f"{where}: expected a list")
    return value


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise JobStatsFormatError(f"{where}: expected an integer >= 0, got {value!r:.40}")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobStatsFormatError(f"{where}: expected a number, got {value!r:.40}")
    return value


def _series_to_transport(series: _Buckets[_Slot], encode: Callable[[_Slot], Any]) -> dict[str, Any]:
    return {
        "width": series.width,
        "buckets": [[t, encode(slot)] for t, slot in sorted(series.slots.items())],
    }


def _series_from_transport(
    series: _Buckets[_Slot],
    data: object,
    where: str,
    decode: Callable[[object, str], _Slot],
) -> None:
    obj = _mapping(data, where)
    width = _int(obj.get("width"), f"{where}.width")
    if width < 1 or width & (width - 1):
        raise JobStatsFormatError(f"{where}.width: expected a power of two, got {width}")
    incoming: _Buckets[_Slot] = _Buckets(series.max_buckets, series._new, series._combine)
    incoming.width = width
    for i, item in enumerate(_list(obj.get("buckets"), f"{where}.buckets")):
        pair = _list(item, f"{where}.buckets[{i}]")
        if len(pair) != 2:
            raise JobStatsFormatError(f"{where}.buckets[{i}]: expected [t, data]")
        t = _int(pair[0], f"{where}.buckets[{i}][0]")
        incoming._absorb(incoming._key(t), decode(pair[1], f"{where}.buckets[{i}][1]"))
    series.merge(incoming)


def _window_to_transport(window: _Window) -> list[Any]:
    return [
        window.count,
        window.total,
        window.max,
        [list(kv) for kv in sorted(window.coarse.items())],
    ]


def _window_from(data: object, where: str) -> _Window:
    fields = _list(data, where)
    if len(fields) != 4:
        raise JobStatsFormatError(f"{where}: expected [count, sum, max, histogram]")
    window = _Window()
    window.count = _int(fields[0], f"{where}[0]")
    window.total = _int(fields[1], f"{where}[1]")
    window.max = _int(fields[2], f"{where}[2]")
    for j, entry in enumerate(_list(fields[3], f"{where}[3]")):
        pair = _list(entry, f"{where}[3][{j}]")
        if len(pair) != 2:
            raise JobStatsFormatError(f"{where}[3][{j}]: expected [bucket, count]")
        window.coarse[_int(pair[0], f"{where}[3][{j}][0]")] += _int(pair[1], f"{where}[3][{j}][1]")
    if sum(window.coarse.values()) != window.count:
        raise JobStatsFormatError(f"{where}: histogram counts do not add up to count")
    return window


def _counter_from(data: object, where: str) -> Counter[str]:
    return Counter(
        {name: _int(n, f"{where}.{name:.40}") for name, n in _mapping(data, where).items()}
    )


def _health_to_transport(slot: _HealthSlot) -> list[Any] | None:
    s = slot.sample
    return None if s is None else [s.t, s.in_queue, s.in_progress, dict(s.workers)]


def _health_from(data: object, where: str) -> _HealthSlot:
    slot = _HealthSlot()
    if data is None:
        return slot
    fields = _list(data, where)
    if len(fields) != 4:
        raise JobStatsFormatError(f"{where}: expected [t, inQueue, inProgress, workers]")
    workers = {
        state: _int(n, f"{where}[3].{state:.40}")
        for state, n in _mapping(fields[3], f"{where}[3]").items()
    }
    slot.sample = HealthSample(
        t=_number(fields[0], f"{where}[0]"),
        in_queue=_int(fields[1], f"{where}[1]"),
        in_progress=_int(fields[2], f"{where}[2]"),
        workers=workers,
    )
    return slot
