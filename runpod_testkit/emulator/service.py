"""Request handling shared by both transports (the ASGI app and the respx adapter).

A request is handled in two steps so that a transport can refuse an oversize body before reading it:
`preflight()` routes it through the operations table and checks auth, method, rate limit and query;
`execute()` parses the body and runs the operation. A request answered with an error (or an
injected fault) instead of running raises `Refusal` where that is decided, carrying its reply;
each transport turns it into its response in one place, as Starlette's `HTTPException` is.
An operation that waits (/runsync,
/status-sync, /stream) returns a `Hold`; the transport waits in its own way (real time or a virtual
clock) until `Hold.ready()` or the deadline, then sends `Hold.reply()`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from runpod_testkit.emulator.faults import OperationFaultInjector
from runpod_testkit.emulator.jsonbody import BodyError, dumps, loads
from runpod_testkit.emulator.model import Job, JobRequestError, Model
from runpod_testkit.operations import (
    OPERATIONS,
    JobStatus,
    Operation,
    QueryParamError,
    RateLimit,
    parse_query,
)

__all__ = [
    "Call",
    "EmulatorService",
    "Hold",
    "RateLimiter",
    "Refusal",
    "Reply",
    "describe_size",
    "error",
    "production_rate_limits",
    "too_large",
]

MAX_JSON_DEPTH = 128
"""Deepest nesting of a /run or /runsync body. The JSON encoder stops at 254 levels, and a job's
input comes back inside its output (the probe's echo); production's own limit is undocumented."""

_BY_SEGMENT: dict[str, Operation] = {op.path.split("/")[1]: op for op in OPERATIONS.values()}


@dataclass(slots=True)
class Reply:
    status: int
    body: Any
    """The JSON value to send, or its encoding already (bytes)."""
    headers: dict[str, str] | None = None
    """Extra headers (Allow, Retry-After); None for none."""
    delay_s: float = 0.0
    """An injected fault's added latency: wait this long before answering."""
    reset: bool = False
    """An injected fault: close the connection without answering at all."""

    def encode(self) -> bytes:
        body = self.body
        return body if isinstance(body, bytes) else dumps(body)


class Refusal(Exception):
    """The request is answered with `reply` (an error, or an injected fault) instead of running."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply

    @classmethod
    def error(cls, status: int, message: str, **headers: str) -> Refusal:
        """`raise Refusal.error(404, "...")`: an error body naming what was wrong."""
        return cls(error(status, message, **headers))


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """True when `value` holds objects or arrays nested more than `limit` levels (iterative:
    no recursion limit, and only containers are visited)."""
    if not isinstance(value, (dict, list)):
        return False
    pending: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while pending:
        container, depth = pending.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, dict) else container
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _clip(text: str, limit: int = 80) -> str:
    """A client-sent name cut short for an error message (ids may be kilobytes long)."""
    return text if len(text) <= limit else text[:limit] + "..."


def error(status: int, message: str, **headers: str) -> Reply:
    """Every error body is a JSON object naming what was wrong."""
    return Reply(status, {"error": message}, dict(headers) if headers else None)


@dataclass(slots=True)
class Call:
    """A request that passed preflight: what remains is reading its body and running it."""

    operation: Operation
    endpoint_id: str
    job_id: str | None
    params: Mapping[str, int]
    """Query values with defaults filled in (shared between calls: read only)."""
    limited: bool = False
    """True when it holds a concurrency slot that `EmulatorService.release` must give back."""
    delay_s: float = 0.0
    """An injected fault's added latency: wait this long before reading the body."""

    @property
    def max_body_bytes(self) -> int:
        # Operations without a documented body still read a small one (the JS SDK posts {}).
        return self.operation.max_body_bytes or 64 * 1024


class Hold:
    """A reply that waits: until the job ends (runsync, status-sync) or has new chunks (stream)."""

    def __init__(self, model: Model, job: Job, deadline: float, *, for_chunks: bool) -> None:
        self.model = model
        self.job = job
        self.deadline = deadline
        self.for_chunks = for_chunks

    def ready(self) -> bool:
        job = self.job
        if job.is_terminal or self.model.now() >= self.deadline:
            return True
        return self.for_chunks and job.chunks_available(self.model.now()) > job.chunks_sent

    def wake_at(self) -> float:
        """The latest moment to look again if no event comes first (next chunk or deadline)."""
        if self.for_chunks:
            next_chunk = self.job.next_chunk_at(self.model.now())
            if next_chunk is not None:
                return min(next_chunk, self.deadline)
        return self.deadline

    def reply(self) -> Reply:
        self.model.advance()
        job = self.job
        if self.for_chunks:
            return Reply(200, stream_body(job, self.model.now()))
        return Reply(200, job.encoded_body())  # the same job object /status answers


def stream_body(job: Job, now: float) -> dict[str, Any]:
    return {"id": job.id, "status": job.status, "stream": job.take_new_chunks(now)}


class RateLimiter:
    """Fixed 10-second windows and in-flight caps per endpoint and rate-limit group (off unless
    the emulator is started with --rate-limits)."""

    def __init__(self, limits: Mapping[str, RateLimit]) -> None:
        self.limits = dict(limits)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._in_flight: dict[tuple[str, str], int] = {}

    def admit(self, endpoint_id: str, op: Operation, now: float) -> float | None:
        """None if admitted (and a slot taken); otherwise seconds until a retry can succeed."""
        limit = self.limits.get(op.rate_limit_group)
        if limit is None:
            return None
        key = (endpoint_id, op.rate_limit_group)
        window_start, count = self._windows.get(key, (now, 0))
        if now - window_start >= limit.window_s:
            window_start, count = now, 0
        if count >= limit.requests:
            return max(0.001, window_start + limit.window_s - now)
        if limit.concurrent is not None and self._in_flight.get(key, 0) >= limit.concurrent:
            return 1.0
        self._windows[key] = (window_start, count + 1)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return None

    def release(self, endpoint_id: str, op: Operation) -> None:
        key = (endpoint_id, op.rate_limit_group)
        if key in self._in_flight:
            self._in_flight[key] -= 1


def production_rate_limits() -> dict[str, RateLimit]:
    return {op.rate_limit_group: op.rate_limit for op in OPERATIONS.values() if op.rate_limit}


def describe_size(size: int) -> str:
    """A byte count as production's messages state limits: `10MiB`, `64KiB`."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def too_large(call: Call) -> Refusal:
    """A body over the operation's limit, answered as production answers an oversize /run
    (captured 2026-09): 400 with a problem-JSON body, not 413."""
    return Refusal(
        Reply(
            400,
            {
                "status": 400,
                "title": "Bad Request",
                "detail": f"bad request: body: exceeded max body size of "
                f"{describe_size(call.max_body_bytes)}",
            },
        )
    )


def _presented_key(authorization: str | None) -> str:
    """The key in an Authorization header, bare or after `Bearer` ("" when there is none)."""
    if not authorization:
        return ""
    scheme, _, rest = authorization.strip().partition(" ")
    # HTTP strips trailing blanks, so `Bearer ` with an empty key arrives as a bare `Bearer`.
    return rest.strip() if scheme.lower() == "bearer" else authorization.strip()


class EmulatorService:
    def __init__(
        self,
        model: Model,
        *,
        api_key: str | None = None,
        rate_limiter: RateLimiter | None = None,
        faults: OperationFaultInjector | None = None,
        endpoint_ids: Collection[str] | None = None,
    ) -> None:
        self.model = model
        self.faults = faults
        """Draws injected operation faults (--faults); None when none are configured."""
        # --endpoint-id: only these ids exist (None: every id does, each its own queue).
        self.endpoint_ids = None if endpoint_ids is None else frozenset(endpoint_ids)
        self._api_key = api_key
        self._api_key_bytes = None if api_key is None else api_key.encode()
        # What nearly every client sends; compared first, the general parse only on a mismatch.
        self._usual_authorization = None if api_key is None else f"Bearer {api_key}"
        self.rate_limiter = rate_limiter
        # Most requests carry no query string: their parameters are each operation's defaults.
        self._default_params = {op.name: parse_query(op, {}) for op in OPERATIONS.values()}
        self._operations: dict[str, Callable[[Call, bytes], Reply | Hold]] = {
            "run": self._submit,
            "runsync": self._submit,
            "status": self._status,
            "status-sync": self._status_sync,
            "stream": self._stream,
            "cancel": self._cancel,
            "retry": self._retry,
            "purge-queue": self._purge_queue,
            "health": self._health,
        }
        if self._operations.keys() != OPERATIONS.keys():  # pragma: no cover - a table edit
            raise AssertionError("every operation of the table needs a handler")

    def __repr__(self) -> str:
        return f"EmulatorService(auth={'key' if self._api_key else 'any key'})"

    def authorized(self, authorization: str | None) -> bool:
        """Production documents both `Authorization: KEY` and `Authorization: Bearer KEY`.
        Without --api-key any non-empty key is accepted; no key is always 401."""
        if not authorization:
            return False
        usual = self._usual_authorization
        if (
            usual is not None
            and authorization.isascii()
            and hmac.compare_digest(authorization, usual)
        ):
            return True
        presented = _presented_key(authorization)
        if not presented:
            return False
        if self._api_key_bytes is None:
            return True
        return hmac.compare_digest(presented.encode(), self._api_key_bytes)

    @staticmethod
    def refusal(authorization: str | None) -> str:
        """Why a request was refused with 401: no key, or a key that is not this endpoint's
        (never the key itself)."""
        if not _presented_key(authorization):
            return (
                "no API key: send 'Authorization: Bearer <key>' (or the raw key) with the key of "
                "this endpoint"
            )
        return "wrong API key: the key sent is not this endpoint's key"

    def preflight(
        self,
        method: str,
        endpoint_id: str,
        op_path: str,
        query: Mapping[str, str],
        authorization: str | None,
    ) -> Call:
        """Route `op_path` (what follows the endpoint id) to its operation, then `admit` it;
        raises Refusal for what cannot be routed or admitted."""
        stripped = op_path.strip("/")
        segments = stripped.split("/") if stripped else []
        op = _BY_SEGMENT.get(segments[0]) if segments and endpoint_id else None
        if op is None:
            known = ", ".join(f"/{name}" for name in _BY_SEGMENT)
            asked = _clip("/" + "/".join(segments))
            raise Refusal.error(404, f"no such operation {asked!r}; known: {known}")
        job_id: str | None = None
        if op.takes_job_id:
            if len(segments) < 2 or not segments[1]:
                raise Refusal.error(404, f"/{segments[0]} needs a job id: {op.path}")
            if len(segments) > 2:
                # An encoded slash (%2F) arrives decoded; no job id contains one.
                asked = _clip("/".join(segments[1:]))
                raise Refusal.error(404, f"job id {asked!r} is not one path segment: {op.path}")
            job_id = segments[1]
        elif len(segments) != 1:
            raise Refusal.error(404, f"/{segments[0]} takes no job id: {op.path}")
        return self.admit(op, method, endpoint_id, job_id, query=query, authorization=authorization)

    def admit(
        self,
        op: Operation,
        method: str,
        endpoint_id: str,
        job_id: str | None,
        *,
        query: Mapping[str, str],
        authorization: str | None,
    ) -> Call:
        """Check auth, method, query and rate limit of a request already routed to `op` (with
        a non-empty `endpoint_id`, and a one-segment `job_id` exactly when `op` takes one);
        raises Refusal for a request that is not admitted or draws an injected fault."""
        if not self.authorized(authorization):
            raise Refusal.error(401, self.refusal(authorization))
        if self.endpoint_ids is not None and endpoint_id not in self.endpoint_ids:
            raise self._no_such_endpoint(endpoint_id)
        if method not in op.methods:
            allowed = ", ".join(op.methods)
            raise Refusal.error(405, f"{op.path} accepts {allowed}, not {method}", allow=allowed)
        if query:
            try:
                params: Mapping[str, int] = parse_query(op, query)
            except QueryParamError as exc:
                raise Refusal.error(400, str(exc)) from None
        else:
            params = self._default_params[op.name]
        call = Call(op, endpoint_id, job_id, params)
        if self.faults is not None:
            fault = self.faults.draw(op.name)
            if fault is not None:
                if fault.reset:
                    raise Refusal(Reply(0, b"", delay_s=fault.delay_s, reset=True))
                if fault.status is not None:
                    reply = error(
                        fault.status,
                        f"injected fault: {fault.status} {HTTPStatus(fault.status).phrase} "
                        f"on /{op.name} (--faults)",
                    )
                    if fault.status == 429:
                        reply.headers = {"retry-after": str(fault.retry_after_s)}
                    reply.delay_s = fault.delay_s
                    raise Refusal(reply)
                call.delay_s = fault.delay_s
        if self.rate_limiter is not None:
            retry_after = self.rate_limiter.admit(endpoint_id, op, self.model.now())
            if retry_after is not None:
                seconds = max(1, round(retry_after + 0.5))
                raise Refusal.error(
                    429,
                    f"rate limit of /{op.name} exceeded; retry after {seconds} s",
                    **{"retry-after": str(seconds)},
                )
            call.limited = True
        return call

    def _no_such_endpoint(self, endpoint_id: str) -> Refusal:
        """404 for an id the emulator was not started with (asked with a valid key, as a
        gateway would check the key first)."""
        assert self.endpoint_ids is not None
        known = ", ".join(repr(each) for each in sorted(self.endpoint_ids))
        return Refusal.error(
            404, f"no endpoint {_clip(endpoint_id)!r} here; this emulator serves {known}"
        )

    def release(self, call: Call) -> None:
        if call.limited and self.rate_limiter is not None:
            self.rate_limiter.release(call.endpoint_id, call.operation)
            call.limited = False

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        """Run an admitted call: its reply, or the Hold to wait on; raises Refusal for a body
        or a job it refuses."""
        return self._operations[call.operation.name](call, body)

    def _submit(self, call: Call, body: bytes) -> Reply | Hold:
        """/run and /runsync."""
        model = self.model
        try:
            parsed = loads(body) if body else None
        except BodyError as exc:
            raise Refusal.error(400, str(exc)) from None
        # Nesting deeper than the limit takes more opening brackets than the limit: count
        # them in C first and walk the parsed tree only when that many are there.
        if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and _nests_deeper_than(
            parsed, MAX_JSON_DEPTH
        ):
            raise Refusal.error(
                400,
                f"request body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels",
            )
        sync = call.operation.name == "runsync"
        try:
            submitted = model.submit(call.endpoint_id, parsed, sync=sync)
        except JobRequestError as exc:
            raise Refusal.error(400, str(exc)) from None
        if not sync:
            return Reply(200, {"id": submitted.id, "status": JobStatus.IN_QUEUE})
        deadline = model.now() + call.params["wait"] / 1000
        return Hold(model, submitted, deadline, for_chunks=False)

    def _purge_queue(self, call: Call, _body: bytes) -> Reply:
        removed = self.model.purge_queue(call.endpoint_id)
        return Reply(200, {"removed": removed, "status": "completed"})

    def _health(self, call: Call, _body: bytes) -> Reply:
        return Reply(200, self.model.health(call.endpoint_id))

    def _job(self, call: Call) -> Job:
        """The job the call names; a 404 when there is none."""
        assert call.job_id is not None
        job = self.model.get(call.endpoint_id, call.job_id)
        if job is None:
            raise Refusal.error(
                404, f"job {_clip(call.job_id)!r} not found on endpoint {_clip(call.endpoint_id)!r}"
            )
        return job

    def _status(self, call: Call, _body: bytes) -> Reply:
        job = self._job(call)
        if "ttl" in call.params:
            self.model.set_ttl(job, call.params["ttl"])
        return Reply(200, job.encoded_body())

    def _hold(self, call: Call, *, for_chunks: bool) -> Reply | Hold:
        """/status-sync and /stream: answered once the job ends (or has new chunks)."""
        job = self._job(call)
        model = self.model
        return Hold(model, job, model.now() + call.params["wait"] / 1000, for_chunks=for_chunks)

    def _status_sync(self, call: Call, _body: bytes) -> Reply | Hold:
        return self._hold(call, for_chunks=False)

    def _stream(self, call: Call, _body: bytes) -> Reply | Hold:
        return self._hold(call, for_chunks=True)

    def _cancel(self, call: Call, _body: bytes) -> Reply:
        job = self._job(call)
        was_running = job.status == JobStatus.IN_PROGRESS
        self.model.cancel(job)
        if was_running and job.status == JobStatus.CANCELLED:
            # Production answers the cancel of a running job with its timings (captured
            # 2026-09); a queued one with its id and status only.
            return Reply(
                200,
                {
                    "delayTime": job.delay_ms,
                    "executionTime": job.execution_ms,
                    "id": job.id,
                    "status": job.status,
                },
            )
        return Reply(200, {"id": job.id, "status": job.status})

    def _retry(self, call: Call, _body: bytes) -> Reply:
        job = self._job(call)
        if job.status not in JobStatus.RETRYABLE:
            raise Refusal.error(
                400,
                f"job {job.id!r} is {job.status}; only FAILED or TIMED_OUT jobs can be retried",
            )
        self.model.retry(job)
        # Like /run, /retry answers with the state at acceptance, whatever happened since.
        return Reply(200, {"id": job.id, "status": JobStatus.IN_QUEUE})
