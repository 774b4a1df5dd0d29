"""The names every part of the statistics shares: metrics, reported percentiles, job
outcomes and request counts (the keys of --job-stats-json)."""

from __future__ import annotations

from runpod_testkit.operations import MAX_JOB_LIFETIME_MS

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
    "SIGNIFICANT_DIGITS",
    "SLO_MET",
    "SUBMITTED",
    "THROTTLED",
    "UNJUDGED_OUTCOMES",
    "UNKNOWN_OUTCOME",
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
