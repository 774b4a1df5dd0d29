"""The operations table: the single source of truth for the queue API surface.

Every other module (client, emulator routes, respx routes, contract test parametrisation,
Locust request names) reads paths, methods, query ranges, limits and response schema names
from here; nothing else spells them.

Sources: docs/operations/ (one page per operation) and the public pages they cite.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ERROR_SCHEMA",
    "MAX_JOB_LIFETIME_MS",
    "OPERATIONS",
    "POLICY_LIMITS",
    "RETENTION_ASYNC_S",
    "RETENTION_SYNC_S",
    "JobStatus",
    "Operation",
    "QueryParam",
    "QueryParamError",
    "RateLimit",
    "operation",
    "parse_query",
]

MiB = 1024 * 1024
MAX_JOB_LIFETIME_MS = 7 * 24 * 3600 * 1000  # policy.ttl and executionTimeout cap: one week

# Result retention after a job ends (docs/job-states.md#order).
RETENTION_ASYNC_S = 30 * 60.0
RETENTION_SYNC_S = 60.0

ERROR_SCHEMA = "error"
_DECIMAL = re.compile(r"[+-]?[0-9]+", re.ASCII)


class JobStatus:
    """The job states production reports (docs/job-states.md#state-words); plain strings on the
    wire."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    ALL = (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT)
    TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})
    RETRYABLE = frozenset({FAILED, TIMED_OUT})


@dataclass(frozen=True)
class PolicyLimit:
    """Documented range of one `policy` key, in milliseconds (https://docs.runpod.io/serverless/endpoints/send-requests)."""

    minimum: int
    maximum: int
    default: int


POLICY_LIMITS: Mapping[str, PolicyLimit] = MappingProxyType(
    {
        "executionTimeout": PolicyLimit(5_000, MAX_JOB_LIFETIME_MS, 600_000),
        "ttl": PolicyLimit(10_000, MAX_JOB_LIFETIME_MS, 86_400_000),
    }
)


class QueryParamError(ValueError):
    """A query parameter that is not an integer or lies outside its documented range."""


@dataclass(frozen=True)
class QueryParam:
    """An integer query parameter with its documented range and default (milliseconds)."""

    name: str
    minimum: int
    maximum: int
    default: int | None
    description: str

    def parse(self, raw: str) -> int:
        # Plain ASCII decimal only, as production's Go parser takes it (int() would also take
        # "1_000", " 1000" and non-ASCII digits).
        if _DECIMAL.fullmatch(raw) is None:
            raise QueryParamError(
                f"query parameter {self.name!r} must be an integer number of milliseconds "
                f"from {self.minimum} to {self.maximum}, got {raw[:40]!r}"
            )
        value = int(raw)
        if not self.minimum <= value <= self.maximum:
            raise QueryParamError(
                f"query parameter {self.name!r} must be from {self.minimum} to "
                f"{self.maximum} ms, got {value}"
            )
        return value


@dataclass(frozen=True)
class RateLimit:
    """Per endpoint and operation: `requests` per `window_s` seconds, `concurrent` in flight."""

    requests: int
    window_s: float
    concurrent: int | None


@dataclass(frozen=True)
class Operation:
    """One queue API operation as a client sees it under `{base}/{endpoint_id}`."""

    name: str
    methods: tuple[str, ...]
    path: str
    """Path below the endpoint URL; `{job_id}` marks the job id segment."""
    summary: str
    query: tuple[QueryParam, ...] = ()
    max_body_bytes: int | None = None
    """Largest accepted request body; None for operations that take no body."""
    request_schema: str | None = None
    response_schema: str = ""
    """Schema name (runpod_testkit/_data/schemas/{name}.schema.json) of the 200 body."""
    # Production answers an oversize /run with 400 (captured 2026-09), as the emulator does for
    # every operation; 413 stays accepted, as the HTTP status a gateway may use for it.
    error_statuses: tuple[int, ...] = (400, 401, 404, 405, 413, 429)
    rate_limit: RateLimit | None = None
    rate_limit_group: str = ""
    """Operations in one group share one rate-limit budget (status, status-sync, stream)."""
    documented: bool = True
    responses: Mapping[int, str] = field(init=False)

    def __post_init__(self) -> None:
        responses = {200: self.response_schema}
        responses.update(dict.fromkeys(self.error_statuses, ERROR_SCHEMA))
        object.__setattr__(self, "responses", MappingProxyType(responses))
        if not self.rate_limit_group:
            object.__setattr__(self, "rate_limit_group", self.name)

    @property
    def takes_job_id(self) -> bool:
        return "{job_id}" in self.path

    @property
    def method(self) -> str:
        """The method the documentation uses (the first listed)."""
        return self.methods[0]

    def url(self, endpoint_url: str, job_id: str | None = None) -> str:
        """The full URL of this operation for an endpoint URL such as `{base}/{endpoint_id}`."""
        return endpoint_url.rstrip("/") + self.path_for(job_id)

    def path_for(self, job_id: str | None = None) -> str:
        if self.takes_job_id:
            if not job_id:
                raise ValueError(f"operation {self.name!r} needs a job id")
            return self.path.replace("{job_id}", job_id)
        return self.path

    def query_param(self, name: str) -> QueryParam | None:
        for param in self.query:
            if param.name == name:
                return param
        return None


_WAIT_RUNSYNC = QueryParam(
    "wait", 1_000, 300_000, 90_000, "how long /runsync holds the request for the job to end"
)
_WAIT_STATUS_SYNC = QueryParam(
    "wait", 1_000, 90_000, 90_000, "how long /status-sync holds the request for the job to end"
)
# Undocumented for production; the Go SDK sends it. Bounded below the official SDK's
# 10-second GET timeout so that a held /stream never times a client out.
_WAIT_STREAM = QueryParam(
    "wait", 0, 60_000, 5_000, "how long /stream holds the request for new chunks"
)
_TTL_STATUS = QueryParam(
    "ttl", 1_000, MAX_JOB_LIFETIME_MS, None, "delete the job this many ms from now"
)

_STATUS_GROUP = "status"
_JOB_READ_LIMIT = RateLimit(2000, 10.0, 400)

_TABLE = (
    Operation(
        "run",
        ("POST",),
        "/run",
        "Submit an asynchronous job; answers at once with its id.",
        max_body_bytes=10 * MiB,
        request_schema="request",
        response_schema="run.response",
        rate_limit=RateLimit(1000, 10.0, 200),
    ),
    Operation(
        "runsync",
        ("POST",),
        "/runsync",
        "Submit a job and wait up to ?wait ms for it to end.",
        query=(_WAIT_RUNSYNC,),
        max_body_bytes=20 * MiB,
        request_schema="request",
        response_schema="runsync.response",
        rate_limit=RateLimit(2000, 10.0, 400),
    ),
    Operation(
        "status",
        ("GET", "POST"),
        "/status/{job_id}",
        "The job's state, timings and output.",
        query=(_TTL_STATUS,),
        response_schema="status.response",
        rate_limit=_JOB_READ_LIMIT,
        rate_limit_group=_STATUS_GROUP,
    ),
    Operation(
        "status-sync",
        ("GET", "POST"),
        "/status-sync/{job_id}",
        "Legacy: like /status but waits up to ?wait ms for the job to end.",
        query=(_WAIT_STATUS_SYNC,),
        response_schema="status.response",
        rate_limit=_JOB_READ_LIMIT,
        rate_limit_group=_STATUS_GROUP,
        documented=False,
    ),
    Operation(
        "stream",
        ("GET", "POST"),
        "/stream/{job_id}",
        "Chunks produced since the previous call (drains).",
        query=(_WAIT_STREAM,),
        response_schema="stream.response",
        rate_limit=_JOB_READ_LIMIT,
        rate_limit_group=_STATUS_GROUP,
    ),
    Operation(
        "cancel",
        ("POST",),
        "/cancel/{job_id}",
        "Stop a running job or remove a queued one.",
        response_schema="cancel.response",
        rate_limit=RateLimit(100, 10.0, 20),
    ),
    Operation(
        "retry",
        ("POST",),
        "/retry/{job_id}",
        "Requeue a FAILED or TIMED_OUT job under the same id.",
        response_schema="retry.response",
    ),
    Operation(
        "purge-queue",
        ("POST",),
        "/purge-queue",
        "Remove every job still waiting in the queue.",
        response_schema="purge-queue.response",
        rate_limit=RateLimit(2, 10.0, None),
    ),
    Operation(
        "health",
        ("GET",),
        "/health",
        "Job counters and worker states.",
        response_schema="health.response",
    ),
)

OPERATIONS: Mapping[str, Operation] = MappingProxyType({op.name: op for op in _TABLE})


def operation(name: str) -> Operation:
    """The operation called `name`, with an error that lists the valid names."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; known: {', '.join(OPERATIONS)}") from None


def parse_query(op: Operation, params: Mapping[str, str]) -> dict[str, int]:
    """Parse `op`'s query parameters from `params`, filling defaults; unknown names are ignored
    (production ignores them too). Raises QueryParamError naming the bad parameter."""
    values: dict[str, int] = {}
    for param in op.query:
        raw = params.get(param.name)
        if raw is None:
            if param.default is not None:
                values[param.name] = param.default
        else:
            values[param.name] = param.parse(raw)
    return values
