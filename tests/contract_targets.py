"""Endpoints for the contract suite's self-tests, served over real HTTP on loopback.

Each variant is the emulator with one difference: a BREAK of the contract, which the suite must
fail while naming the broken operation, or a FAITHFUL difference that production allows, which
the suite must pass. One uvicorn server serves a set of variants: `/v2/{variant}/...` goes to
that variant's own emulator, so the suite's endpoint URL for a variant is `{base}/{variant}`.

A difference is made in one of three places:
- `Tamper`, an ASGI wrapper that can answer a request itself, change its headers or body, and
  rewrite the response (status, headers, JSON body) on its way out;
- a subclass of the emulator's `Model` (what happens to jobs);
- a subclass of `EmulatorService` (how an operation is answered).

    with serving(VARIANTS, api_key="k") as base_url:
        endpoint_url = f"{base_url}/{variant.name}"
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runpod_testkit.emulator.app import EmulatorApp
from runpod_testkit.emulator.model import EmulatorConfig, Job, Model
from runpod_testkit.emulator.service import Call, EmulatorService, Hold, Reply
from runpod_testkit.operations import JobStatus

__all__ = [
    "ECHO_KEY_VARIANT",
    "VARIANTS",
    "VARIANT_CONFIG",
    "ForwardingProxy",
    "Incoming",
    "Outgoing",
    "Tamper",
    "Variant",
    "serving",
    "serving_apps",
    "variant",
]

# The suite's own --emulator settings (runpod_testkit.suite.target), so that a variant differs
# from what the checks were tuned against only where the variant says.
VARIANT_CONFIG = EmulatorConfig(workers_max=4, cold_start_ms=300, idle_timeout_s=2.0, seed=7)

JOB_OPERATIONS = frozenset({"run", "runsync", "status", "status-sync", "cancel", "retry"})
"""Operations whose 200 body is a job object."""
_NOT_JSON = object()


# --- the ASGI wrapper ----------------------------------------------------------------------


@dataclass
class Incoming:
    """A request as the variant's tamper hooks see it; `headers` and `body` may be changed."""

    method: str
    operation: str | None
    job_id: str | None
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    memo: dict[str, Any]
    """State a stateful rewrite keeps across requests (one per variant endpoint)."""

    def json_body(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return _NOT_JSON


@dataclass
class Outgoing:
    """A response on its way out; set `body` (JSON) or `raw` (bytes, when `body` is not JSON)."""

    status: int
    headers: dict[str, str]
    """Lower-case names; content-length is recomputed when sent."""
    body: Any = _NOT_JSON
    raw: bytes = b""

    @classmethod
    def json(cls, status: int, body: Any) -> Outgoing:
        return cls(status, {"content-type": "application/json"}, body)

    @property
    def is_json(self) -> bool:
        return self.body is not _NOT_JSON

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode() if self.is_json else self.raw

    async def send(self, send: Send) -> None:
        content = self.encoded()
        headers = [(name.encode(), value.encode()) for name, value in self.headers.items()]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


Intercept = Callable[[Incoming], "Outgoing | None"]
Rewrite = Callable[[Incoming, Outgoing], None]


class Tamper:
    """Wraps an endpoint's ASGI app: `before` may answer a request itself or change it,
    `after` rewrites the (fully buffered) response."""

    def __init__(
        self, app: ASGIApp, *, before: Intercept | None = None, after: Rewrite | None = None
    ) -> None:
        self.app = app
        self.before = before
        self.after = after
        self.memo: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _incoming(scope, await _read_body(receive), self.memo)
        if self.before is not None:
            answer = self.before(incoming)
            if answer is not None:
                await answer.send(send)
                return
        headers = [(name.encode(), value.encode()) for name, value in incoming.headers.items()]
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": incoming.body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        captured = _Captured()
        await self.app({**scope, "headers": headers}, replay, captured)
        outgoing = captured.outgoing()
        if self.after is not None:
            self.after(incoming, outgoing)
        await outgoing.send(send)


class _Captured:
    def __init__(self) -> None:
        self.status = 500
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() != b"content-length":
                    self.headers[name.decode().lower()] = value.decode()
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def outgoing(self) -> Outgoing:
        raw = b"".join(self.chunks)
        try:
            body = json.loads(raw) if raw else _NOT_JSON
        except ValueError:
            body = _NOT_JSON
        return Outgoing(self.status, self.headers, body, raw)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _incoming(scope: Scope, body: bytes, memo: dict[str, Any]) -> Incoming:
    # /v2/{endpoint_id}/{operation}[/{job_id}]
    segments = scope["path"].strip("/").split("/")
    operation = segments[2] if len(segments) > 2 else None
    job_id = segments[3] if len(segments) > 3 else None
    query = dict(parse_qsl(scope.get("query_string", b"").decode()))
    headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
    return Incoming(scope["method"], operation, job_id, query, headers, body, memo)


class GzipEverything:
    """Compresses every response (a CDN in front of production may), whatever its size."""

    def __init__(self, app: ASGIApp) -> None:
        self.tamper = Tamper(app, after=self._compress)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.tamper(scope, receive, send)

    @staticmethod
    def _compress(request: Incoming, response: Outgoing) -> None:
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return
        response.raw = gzip.compress(response.encoded())
        response.body = _NOT_JSON
        response.headers["content-encoding"] = "gzip"
        response.headers["vary"] = "Accept-Encoding"


# --- variants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One endpoint: the emulator with one difference (see the module docstring)."""

    name: str
    kind: Literal["break", "faithful"]
    what: str
    """One line: how this endpoint differs from the emulator."""
    caught_by: tuple[str, ...] = ()
    """Breaks: the operations of which at least one must have a failing check."""
    drift: bool = False
    """Faithful: its differences are drift, so the run fails under --strict."""
    config: EmulatorConfig = VARIANT_CONFIG
    model: type[Model] = Model
    service: type[EmulatorService] = EmulatorService
    before: Intercept | None = None
    after: Rewrite | None = None
    wrap: Callable[[ASGIApp], ASGIApp] | None = None
    job_timeout_s: float = 20.0
    """--job-timeout for its run: the slow probe job (3 s) plus a cold start, with room."""

    def build(self, api_key: str) -> tuple[ASGIApp, EmulatorApp]:
        emulator = EmulatorApp(self.config, api_key=api_key)
        if self.model is not Model or self.service is not EmulatorService:
            model = self.model(self.config, emulator.clock, on_change=emulator.model.on_change)
            emulator.model = model
            emulator.service = self.service(model, api_key=api_key)
        app: ASGIApp = emulator.starlette
        if self.before is not None or self.after is not None:
            app = Tamper(app, before=self.before, after=self.after)
        if self.wrap is not None:
            app = self.wrap(app)
        return app, emulator


def _job(request: Incoming, response: Outgoing) -> dict[str, Any] | None:
    """The job object of a 200 answer, if the operation answers with one."""
    body = response.body
    if (
        response.status == 200
        and request.operation in JOB_OPERATIONS
        and isinstance(body, dict)
        and "status" in body
    ):
        return body
    return None


def _stream(request: Incoming, response: Outgoing) -> dict[str, Any] | None:
    body = response.body
    if response.status == 200 and request.operation == "stream" and isinstance(body, dict):
        return body
    return None


# -- breaks: job bodies


def _drop_timings_when_completed(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and job["status"] == JobStatus.COMPLETED:
        job.pop("delayTime", None)
        job.pop("executionTime", None)


def _drop_error_when_failed(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and job["status"] == JobStatus.FAILED:
        job.pop("error", None)


def _map_timings(change: Callable[[int], Any], *names: str) -> Rewrite:
    def rewrite(request: Incoming, response: Outgoing) -> None:
        job = _job(request, response)
        for name in names:
            if job is not None and isinstance(job.get(name), int):
                job[name] = change(job[name])

    return rewrite


def _run_completed_without_id(request: Incoming, response: Outgoing) -> None:
    if request.operation == "run" and response.status == 200:
        response.body = {"status": JobStatus.COMPLETED}


def _status_answers_another_id(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and request.operation == "status":
        job["id"] = f"job-{job['id']}"


def _terminal_time_keeps_counting(request: Incoming, response: Outgoing) -> None:
    """Every read of a finished job reports a longer executionTime than the one before."""
    job = _job(request, response)
    if job is None or request.operation != "status" or job["status"] not in JobStatus.TERMINAL:
        return
    reads = request.memo.setdefault("reads", {})
    reads[job["id"]] = reads.get(job["id"], 0) + 1
    job["executionTime"] = job.get("executionTime", 0) + 7 * reads[job["id"]]


def _terminal_status_flips_back(request: Incoming, response: Outgoing) -> None:
    """After a job was once read finished, later reads say IN_PROGRESS again (a stale replica)."""
    job = _job(request, response)
    if job is None or request.operation != "status" or job["status"] not in JobStatus.TERMINAL:
        return
    seen: set[str] = request.memo.setdefault("seen", set())
    if job["id"] in seen:
        job["status"] = JobStatus.IN_PROGRESS
        for name in ("output", "error", "executionTime"):
            job.pop(name, None)
    seen.add(job["id"])


def _result_forgotten(request: Incoming, response: Outgoing) -> None:
    """A finished job is deleted once read: the next /status answers 404 (no retention)."""
    job = _job(request, response)
    if job is None or request.operation != "status" or job["status"] not in JobStatus.TERMINAL:
        return
    seen: set[str] = request.memo.setdefault("seen", set())
    if job["id"] in seen:
        response.status = 404
        response.body = {"error": "job not found"}
    seen.add(job["id"])


def _lowercase_status(request: Incoming, response: Outgoing) -> None:
    body = _job(request, response) or _stream(request, response)
    if body is not None and isinstance(body.get("status"), str):
        body["status"] = body["status"].lower()


def _output_not_the_handlers(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and job["status"] == JobStatus.COMPLETED:
        job["output"] = {"result": "not what the handler returned"}


# -- breaks: operations


def _stream_terminal_without_list(request: Incoming, response: Outgoing) -> None:
    body = _stream(request, response)
    if body is not None and body.get("status") in JobStatus.TERMINAL:
        body.pop("stream", None)


def _stream_loses_first_chunk(request: Incoming, response: Outgoing) -> None:
    """The first chunk of every job never reaches a client (a lost write on the way)."""
    body = _stream(request, response)
    if body is None or not body.get("stream") or request.job_id is None:
        return
    started: set[str] = request.memo.setdefault("started", set())
    if request.job_id not in started:
        started.add(request.job_id)
        body["stream"] = body["stream"][1:]


def _retry_answers_new_id(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and request.operation == "retry":
        job["id"] = str(uuid.uuid4())


def _retry_refused(request: Incoming) -> Outgoing | None:
    if request.operation == "retry":
        return Outgoing.json(400, {"error": "this job cannot be retried"})
    return None


def _no_cancel_or_retry_route(request: Incoming) -> Outgoing | None:
    """A server that never had these routes: 404 for every job, known or not."""
    if request.operation in ("cancel", "retry"):
        return Outgoing.json(404, {"detail": "Not Found"})
    return None


def _cancel_claims_cancelled(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and request.operation == "cancel":
        job["status"] = JobStatus.CANCELLED


def _health(request: Incoming, response: Outgoing) -> bool:
    """Whether this is a 200 answer of /health."""
    body = response.body
    return request.operation == "health" and response.status == 200 and isinstance(body, dict)


def _health_frozen(request: Incoming, response: Outgoing) -> None:
    if _health(request, response):
        jobs = dict.fromkeys(("completed", "failed", "inProgress", "inQueue", "retried"), 0)
        response.body = {"jobs": jobs, "workers": {"idle": 0, "running": 0}}


def _health_without_workers(request: Incoming, response: Outgoing) -> None:
    if _health(request, response):
        response.body.pop("workers", None)


def _unknown_job_found(request: Incoming, response: Outgoing) -> None:
    if request.job_id and response.status == 404:
        response.status = 200
        response.body = {"id": request.job_id, "status": JobStatus.IN_QUEUE}


def _bad_json_crashes(request: Incoming) -> Outgoing | None:
    if request.operation in ("run", "runsync") and request.json_body() is _NOT_JSON:
        return Outgoing(500, {"content-type": "text/plain"}, raw=b"Internal Server Error")
    return None


def _bad_json_accepted(request: Incoming) -> Outgoing | None:
    if request.operation in ("run", "runsync") and request.json_body() is _NOT_JSON:
        request.body = b'{"input": {}}'
    return None


def _run_answers_202(request: Incoming, response: Outgoing) -> None:
    if request.operation == "run" and response.status == 200:
        response.status = 202


def _auth_answers_403(request: Incoming, response: Outgoing) -> None:
    if response.status == 401:
        response.status = 403
        response.body = {"error": "forbidden"}


def _text_plain(request: Incoming, response: Outgoing) -> None:
    response.headers["content-type"] = "text/plain; charset=utf-8"


class _AnyKeyService(EmulatorService):
    """Auth not enforced: any key, or none, is accepted."""

    def authorized(self, authorization: str | None) -> bool:
        return True


class _NoDrainService(EmulatorService):
    """/stream hands out every chunk produced so far on every call, instead of the new ones."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        result = super().execute(call, body)
        if call.operation.name == "stream" and isinstance(result, Hold):
            result.job.chunks_sent = 0
        return result


class _RunsyncHoldsToTheEndService(EmulatorService):
    """/runsync ignores ?wait and holds the request until the job ends (up to 5 minutes)."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        result = super().execute(call, body)
        if call.operation.name == "runsync" and isinstance(result, Hold):
            return Hold(self.model, result.job, self.model.now() + 300, for_chunks=False)
        return result


class _RunsyncAnswersAtOnceService(EmulatorService):
    """/runsync answers at once, as /run does, however long ?wait allows."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        result = super().execute(call, body)
        if call.operation.name == "runsync" and isinstance(result, Hold):
            return Hold(self.model, result.job, self.model.now(), for_chunks=False)
        return result


class _RetryAnyTerminalService(EmulatorService):
    """/retry requeues a COMPLETED (or CANCELLED) job too."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        if call.operation.name == "retry" and call.job_id is not None:
            job = self.model.get(call.endpoint_id, call.job_id)
            if job is not None and job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
                job.status = JobStatus.FAILED  # what the model's retry accepts
        return super().execute(call, body)


class _PurgeRunningModel(Model):
    """/purge-queue stops the running jobs too."""

    def purge_queue(self, endpoint_id: str) -> int:
        removed = super().purge_queue(endpoint_id)
        running = [
            job
            for job in self.endpoint(endpoint_id).jobs.values()
            if job.status == JobStatus.IN_PROGRESS
        ]
        for job in running:
            self.cancel(job)
        return removed + len(running)


class _RetryForgetsInputModel(Model):
    """/retry requeues the job with an empty input instead of the original one."""

    def retry(self, job: Job) -> None:
        job.input = {}
        super().retry(job)


class _CancelOnlyQueuedModel(Model):
    """/cancel removes a queued job but lets a running one run on."""

    def cancel(self, job: Job) -> None:
        self.advance()
        if job.status == JobStatus.IN_QUEUE:
            super().cancel(job)


# -- faithful differences


def _add_unknown_fields(request: Incoming, response: Outgoing) -> None:
    body = response.body
    if not isinstance(body, dict):
        return
    body["requestId"] = "req-7f3a"
    if _health(request, response):
        body["jobs"]["stale"] = 0
        body["workers"]["draining"] = 0
    for chunk in body.get("stream", None) or []:
        if isinstance(chunk, dict):
            chunk["metrics"] = {"tokens": 1}
            chunk["seq"] = 1


def _add_known_optional_fields(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is None:
        return
    job.setdefault("retries", 0)
    if request.operation == "cancel":
        job.setdefault("delayTime", 0)  # [JS]/[GO] declare the timings on cancel's answer
        job.setdefault("executionTime", 0)


def _health_workers(keep: tuple[str, ...] | None, add: Mapping[str, int]) -> Rewrite:
    def rewrite(request: Incoming, response: Outgoing) -> None:
        if not _health(request, response):
            return
        assert isinstance(response.body, dict)
        workers = response.body["workers"]
        if keep is not None:
            workers = {name: count for name, count in workers.items() if name in keep}
        response.body["workers"] = {**workers, **add}

    return rewrite


def _error_bodies_in_other_shapes(request: Incoming, response: Outgoing) -> None:
    if response.status < 400 or not isinstance(response.body, dict):
        return
    message = str(response.body.get("error", "error"))
    if response.status in (400, 404):
        response.body = {"detail": message}
    else:
        response.body = {"message": message, "code": response.status}


def _stream_without_id(request: Incoming, response: Outgoing) -> None:
    body = _stream(request, response)
    if body is not None:
        body.pop("id", None)


def _dressed_headers(request: Incoming, response: Outgoing) -> None:
    if response.is_json:
        response.headers["content-type"] = "application/json; charset=utf-8"
    response.headers["server"] = "envoy"
    response.headers["x-request-id"] = "req-7f3a"
    response.headers["cache-control"] = "no-store"


class _RekeyedModel(Model):
    """Job ids in another form than the emulator's (`uuid-u1` or -u2/-e1/-e2, `sync-uuid-u1`)."""

    def new_id(self, job: Job) -> str:
        raise NotImplementedError

    def submit(self, endpoint_id: str, body: Any, *, sync: bool = False) -> Job:
        job = super().submit(endpoint_id, body, sync=sync)
        jobs = self.endpoint(endpoint_id).jobs
        del jobs[job.id]
        job.id = self.new_id(job)
        jobs[job.id] = job
        return job


class _PlainUuidIdsModel(_RekeyedModel):
    """Plain uuids: no `-u1` suffix, no `sync-` prefix."""

    def new_id(self, job: Job) -> str:
        return str(uuid.uuid4())


class _OpaqueIdsModel(_RekeyedModel):
    """Short opaque ids in the [MCP] pattern `^[a-zA-Z0-9_-]+$`."""

    def new_id(self, job: Job) -> str:
        return "J_" + uuid.uuid4().hex[:14].upper()


class _RawKeyOnlyService(EmulatorService):
    """Accepts `Authorization: KEY` only (the docs' cURL samples); `Bearer KEY` is refused."""

    def authorized(self, authorization: str | None) -> bool:
        if authorization is None or authorization.lower().startswith("bearer "):
            return False
        return super().authorized(authorization)


class _BearerOnlyService(EmulatorService):
    """Accepts `Authorization: Bearer KEY` only (every SDK); the raw key is refused."""

    def authorized(self, authorization: str | None) -> bool:
        if authorization is None or not authorization.lower().startswith("bearer "):
            return False
        return super().authorized(authorization)


def _echo_key(request: Incoming, response: Outgoing) -> None:
    """Writes the presented Authorization header into every body (the canary must not leak)."""
    presented = request.headers.get("authorization", "")
    if isinstance(response.body, dict):
        response.body["authorization"] = presented
    if response.status >= 400 and isinstance(response.body, dict):
        response.body["error"] = f"{response.body.get('error', '')} (you sent {presented!r})"
    _drop_timings_when_completed(request, response)


VARIANTS: tuple[Variant, ...] = (
    # --- breaks the brief lists
    Variant(
        "completed-without-timings",
        "break",
        "COMPLETED jobs carry no delayTime or executionTime",
        caught_by=("status", "runsync"),
        after=_drop_timings_when_completed,
    ),
    Variant(
        "failed-without-error",
        "break",
        "FAILED jobs carry no error",
        caught_by=("status", "runsync"),
        after=_drop_error_when_failed,
    ),
    Variant(
        "delay-time-float",
        "break",
        "delayTime is a float (ms + 0.5)",
        caught_by=("status", "runsync"),
        after=_map_timings(lambda ms: ms + 0.5, "delayTime"),
    ),
    Variant(
        "delay-time-negative",
        "break",
        "delayTime is negative",
        caught_by=("status", "runsync"),
        after=_map_timings(lambda ms: -ms - 1, "delayTime"),
    ),
    Variant(
        "delay-time-string",
        "break",
        "delayTime is a string of digits",
        caught_by=("status", "runsync"),
        after=_map_timings(str, "delayTime"),
    ),
    Variant(
        "run-completed-without-id",
        "break",
        '/run answers {"status": "COMPLETED"} with no id',
        caught_by=("run",),
        after=_run_completed_without_id,
    ),
    Variant(
        "stream-repeats-chunks",
        "break",
        "/stream hands out every chunk again on every call (no drain)",
        caught_by=("stream",),
        service=_NoDrainService,
        job_timeout_s=8.0,  # its checks wait out the timeout for what never comes
    ),
    Variant(
        "stream-terminal-without-list",
        "break",
        "/stream of a finished job has no `stream` key",
        caught_by=("stream",),
        after=_stream_terminal_without_list,
    ),
    Variant(
        "retry-accepts-completed",
        "break",
        "/retry requeues a COMPLETED job",
        caught_by=("retry",),
        service=_RetryAnyTerminalService,
    ),
    Variant(
        "retry-answers-new-id",
        "break",
        "/retry answers with another job id",
        caught_by=("retry",),
        after=_retry_answers_new_id,
    ),
    Variant(
        "purge-removes-running",
        "break",
        "/purge-queue cancels running jobs too",
        caught_by=("purge-queue",),
        model=_PurgeRunningModel,
    ),
    Variant(
        "cancel-leaves-running",
        "break",
        "/cancel answers CANCELLED but a running job runs on to COMPLETED",
        caught_by=("cancel",),
        model=_CancelOnlyQueuedModel,
        after=_cancel_claims_cancelled,
    ),
    Variant(
        "health-frozen",
        "break",
        "/health counters never move (all zero)",
        caught_by=("health",),
        after=_health_frozen,
        job_timeout_s=8.0,  # its checks wait out the timeout for what never comes
    ),
    Variant(
        "auth-not-enforced",
        "break",
        "any key, or none, is accepted",
        caught_by=("key-401",),
        service=_AnyKeyService,
    ),
    Variant(
        "unknown-job-found",
        "break",
        "an unknown job id answers 200 IN_QUEUE instead of 404",
        caught_by=("unknown-job",),
        after=_unknown_job_found,
    ),
    Variant(
        "no-cancel-or-retry-route",
        "break",
        "no /cancel or /retry route: 404 for every job, so an unknown id's 404 proves nothing",
        caught_by=("unknown-job",),
        before=_no_cancel_or_retry_route,
    ),
    Variant(
        "bad-json-crashes",
        "break",
        "a malformed JSON body answers 500 text/plain instead of 400",
        caught_by=("bad-body",),
        before=_bad_json_crashes,
    ),
    Variant(
        "bad-json-accepted",
        "break",
        "a malformed JSON body is accepted as an empty input (200, a job)",
        caught_by=("bad-body",),
        before=_bad_json_accepted,
    ),
    Variant(
        "runsync-ignores-wait",
        "break",
        "/runsync holds until the job ends whatever ?wait says",
        caught_by=("runsync",),
        service=_RunsyncHoldsToTheEndService,
    ),
    Variant(
        "terminal-time-keeps-counting",
        "break",
        "each /status of a finished job reports a longer executionTime",
        caught_by=("status",),
        after=_terminal_time_keeps_counting,
    ),
    Variant(
        "terminal-status-flips-back",
        "break",
        "a finished job reads IN_PROGRESS again on later /status calls",
        caught_by=("status",),
        after=_terminal_status_flips_back,
        job_timeout_s=8.0,  # its checks wait out the timeout for what never comes
    ),
    Variant(
        "content-type-text",
        "break",
        "every response says content-type text/plain",
        caught_by=(),  # any operation will do: every one of them breaks it
        after=_text_plain,
    ),
    Variant(
        "status-answers-another-id",
        "break",
        "/status answers with an id other than the one /run gave",
        caught_by=("status",),
        after=_status_answers_another_id,
    ),
    # --- breaks nobody listed
    Variant(
        "run-answers-202",
        "break",
        "/run answers HTTP 202 instead of 200",
        caught_by=("run",),
        after=_run_answers_202,
    ),
    Variant(
        "auth-answers-403",
        "break",
        "a missing or wrong key answers 403 instead of 401",
        caught_by=("key-401",),
        after=_auth_answers_403,
    ),
    Variant(
        "status-lowercase",
        "break",
        "job states are lower-case (completed, in_queue, ...)",
        caught_by=("run", "status", "runsync"),
        after=_lowercase_status,
        job_timeout_s=6.0,  # no job ever looks finished: every wait runs to the timeout
    ),
    Variant(
        "stream-loses-first-chunk",
        "break",
        "/stream never hands out a job's first chunk",
        caught_by=("stream",),
        after=_stream_loses_first_chunk,
    ),
    Variant(
        "timings-in-seconds",
        "break",
        "delayTime and executionTime are whole seconds, not milliseconds",
        caught_by=("status", "runsync"),
        after=_map_timings(lambda ms: round(ms / 1000), "delayTime", "executionTime"),
    ),
    Variant(
        "health-without-workers",
        "break",
        "/health has no `workers` object",
        caught_by=("health",),
        after=_health_without_workers,
    ),
    Variant(
        "output-not-the-handlers",
        "break",
        "COMPLETED jobs report an output other than the probe handler's",
        caught_by=("status", "runsync"),
        after=_output_not_the_handlers,
    ),
    Variant(
        "retry-refused",
        "break",
        "/retry of a FAILED job answers 400",
        caught_by=("retry",),
        before=_retry_refused,
    ),
    Variant(
        "runsync-answers-at-once",
        "break",
        "/runsync answers IN_QUEUE at once, even for a fast job well within ?wait",
        caught_by=("runsync",),
        service=_RunsyncAnswersAtOnceService,
    ),
    Variant(
        "retry-forgets-input",
        "break",
        "/retry runs the job again with an empty input",
        caught_by=("retry",),
        model=_RetryForgetsInputModel,
    ),
    Variant(
        "result-forgotten",
        "break",
        "a finished job is deleted once read: the next /status answers 404",
        caught_by=("status",),
        after=_result_forgotten,
    ),
    # --- faithful: production may differ from the emulator this way
    Variant(
        "extra-fields",
        "faithful",
        "unknown fields in every body, chunk and counter object",
        drift=True,
        after=_add_unknown_fields,
    ),
    Variant(
        "known-optional-fields",
        "faithful",
        "`retries` on job objects; timings on /cancel's answer",
        after=_add_known_optional_fields,
    ),
    Variant(
        "ids-plain-uuid",
        "faithful",
        "job ids are plain uuids (no -u1, no sync- prefix)",
        model=_PlainUuidIdsModel,
    ),
    Variant(
        "ids-opaque",
        "faithful",
        "job ids are short opaque tokens (J_0A1B...)",
        model=_OpaqueIdsModel,
    ),
    Variant(
        "auth-raw-key-only",
        "faithful",
        "only the raw key is accepted (Bearer is refused)",
        service=_RawKeyOnlyService,
    ),
    Variant(
        "auth-bearer-only",
        "faithful",
        "only `Bearer KEY` is accepted (the raw key is refused)",
        service=_BearerOnlyService,
    ),
    Variant(
        "health-more-worker-keys",
        "faithful",
        "/health workers has more keys (starting, draining)",
        after=_health_workers(None, {"starting": 0, "draining": 0}),
    ),
    Variant(
        "health-doc-worker-keys",
        "faithful",
        "/health workers has only idle and running (the docs' example)",
        after=_health_workers(("idle", "running"), {}),
    ),
    Variant(
        "error-bodies-other-shapes",
        "faithful",
        'error bodies are {"detail": ...} or {"message": ..., "code": ...}',
        after=_error_bodies_in_other_shapes,
    ),
    Variant(
        "stream-without-id",
        "faithful",
        "/stream answers carry no id (undocumented either way)",
        after=_stream_without_id,
    ),
    Variant(
        "http-dressing",
        "faithful",
        "gzip-encoded bodies, charset in content-type, proxy headers",
        after=_dressed_headers,
        wrap=GzipEverything,
    ),
    Variant(
        "more-workers",
        "faithful",
        "2 warm workers, up to 8",
        config=EmulatorConfig(
            workers_min=2, workers_max=8, cold_start_ms=300, idle_timeout_s=2.0, seed=7
        ),
    ),
    Variant(
        "slow-cold-start",
        "faithful",
        "2.5 s cold starts, one worker",
        config=EmulatorConfig(
            workers_max=1, cold_start_ms=2500, idle_timeout_s=2.0, queue_delay_s=30.0, seed=7
        ),
    ),
)

ECHO_KEY_VARIANT = Variant(
    "echoes-key",
    "break",
    "every body repeats the Authorization header; COMPLETED jobs lack timings",
    caught_by=("status", "runsync"),
    after=_echo_key,
)


def variant(name: str) -> Variant:
    for candidate in (*VARIANTS, ECHO_KEY_VARIANT):
        if candidate.name == name:
            return candidate
    raise KeyError(f"no variant {name!r}")


# --- serving -----------------------------------------------------------------------------------


class _Router:
    """`/v2/{variant}/...` to that variant's endpoint; anything else 404."""

    def __init__(self, endpoints: Mapping[str, ASGIApp]) -> None:
        self.endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        segments = scope["path"].strip("/").split("/")
        app = self.endpoints.get(segments[1]) if len(segments) > 1 else None
        if app is None:
            await Outgoing.json(404, {"error": f"no variant at {scope['path']}"}).send(send)
            return
        await app(scope, receive, send)


class _Server(uvicorn.Server):
    """Answers every held request before it stops, as the emulator's own server does."""

    def __init__(self, app: ASGIApp, emulators: Iterable[EmulatorApp]) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self.emulators = list(emulators)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for emulator in self.emulators:
            emulator.stop_holding()
        await super().shutdown(sockets)


@contextmanager
def serving_apps(
    endpoints: Mapping[str, ASGIApp], emulators: Iterable[EmulatorApp] = ()
) -> Iterator[str]:
    """Serve `/v2/{name}/...` by `endpoints[name]` on a free loopback port; yields the base URL
    `http://127.0.0.1:PORT/v2`."""
    server = _Server(_Router(endpoints), emulators)
    thread = threading.Thread(target=server.run, name="contract-targets", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the variant server did not start within 10 s")
        time.sleep(0.01)  # bounded by the deadline above
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serving(variants: Iterable[Variant] | Mapping[str, Variant], *, api_key: str) -> Iterator[str]:
    """Serve each variant at `{base}/{name}`: its own name, or the name it is mapped to (one
    variant may be served under several names, each its own endpoint); yields the base URL."""
    named = variants if isinstance(variants, Mapping) else {each.name: each for each in variants}
    endpoints: dict[str, ASGIApp] = {}
    emulators: list[EmulatorApp] = []
    for name, each in named.items():
        app, emulator = each.build(api_key)
        endpoints[name] = app
        emulators.append(emulator)
    with serving_apps(endpoints, emulators) as base_url:
        yield base_url


class ForwardingProxy:
    """`/v2/{name}/{rest}` to `{upstream}/{rest}`: puts a server without an endpoint id in its
    paths (the runpod-python dev server) behind an endpoint URL the suite accepts."""

    def __init__(self, upstream: str, *, timeout_s: float = 30.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        rest = "/".join(scope["path"].strip("/").split("/")[2:])
        url = f"{self.upstream}/{rest}"
        query = scope.get("query_string", b"").decode()
        headers = [
            (name.decode(), value.decode())
            for name, value in scope["headers"]
            if name.lower() not in (b"host", b"content-length", b"connection")
        ]
        async with httpx.AsyncClient(timeout=self.timeout_s, trust_env=False) as client:
            try:
                answer = await client.request(
                    scope["method"],
                    url + (f"?{query}" if query else ""),
                    headers=headers,
                    content=body,
                )
            except httpx.HTTPError as exc:
                await Outgoing.json(502, {"error": f"upstream: {type(exc).__name__}"}).send(send)
                return
        kept = {
            name.lower(): value
            for name, value in answer.headers.items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        await Outgoing(answer.status_code, kept, raw=answer.content).send(send)
