"""The differences variants are made of: response rewrites and request intercepts for `Tamper`,
and subclasses of the emulator's `Model` (what happens to jobs) and `EmulatorService` (how an
operation is answered). Parametrised ones (`map_timings`, `health_workers`) build a rewrite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from runpod_testkit.emulator.model import Job, Model
from runpod_testkit.emulator.service import Call, EmulatorService, Hold, Reply
from runpod_testkit.operations import JobStatus
from tests.targets.tamper import NOT_JSON, Incoming, Outgoing, Rewrite

JOB_OPERATIONS = frozenset({"run", "runsync", "status", "status-sync", "cancel", "retry"})
"""Operations whose 200 body is a job object."""


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


def drop_timings_when_completed(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and job["status"] == JobStatus.COMPLETED:
        job.pop("delayTime", None)
        job.pop("executionTime", None)


def drop_error_when_failed(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and job["status"] == JobStatus.FAILED:
        job.pop("error", None)


def map_timings(change: Callable[[int], Any], *names: str) -> Rewrite:
    def rewrite(request: Incoming, response: Outgoing) -> None:
        job = _job(request, response)
        for name in names:
            if job is not None and isinstance(job.get(name), int):
                job[name] = change(job[name])

    return rewrite


def run_completed_without_id(request: Incoming, response: Outgoing) -> None:
    if request.operation == "run" and response.status == 200:
        response.body = {"status": JobStatus.COMPLETED}


def status_answers_another_id(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and request.operation == "status":
        job["id"] = f"job-{job['id']}"


def terminal_time_keeps_counting(request: Incoming, response: Outgoing) -> None:
    """Every read of a finished job reports a longer executionTime than the one before."""
    job = _job(request, response)
    if job is None or request.operation != "status" or job["status"] not in JobStatus.TERMINAL:
        return
    reads = request.memo.setdefault("reads", {})
    reads[job["id"]] = reads.get(job["id"], 0) + 1
    job["executionTime"] = job.get("executionTime", 0) + 7 * reads[job["id"]]


def terminal_status_flips_back(request: Incoming, response: Outgoing) -> None:
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


def result_forgotten(request: Incoming, response: Outgoing) -> None:
    """A finished job is deleted once read: the next /status answers 404 (no retention)."""
    job = _job(request, response)
    if job is None or request.operation != "status" or job["status"] not in JobStatus.TERMINAL:
        return
    seen: set[str] = request.memo.setdefault("seen", set())
    if job["id"] in seen:
        response.status = 404
        response.body = {"error": "job not found"}
    seen.add(job["id"])


def lowercase_status(request: Incoming, response: Outgoing) -> None:
    body = _job(request, response) or _stream(request, response)
    if body is not None and isinstance(body.get("status"), str):
        body["status"] = body["status"].lower()


def output_not_the_handlers(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and job["status"] == JobStatus.COMPLETED:
        job["output"] = {"result": "not what the handler returned"}


# -- breaks: operations


def stream_terminal_without_list(request: Incoming, response: Outgoing) -> None:
    body = _stream(request, response)
    if body is not None and body.get("status") in JobStatus.TERMINAL:
        body.pop("stream", None)


def stream_loses_first_chunk(request: Incoming, response: Outgoing) -> None:
    """The first chunk of every job never reaches a client (a lost write on the way)."""
    body = _stream(request, response)
    if body is None or not body.get("stream") or request.job_id is None:
        return
    started: set[str] = request.memo.setdefault("started", set())
    if request.job_id not in started:
        started.add(request.job_id)
        body["stream"] = body["stream"][1:]


def retry_answers_new_id(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and request.operation == "retry":
        job["id"] = str(uuid.uuid4())


def retry_refused(request: Incoming) -> Outgoing | None:
    if request.operation == "retry":
        return Outgoing.json(400, {"error": "this job cannot be retried"})
    return None


def no_cancel_or_retry_route(request: Incoming) -> Outgoing | None:
    """A server that never had these routes: 404 for every job, known or not."""
    if request.operation in ("cancel", "retry"):
        return Outgoing.json(404, {"detail": "Not Found"})
    return None


def cancel_claims_cancelled(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is not None and request.operation == "cancel":
        job["status"] = JobStatus.CANCELLED


def _health(request: Incoming, response: Outgoing) -> bool:
    """Whether this is a 200 answer of /health."""
    body = response.body
    return request.operation == "health" and response.status == 200 and isinstance(body, dict)


def health_frozen(request: Incoming, response: Outgoing) -> None:
    if _health(request, response):
        jobs = dict.fromkeys(("completed", "failed", "inProgress", "inQueue", "retried"), 0)
        response.body = {"jobs": jobs, "workers": {"idle": 0, "running": 0}}


def health_without_workers(request: Incoming, response: Outgoing) -> None:
    if _health(request, response):
        response.body.pop("workers", None)


def unknown_job_found(request: Incoming, response: Outgoing) -> None:
    if request.job_id and response.status == 404:
        response.status = 200
        response.body = {"id": request.job_id, "status": JobStatus.IN_QUEUE}


def bad_json_crashes(request: Incoming) -> Outgoing | None:
    if request.operation in ("run", "runsync") and request.json_body() is NOT_JSON:
        return Outgoing(500, {"content-type": "text/plain"}, raw=b"Internal Server Error")
    return None


def bad_json_accepted(request: Incoming) -> Outgoing | None:
    if request.operation in ("run", "runsync") and request.json_body() is NOT_JSON:
        request.body = b'{"input": {}}'
    return None


def run_answers_202(request: Incoming, response: Outgoing) -> None:
    if request.operation == "run" and response.status == 200:
        response.status = 202


def auth_answers_403(request: Incoming, response: Outgoing) -> None:
    if response.status == 401:
        response.status = 403
        response.body = {"error": "forbidden"}


def text_plain(request: Incoming, response: Outgoing) -> None:
    response.headers["content-type"] = "text/plain; charset=utf-8"


class AnyKeyService(EmulatorService):
    """Auth not enforced: any key, or none, is accepted."""

    def authorized(self, authorization: str | None) -> bool:
        return True


class NoDrainService(EmulatorService):
    """/stream hands out every chunk produced so far on every call, instead of the new ones."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        result = super().execute(call, body)
        if call.operation.name == "stream" and isinstance(result, Hold):
            result.job.chunks_sent = 0
        return result


class RunsyncHoldsToTheEndService(EmulatorService):
    """/runsync ignores ?wait and holds the request until the job ends (up to 5 minutes)."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        result = super().execute(call, body)
        if call.operation.name == "runsync" and isinstance(result, Hold):
            return Hold(self.model, result.job, self.model.now() + 300, for_chunks=False)
        return result


class RunsyncAnswersAtOnceService(EmulatorService):
    """/runsync answers at once, as /run does, however long ?wait allows."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        result = super().execute(call, body)
        if call.operation.name == "runsync" and isinstance(result, Hold):
            return Hold(self.model, result.job, self.model.now(), for_chunks=False)
        return result


class RetryAnyTerminalService(EmulatorService):
    """/retry requeues a COMPLETED (or CANCELLED) job too."""

    def execute(self, call: Call, body: bytes) -> Reply | Hold:
        if call.operation.name == "retry" and call.job_id is not None:
            job = self.model.get(call.endpoint_id, call.job_id)
            if job is not None and job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
                job.status = JobStatus.FAILED  # what the model's retry accepts
        return super().execute(call, body)


class PurgeRunningModel(Model):
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


class RetryForgetsInputModel(Model):
    """/retry requeues the job with an empty input instead of the original one."""

    def retry(self, job: Job) -> None:
        job.input = {}
        super().retry(job)


class CancelOnlyQueuedModel(Model):
    """/cancel removes a queued job but lets a running one run on."""

    def cancel(self, job: Job) -> None:
        self.advance()
        if job.status == JobStatus.IN_QUEUE:
            super().cancel(job)


# -- faithful differences


def add_unknown_fields(request: Incoming, response: Outgoing) -> None:
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


def add_known_optional_fields(request: Incoming, response: Outgoing) -> None:
    job = _job(request, response)
    if job is None:
        return
    job.setdefault("retries", 0)
    if request.operation == "cancel":
        job.setdefault("delayTime", 0)  # [JS]/[GO] declare the timings on cancel's answer
        job.setdefault("executionTime", 0)


def health_workers(keep: tuple[str, ...] | None, add: Mapping[str, int]) -> Rewrite:
    def rewrite(request: Incoming, response: Outgoing) -> None:
        if not _health(request, response):
            return
        assert isinstance(response.body, dict)
        workers = response.body["workers"]
        if keep is not None:
            workers = {name: count for name, count in workers.items() if name in keep}
        response.body["workers"] = {**workers, **add}

    return rewrite


def error_bodies_in_other_shapes(request: Incoming, response: Outgoing) -> None:
    if response.status < 400 or not isinstance(response.body, dict):
        return
    message = str(response.body.get("error", "error"))
    if response.status in (400, 404):
        response.body = {"detail": message}
    else:
        response.body = {"message": message, "code": response.status}


def stream_without_id(request: Incoming, response: Outgoing) -> None:
    body = _stream(request, response)
    if body is not None:
        body.pop("id", None)


def dressed_headers(request: Incoming, response: Outgoing) -> None:
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


class PlainUuidIdsModel(_RekeyedModel):
    """Plain uuids: no `-u1` suffix, no `sync-` prefix."""

    def new_id(self, job: Job) -> str:
        return str(uuid.uuid4())


class OpaqueIdsModel(_RekeyedModel):
    """Short opaque ids in the [MCP] pattern `^[a-zA-Z0-9_-]+$`."""

    def new_id(self, job: Job) -> str:
        return "J_" + uuid.uuid4().hex[:14].upper()


class RawKeyOnlyService(EmulatorService):
    """Accepts `Authorization: KEY` only (the docs' cURL samples); `Bearer KEY` is refused."""

    def authorized(self, authorization: str | None) -> bool:
        if authorization is None or authorization.lower().startswith("bearer "):
            return False
        return super().authorized(authorization)


class BearerOnlyService(EmulatorService):
    """Accepts `Authorization: Bearer KEY` only (every SDK); the raw key is refused."""

    def authorized(self, authorization: str | None) -> bool:
        if authorization is None or not authorization.lower().startswith("bearer "):
            return False
        return super().authorized(authorization)


def echo_key(request: Incoming, response: Outgoing) -> None:
    """Writes the presented Authorization header into every body (the canary must not leak)."""
    presented = request.headers.get("authorization", "")
    if isinstance(response.body, dict):
        response.body["authorization"] = presented
    if response.status >= 400 and isinstance(response.body, dict):
        response.body["error"] = f"{response.body.get('error', '')} (you sent {presented!r})"
    drop_timings_when_completed(request, response)
