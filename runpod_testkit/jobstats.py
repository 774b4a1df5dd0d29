"""Job statistics of a load run: kept importable here; the code lives in runpod_testkit.stats
(accumulator, series, wire format, thresholds, snapshot, views)."""

from runpod_testkit.stats.accumulator import JobStats, MetricSummary
from runpod_testkit.stats.names import (
    CLIENT_ERROR,
    CLIENT_TIMEOUT,
    CONNECTION_ERROR,
    DROPPED,
    HIGHEST_TRACKABLE_MS,
    INTERRUPTED,
    LATE,
    METRICS,
    NON_TERMINAL_OUTCOMES,
    PACED,
    PACED_WAIT_MS,
    REFUSED,
    REPORTED_PERCENTILES,
    REQUEST_COUNTS,
    RETRIED,
    SERVER_ERROR,
    SLO_MET,
    SUBMITTED,
    THROTTLED,
    UNJUDGED_OUTCOMES,
    UNKNOWN_OUTCOME,
)
from runpod_testkit.stats.series import HealthSample
from runpod_testkit.stats.wire import JobStatsFormatError

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
