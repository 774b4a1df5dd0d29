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

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from hdrh.histogram import HdrHistogram

from runpod_testkit.operations import JobStatus
from runpod_testkit.stats.names import (
    HIGHEST_TRACKABLE_MS,
    INTERRUPTED,
    METRICS,
    NON_TERMINAL_OUTCOMES,
    PACED,
    PACED_WAIT_MS,
    REPORTED_PERCENTILES,
    REQUEST_COUNTS,
    SIGNIFICANT_DIGITS,
    SLO_MET,
    SUBMITTED,
    UNJUDGED_OUTCOMES,
)
from runpod_testkit.stats.series import (
    Buckets,
    HealthSample,
    HealthSlot,
    Slot,
    Window,
    combine_counters,
)
from runpod_testkit.stats.wire import (
    TRANSPORT_VERSION,
    JobStatsFormatError,
    counter_from,
    expect_int,
    expect_mapping,
    health_from,
    health_to_transport,
    series_from_transport,
    series_to_transport,
    window_from,
    window_to_transport,
)

__all__ = ["Accumulator", "MetricSummary", "SloJudge"]

_A = TypeVar("_A", bound="Accumulator")


class SloRuleText(Protocol):
    @property
    def rule(self) -> str: ...


class SloJudge(Protocol):
    """What the accumulator asks of --slo (`runpod_testkit.slo.Slo`, which builds on the
    statistics, so the statistics name only this)."""

    @property
    def rules(self) -> Sequence[SloRuleText]: ...

    def __bool__(self) -> bool: ...

    def met(
        self,
        delay_time_ms: float | None,
        execution_time_ms: float | None,
        e2e_ms: float | None,
        ttfc_ms: float | None,
    ) -> bool: ...


DEFAULT_MAX_BUCKETS = 3600  # per time series; the bucket width doubles to stay under it


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


def _all_to_ms(values: Iterable[float | None]) -> list[int]:
    """`_to_ms` of each value that is not None, the usual cases without a call."""
    return [
        value
        if type(value) is int and 0 <= value < HIGHEST_TRACKABLE_MS
        else round(value)
        if type(value) is float and 0 < value < HIGHEST_TRACKABLE_MS
        else _to_ms(value)
        for value in values
        if value is not None
    ]


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

    def record_all(self, values: list[int]) -> None:
        """`record` each value (at least one)."""
        pending = self._pending
        for value in values:
            pending[value] = pending.get(value, 0) + 1
        low, high = min(values), max(values)
        if self.min is None or self.max is None:
            self.min, self.max = low, high
        else:
            self.min, self.max = min(self.min, low), max(self.max, high)
        self.total += sum(values)

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
        obj = expect_mapping(data, where)
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
        result.total = expect_int(obj.get("sum"), f"{where}.sum")
        count = result.count
        if count == 0:
            if obj.get("min") is not None or obj.get("max") is not None or result.total:
                raise JobStatsFormatError(f"{where}: min/max/sum given for an empty histogram")
            return result
        result.min = expect_int(obj.get("min"), f"{where}.min")
        result.max = expect_int(obj.get("max"), f"{where}.max")
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


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


# --------------------------------------------------------------------------- Accumulator


class Accumulator:
    """Histograms, outcome counts and time series of one load run (or one worker's share):
    what is recorded, merged and shipped. `runpod_testkit.stats.recorder.JobStats` adds the
    views (snapshot, JSON, CSV, table)."""

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
        self._metric_series: dict[str, Buckets[Window]] = {
            name: self._new_metric_series() for name in METRICS
        }
        self._outcome_series: Buckets[Counter[str]] = Buckets(
            max_buckets, Counter, combine_counters
        )
        self._health_series: Buckets[HealthSlot] = Buckets(
            max_buckets, HealthSlot, HealthSlot.combine
        )
        self._streams = 0
        self._chunks = 0
        self._requests: Counter[str] = Counter()
        self.slo: SloJudge | None = None
        """--slo: each COMPLETED job that meets it is counted (see runpod_testkit.slo)."""
        self._slo_met = 0

    def _new_metric_series(self) -> Buckets[Window]:
        return Buckets(self._max_buckets, Window, Window.combine)

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
        # Once per job on the load generator's and the simulation's hot path: `record_outcome`
        # and `_record` inline, and the metric names need no check.
        if not isinstance(status, str) or not status:
            raise ValueError(f"an outcome must be a non-empty string, got {status!r:.40}")
        when = self._clock() if at is None else at
        self._outcomes[status] += 1
        outcomes_now = self._outcome_series.at(when)
        outcomes_now[status] += 1
        slo = self.slo
        if (
            slo is not None
            and status == JobStatus.COMPLETED
            and slo.met(delay_time_ms, execution_time_ms, e2e_ms, ttfc_ms)
        ):
            self._slo_met += 1
            outcomes_now[SLO_MET] += 1  # the SLO over time
        if delay_time_ms is not None:
            self._record("delayTime", _to_ms(delay_time_ms), when)
        if execution_time_ms is not None:
            self._record("executionTime", _to_ms(execution_time_ms), when)
        if e2e_ms is not None:
            self._record("e2e", _to_ms(e2e_ms), when)
        if ttfc_ms is not None:
            self._record("ttfc", _to_ms(ttfc_ms), when)

    def record_terminals_of_one_second(
        self,
        at: float,
        statuses: Sequence[str],
        delay_time_ms: Sequence[float | None],
        execution_time_ms: Sequence[float | None],
        e2e_ms: Sequence[float | None],
    ) -> None:
        """`record_terminal` of many jobs that all ended within the same whole second as `at`
        (epoch seconds; so within one window of every series, whatever its width): the same
        counts and values, with a few calls per metric instead of a few per job. The
        simulation hands over each simulated second's ended jobs this way."""
        if not statuses:
            return
        for status in statuses:
            if not isinstance(status, str) or not status:
                raise ValueError(f"an outcome must be a non-empty string, got {status!r:.40}")
        if not len(delay_time_ms) == len(execution_time_ms) == len(e2e_ms) == len(statuses):
            raise ValueError("one value (or None) per job of every metric")
        outcomes_now = self._outcome_series.at(at)
        self._outcomes.update(statuses)
        outcomes_now.update(statuses)
        slo = self.slo
        if slo is not None:
            met = 0
            for status, delay, execution, e2e in zip(
                statuses, delay_time_ms, execution_time_ms, e2e_ms, strict=False
            ):
                if status == JobStatus.COMPLETED and slo.met(delay, execution, e2e, None):
                    met += 1
            if met:
                self._slo_met += met
                outcomes_now[SLO_MET] += met
        for metric, values in (
            ("delayTime", delay_time_ms),
            ("executionTime", execution_time_ms),
            ("e2e", e2e_ms),
        ):
            recorded = _all_to_ms(values)
            if recorded:
                self._histograms[metric].record_all(recorded)
                self._metric_series[metric].at(at).add_all(recorded)

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
        slot = HealthSlot()
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

    def raw_outcomes(self) -> Mapping[str, int]:
        """Outcome counts as recorded (a read-only view, unordered)."""
        return MappingProxyType(self._outcomes)

    def raw_request_count(self, kind: str) -> int:
        """A request count by its key, PACED and PACED_WAIT_MS included."""
        return self._requests[kind]

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

    def merge(self, other: Accumulator) -> None:
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
                    name: series_to_transport(series, window_to_transport)
                    for name, series in self._metric_series.items()
                    if series.slots
                },
                "jobs": series_to_transport(self._outcome_series, dict),
                "health": series_to_transport(self._health_series, health_to_transport),
            },
        }

    def pop_transport(self) -> dict[str, Any]:
        """`to_transport()` then `reset()`: what a Locust worker ships in each report."""
        payload = self.to_transport()
        self.reset()
        return payload

    @classmethod
    def from_transport(
        cls: type[_A], payload: object, *, max_buckets: int = DEFAULT_MAX_BUCKETS
    ) -> _A:
        """Rebuild from `to_transport()` output; JobStatsFormatError on a malformed payload."""
        obj = expect_mapping(payload, "payload")
        if obj.get("version") != TRANSPORT_VERSION:
            raise JobStatsFormatError(
                f"payload.version: expected {TRANSPORT_VERSION}, got {obj.get('version')!r:.20}"
            )
        stats = cls(max_buckets=max_buckets)
        for name, data in expect_mapping(obj.get("metrics"), "payload.metrics").items():
            if name not in METRICS:
                raise JobStatsFormatError(f"payload.metrics: unknown metric {name!r:.40}")
            stats._histograms[name] = _Histogram.from_transport(data, f"payload.metrics.{name}")
        for outcome, n in expect_mapping(obj.get("jobs"), "payload.jobs").items():
            if not outcome:
                raise JobStatsFormatError("payload.jobs: empty outcome name")
            stats._outcomes[outcome] = expect_int(n, f"payload.jobs.{outcome:.40}")
        stream = expect_mapping(obj.get("stream"), "payload.stream")
        stats._streams = expect_int(stream.get("streams"), "payload.stream.streams")
        stats._chunks = expect_int(stream.get("chunks"), "payload.stream.chunks")
        known = {*REQUEST_COUNTS, PACED, PACED_WAIT_MS}
        for kind, n in expect_mapping(obj.get("requests"), "payload.requests").items():
            if kind not in known:
                raise JobStatsFormatError(f"payload.requests: unknown count {kind!r:.40}")
            stats._requests[kind] = expect_int(n, f"payload.requests.{kind}")
        stats._slo_met = expect_int(obj.get("sloMet", 0), "payload.sloMet")
        series = expect_mapping(obj.get("series"), "payload.series")
        for name, data in expect_mapping(series.get("metrics"), "payload.series.metrics").items():
            if name not in METRICS:
                raise JobStatsFormatError(f"payload.series.metrics: unknown metric {name!r:.40}")
            series_from_transport(
                stats._metric_series[name], data, f"payload.series.metrics.{name}", window_from
            )
        series_from_transport(
            stats._outcome_series, series.get("jobs"), "payload.series.jobs", counter_from
        )
        series_from_transport(
            stats._health_series, series.get("health"), "payload.series.health", health_from
        )
        return stats

    def merge_transport(self, payload: object) -> None:
        """Merge a worker's `pop_transport()`; nothing is merged if it is malformed."""
        self.merge(type(self).from_transport(payload, max_buckets=self._max_buckets))

    def series_json(
        self,
        max_points: int | None = None,
        parts: Iterable[str] = ("metrics", "jobs", "health"),
    ) -> dict[str, Any]:
        """Time series for charts, each at most `max_points` windows (all when None); `parts`:
        which of the three to build.

        {"metrics": {metric: {"width": s, "points": [{"t","count","mean","p50","p95","max"}]}},
         "jobs": {"width": s, "points": [{"t", "<outcome>": n, ...}]},
         "health": {"width": s, "points": [{"t","inQueue","inProgress","workers"}]}}
        """

        def view(series: Buckets[Slot]) -> Buckets[Slot]:
            return series if max_points is None else series.coarsened(max_points)

        wanted = set(parts)
        out: dict[str, Any] = {}
        if "metrics" in wanted:
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
            out["metrics"] = metrics
        if "jobs" in wanted:
            jobs = view(self._outcome_series)
            out["jobs"] = {
                "width": jobs.width,
                "points": [{"t": t, **_ordered_outcomes(c)} for t, c in sorted(jobs.slots.items())],
            }
        if "health" in wanted:
            health = view(self._health_series)
            out["health"] = {
                "width": health.width,
                "points": [
                    slot.sample.to_json()
                    for _, slot in sorted(health.slots.items())
                    if slot.sample is not None
                ],
            }
        return out


def _ordered_outcomes(counts: Mapping[str, int]) -> dict[str, int]:
    ordered = {SUBMITTED: counts[SUBMITTED]} if SUBMITTED in counts else {}
    ordered.update(
        (name, counts[name]) for name in sorted(counts) if name not in (SUBMITTED, SLO_MET)
    )
    return ordered
