"""The load scenarios as Locust users: one job at a time, followed from submission to its end.

- RunPollUser: POST /run, then poll /status until the job is terminal.
- RunSyncUser: POST /runsync?wait=...; a job still running when the wait ends is polled on /status.
- StreamUser: POST /run, then /stream until drained (terminal and empty), recording the time to
  the first chunk (ttfc), the chunk count and the gaps between chunks; /status then gives the
  job's server timings.
- CancelUser: POST /run, /cancel after a random delay, then /status until terminal; a job that
  /cancel reported CANCELLED must end CANCELLED.

Each job's delayTime and executionTime (from its terminal body), e2e and ttfc go to the
process's JobStats, not to Locust's request table. Requests are named by operation. With
--arrival-rate the users carry the arrivals of the open model instead of looping on their own.
Subclass a user to change its default input (`default_input`) or timing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import gevent
import orjson
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.exception import StopTest

from runpod_testkit.loadtest.arrivals import Ticket
from runpod_testkit.loadtest.caller import Check, EndpointCaller
from runpod_testkit.loadtest.run import LoadRun, auth_headers, current_run
from runpod_testkit.loadtest.tracker import TrackedJob
from runpod_testkit.loadtest.verdict import Verdict
from runpod_testkit.operations import OPERATIONS, JobStatus, Operation
from runpod_testkit.stats.names import CLIENT_ERROR, CLIENT_TIMEOUT

__all__ = ["CancelUser", "JobUser", "RunPollUser", "RunSyncUser", "StreamUser"]

RUN = OPERATIONS["run"]
RUNSYNC = OPERATIONS["runsync"]
STATUS = OPERATIONS["status"]
STREAM = OPERATIONS["stream"]
CANCEL = OPERATIONS["cancel"]
TERMINAL = JobStatus.TERMINAL
MAX_CONSECUTIVE_ERRORS = 5
MAX_CALLS_AFTER_END = 3


class JobUser(FastHttpUser):
    """The base of the scenarios: submits, follows and counts one job at a time."""

    abstract = True
    wait_time = constant(0)
    insecure = False  # the API key travels with every request: verify TLS
    default_input: ClassVar[Mapping[str, Any]] = {"sleep_ms": 500}
    """The job input when --probe-input is not given (the probe protocol)."""

    def __init__(self, environment: Environment) -> None:
        run = current_run()
        if run is None:
            raise StopTest("the load suite is not installed: run loadtests/locustfile.py")
        self.load: LoadRun = run
        # Per instance, before FastHttpUser builds its session from them.
        self.default_headers = auth_headers()
        self.network_timeout = self.request_timeout_s()
        super().__init__(environment)
        self.caller = EndpointCaller(self.client, run.validator, run.drift, run.safeguards)
        inputs = run.settings.probe_inputs or (dict(self.default_input),)
        self._bodies = [orjson.dumps({"input": job_input}) for job_input in inputs]
        self.job: TrackedJob | None = None
        self.submitter = run.tracker.submitter()

    def request_timeout_s(self) -> float:
        return float(FastHttpUser.network_timeout)

    @task
    def one_job(self) -> None:
        if self.load.safeguards.stopped:  # the run is stopping: send nothing more
            gevent.sleep(self.load.settings.poll_interval_s)
            return
        arrivals = self.load.arrivals
        if arrivals is None:
            self.perform(None)
            return
        ticket = arrivals.take()
        if ticket is None:  # the open model stopped: stay idle until Locust stops the user
            gevent.sleep(self.load.settings.poll_interval_s)
            return
        try:
            self.perform(ticket)
        finally:
            arrivals.release()

    def on_stop(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            self.load.tracker.abandon(job)
        self.submitter.close()

    def perform(self, ticket: Ticket | None) -> None:
        """One job, from submission to its end."""
        raise NotImplementedError

    # ---- steps the scenarios share

    def submit(self, op: Operation, ticket: Ticket | None, query: str = "") -> TrackedJob | None:
        """Send /run or /runsync; the tracked job, or None if it was not accepted."""
        now = time.time()
        if ticket is not None and self.load.arrivals is not None:
            self.load.arrivals.sent(ticket, now)
        started_at = now if ticket is None else ticket.intended_at
        job = TrackedJob(
            self.caller, started_at, now, deadline=started_at + self.load.settings.job_timeout_s
        )
        self.job = job
        self.submitter.submit(job, op, random.choice(self._bodies), query)
        if job.id is None:
            self.job = None
            return None
        return job

    def end(
        self,
        job: TrackedJob,
        body: Mapping[str, Any],
        seen_at: float | None,
        ttfc_ms: float | None = None,
    ) -> None:
        self.load.tracker.finish(job, body, seen_at, ttfc_ms=ttfc_ms)
        self.job = None

    def give_up(self, job: TrackedJob, outcome: str) -> None:
        self.load.tracker.give_up(job, outcome)
        self.job = None

    def follow_status(
        self, job: TrackedJob, *, first_delay_s: float | None = None, check: Check | None = None
    ) -> Mapping[str, Any] | None:
        """Poll /status until the job is terminal and count it; None when given up."""
        settings = self.load.settings
        interval = settings.poll_interval_s
        deadline = job.started_at + settings.job_timeout_s
        # The interval runs from one request's send to the next's: a poll goes out at once
        # when the previous request took longer than the interval.
        sent_at = job.sent_at
        if first_delay_s is not None:
            sent_at = time.time() + first_delay_s - interval
        errors = 0
        while True:
            wait = sent_at + interval - time.time()
            if wait > 0:
                gevent.sleep(wait)
            sent_at = time.time()
            verdict = self.caller.call(STATUS, job.id, check=check, deadline=deadline)
            seen_at = time.time()
            if verdict.usable:
                errors = 0
                if verdict.field("status") in TERMINAL:
                    self.end(job, verdict.body, seen_at)
                    body: Mapping[str, Any] = verdict.body
                    return body
            elif _lost(verdict, errors := errors + 1):
                self.give_up(job, CLIENT_ERROR)  # the job is gone, or the endpoint is
                return None
            if seen_at >= deadline:
                self.give_up(job, CLIENT_TIMEOUT)
                return None


class RunPollUser(JobUser):
    """POST /run, then poll /status until the job is terminal."""

    weight = 4

    def perform(self, ticket: Ticket | None) -> None:
        job = self.submit(RUN, ticket)
        if job is not None:
            self.follow_status(job)


class RunSyncUser(JobUser):
    """POST /runsync?wait=...; a job still running when it answers is polled on /status."""

    weight = 2

    def request_timeout_s(self) -> float:
        # The endpoint holds the request up to the wait; leave room for the answer after it.
        return max(super().request_timeout_s(), self.load.settings.runsync_wait_ms / 1000 + 30)

    def perform(self, ticket: Ticket | None) -> None:
        job = self.submit(RUNSYNC, ticket, f"?wait={self.load.settings.runsync_wait_ms}")
        if job is None:
            return
        reply = job.reply
        if reply is not None and reply.field("status") in TERMINAL:
            self.end(job, reply.body, job.replied_at)
        else:
            self.follow_status(job)


class StreamUser(JobUser):
    """POST /run, then /stream until drained; ttfc, chunk count and gaps between chunks."""

    weight = 2
    default_input: ClassVar[Mapping[str, Any]] = {
        "sleep_ms": 200,
        "chunks": 5,
        "chunk_interval_ms": 100,
    }

    def perform(self, ticket: Ticket | None) -> None:
        job = self.submit(RUN, ticket)
        if job is None:
            return
        poll_s = self.load.settings.poll_interval_s
        deadline = job.started_at + self.load.settings.job_timeout_s
        chunks, gaps = 0, []
        ttfc_ms: float | None = None
        last_chunk_at: float | None = None
        ended_at: float | None = None
        final_status: object = None
        errors = calls_after_end = 0
        while True:
            sent_at = time.time()
            verdict = self.caller.call(STREAM, job.id, deadline=deadline)
            now = time.time()
            if not verdict.usable:
                if _lost(verdict, errors := errors + 1):
                    self.give_up(job, CLIENT_ERROR)
                    return
                gevent.sleep(poll_s)
                continue
            errors = 0
            new = verdict.field("stream")
            count = len(new) if isinstance(new, list) else 0
            if count:
                if ttfc_ms is None:
                    ttfc_ms = (now - job.started_at) * 1000
                if last_chunk_at is not None:
                    gaps.append((now - last_chunk_at) * 1000)
                gaps += [0.0] * (count - 1)  # arrived together
                last_chunk_at = now
                chunks += count
            status = verdict.field("status")
            if status in TERMINAL:
                if ended_at is None:
                    ended_at, final_status = now, status
                calls_after_end += 1
                if count == 0 or calls_after_end >= MAX_CALLS_AFTER_END:
                    break  # drained
                continue
            if now >= deadline:
                self.give_up(job, CLIENT_TIMEOUT)
                return
            if count == 0 and now - sent_at < poll_s:
                gevent.sleep(poll_s - (now - sent_at))  # this endpoint does not hold /stream
        self.load.stats.record_stream(chunks, gaps)
        self.end(job, self._timings(job, final_status), ended_at, ttfc_ms)

    def _timings(self, job: TrackedJob, status: object) -> Mapping[str, Any]:
        """The terminal job object from /status (a /stream body has no delayTime)."""
        verdict = self.caller.call(STATUS, job.id)
        if verdict.usable and verdict.field("status") in TERMINAL:
            body: Mapping[str, Any] = verdict.body
            return body
        return {"status": status}


def _lost(verdict: Verdict, consecutive_errors: int) -> bool:
    """Whether to stop following a job after an unusable answer (its retries, if any, spent):
    it is gone (404), or the endpoint kept failing. Rate limiting (429) only slows the polling
    down."""
    if verdict.status_code == 429:
        return False
    return verdict.status_code == 404 or consecutive_errors >= MAX_CONSECUTIVE_ERRORS


def _cancel_answer(body: Any) -> str | None:
    if body.get("status") not in TERMINAL:
        return "cancel: answered a non-terminal status (expected CANCELLED or a terminal state)"
    return None


def _ended_cancelled(body: Any) -> str | None:
    status = body.get("status")
    if status in TERMINAL and status != JobStatus.CANCELLED:
        return f"status: job ended {status} after /cancel answered CANCELLED"
    return None


class CancelUser(JobUser):
    """POST /run, /cancel after a random delay, then /status until the job is terminal."""

    weight = 1
    cancel_after_s: ClassVar[tuple[float, float]] = (0.0, 1.0)
    """The delay before /cancel is drawn uniformly from this range (seconds)."""

    def perform(self, ticket: Ticket | None) -> None:
        job = self.submit(RUN, ticket)
        if job is None:
            return
        gevent.sleep(random.uniform(*self.cancel_after_s))
        answer: Verdict = self.caller.call(
            CANCEL, job.id, check=_cancel_answer, deadline=job.deadline
        )
        check = _ended_cancelled if answer.field("status") == JobStatus.CANCELLED else None
        self.follow_status(job, first_delay_s=0.0, check=check)
