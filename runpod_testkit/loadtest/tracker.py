"""The jobs a Locust process has in flight, so that stopping a run leaves nothing running.

A user's submissions (/run, /runsync) go out from a greenlet of its own, its `Submitter`: when
Locust kills the user in the middle of one (a stop, a ramp-down: GreenletExit where the user
waits), the request still completes there and the job id it returns is cancelled rather than
lost. A user's `on_stop` abandons its current job (cancelled at once, or as soon as its id is
known) and closes its submitter; `stop()` (at test_stop) waits, bounded, for pending
submissions and cancellations, and cancels whatever is left.

A job cancelled this way counts as "interrupted" (JobStats keeps it out of the failure rate); a
job that turns out to have ended before the cancel counts under its own status.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.hub import Waiter, get_hub
from gevent.lock import BoundedSemaphore
from gevent.pool import Group

from runpod_testkit.loadtest.failsafe import Retry, retry_decision
from runpod_testkit.loadtest.verdict import Verdict
from runpod_testkit.operations import OPERATIONS, JobStatus, Operation
from runpod_testkit.stats.names import CLIENT_ERROR, INTERRUPTED, UNKNOWN_OUTCOME
from runpod_testkit.stats.recorder import JobStats

if TYPE_CHECKING:  # importing the caller imports Locust, which monkey-patches at import
    from runpod_testkit.loadtest.caller import EndpointCaller

__all__ = [
    "CANCEL_AFTER_END",
    "JobTracker",
    "Submitter",
    "TrackedJob",
    "cancel_request_name",
    "metric_ms",
]

logger = logging.getLogger(__name__)

CANCEL = OPERATIONS["cancel"]
STATUS = OPERATIONS["status"]
# Production allows 20 concurrent /cancel calls per endpoint; stay well below it per process.
CANCEL_CONCURRENCY = 10


def metric_ms(value: object) -> float | None:
    """A server-reported duration (ms) if it is a usable number, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


@dataclass(eq=False, slots=True)
class TrackedJob:
    caller: EndpointCaller
    started_at: float
    """Epoch seconds that e2e and ttfc count from: the intended send time in the open model,
    else the moment the submission was sent."""
    sent_at: float
    """Epoch seconds when the submission was sent."""
    deadline: float | None = None
    """Epoch seconds when the client gives up on the job (None: the caller's retry budget)."""
    id: str | None = None
    reply: Verdict | None = None
    """The /run or /runsync answer."""
    replied_at: float | None = None
    abandoned: bool = False
    closed: bool = False
    """Counted (ended, given up or interrupted): nothing more is recorded for it."""


class JobTracker:
    def __init__(self, stats: JobStats) -> None:
        self.stats = stats
        self.in_flight: dict[str, TrackedJob] = {}
        self._submitting = 0
        self._settled = Event()
        self._settled.set()
        self._submitters: set[Submitter] = set()
        self._cancels = Group()
        self._cancel_slots = BoundedSemaphore(CANCEL_CONCURRENCY)
        self._stopping = False
        self._not_cancelled: list[str] = []

    def start(self) -> None:
        self._stopping = False

    # ---- submitting

    def submitter(self) -> Submitter:
        """A user's own submitter (close it when the user stops)."""
        submitter = Submitter(self)
        self._submitters.add(submitter)
        return submitter

    def _submit(self, job: TrackedJob, op: Operation, body: bytes, query: str) -> Verdict:
        self._submitting += 1
        self._settled.clear()
        try:
            return self._send(job, op, body, query)
        finally:
            self._submitting -= 1
            if not self._submitting:
                self._settled.set()

    def _send(self, job: TrackedJob, op: Operation, body: bytes, query: str) -> Verdict:
        verdict = job.caller.call(op, body=body, query=query, deadline=job.deadline)
        job.reply, job.replied_at = verdict, time.time()
        job_id = verdict.field("id") if verdict.usable else None
        if not isinstance(job_id, str) or not job_id:
            job.closed = True
            # A 5xx or a lost connection may hide a job that exists: it is not resent (the
            # caller never resends a submission then), and it is counted apart.
            unknown = retry_decision(op, verdict.status_code, verdict.error)
            self.stats.record_outcome(
                UNKNOWN_OUTCOME if unknown is Retry.UNKNOWN_OUTCOME else CLIENT_ERROR
            )
            return verdict
        job.id = job_id
        self.stats.record_submitted()
        self.in_flight[job_id] = job
        if job.abandoned or self._stopping:
            if verdict.field("status") in JobStatus.TERMINAL:
                self.finish(job, verdict.body, None)  # a /runsync that ended in time
            else:
                self.interrupt(job)
        return verdict

    # ---- ending

    def finish(
        self,
        job: TrackedJob,
        body: Mapping[str, Any],
        seen_at: float | None,
        *,
        ttfc_ms: float | None = None,
    ) -> None:
        """Count a job that ended: `body` is its terminal job object, `seen_at` when the client
        saw it end (None: e2e unknown)."""
        if job.closed:
            return
        self._close(job)
        self._record_end(job, body, seen_at, ttfc_ms)

    def _record_end(
        self,
        job: TrackedJob,
        body: Mapping[str, Any],
        seen_at: float | None,
        ttfc_ms: float | None = None,
    ) -> None:
        self.stats.record_terminal(
            str(body.get("status")),
            delay_time_ms=metric_ms(body.get("delayTime")),
            execution_time_ms=metric_ms(body.get("executionTime")),
            e2e_ms=None if seen_at is None else (seen_at - job.started_at) * 1000,
            ttfc_ms=ttfc_ms,
        )

    def give_up(self, job: TrackedJob, outcome: str) -> None:
        """The client stops following a job (timeout, lost track): count `outcome`, cancel it."""
        if job.closed:
            return
        self._close(job)
        self.stats.record_outcome(outcome)
        if job.id is not None:
            self._cancels.spawn(self._cancel, job)

    def abandon(self, job: TrackedJob) -> None:
        """Its user is stopping: cancel the job now, or once its submission answers."""
        job.abandoned = True
        if job.id is not None:
            self.interrupt(job)

    def interrupt(self, job: TrackedJob) -> None:
        if job.closed:
            return
        self._close(job)
        self._cancels.spawn(self._interrupt, job)

    def _close(self, job: TrackedJob) -> None:
        job.closed = True
        if job.id is not None:
            self.in_flight.pop(job.id, None)

    def _cancel(self, job: TrackedJob) -> Verdict:
        with self._cancel_slots:
            # Retried within the caller's budget; named apart when the job had already ended.
            verdict = job.caller.call(CANCEL, job.id, rename=cancel_request_name)
        if not verdict.usable and job.id is not None:
            self._not_cancelled.append(job.id)
        return verdict

    def _interrupt(self, job: TrackedJob) -> None:
        status = self._cancel(job).field("status")
        if status in JobStatus.TERMINAL and status != JobStatus.CANCELLED:
            # It ended before the cancel arrived: count it as it ended (e2e unknown).
            with self._cancel_slots:
                final = job.caller.call(STATUS, job.id)
            ended = final.body if final.field("status") in JobStatus.TERMINAL else {}
            self._record_end(job, ended or {"status": status}, None)
        else:
            self.stats.record_outcome(INTERRUPTED)

    # ---- stopping

    def stop(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) for submissions in flight, then cancel every job left and
        wait for the cancellations."""
        self._stopping = True
        deadline = time.monotonic() + timeout_s
        if not self._settled.wait(timeout=timeout_s):
            logger.warning(
                "%d submission(s) still unanswered at stop; their jobs (ids unknown) may run on",
                self._submitting,
            )
        for submitter in list(self._submitters):
            submitter.close()  # users that did not close theirs (on_stop overridden)
        for job in list(self.in_flight.values()):
            self.interrupt(job)
        if not self._cancels.join(timeout=max(0.1, deadline - time.monotonic())):
            logger.warning("%d cancellation(s) still unanswered at stop", len(self._cancels))
        if self._not_cancelled:
            shown = ", ".join(self._not_cancelled[:5])
            more = len(self._not_cancelled) - 5
            logger.warning(
                "could not cancel %d job(s) (%s%s); they may still run on the endpoint",
                len(self._not_cancelled),
                shown,
                f" and {more} more" if more > 0 else "",
            )
            self._not_cancelled.clear()


_Task = tuple[TrackedJob, Operation, bytes, str, Waiter]


class Submitter:
    """Sends one user's submissions from a long-lived greenlet, handed each one in turn.

    Locust stops a user by killing its greenlet; a kill only reaches the user where it waits for
    the answer, so the submission itself completes here and its job is tracked (and cancelled
    if the user is gone). A greenlet spawned per submission did the same at 12-20 us a job; the
    hand-over through gevent Waiters costs about 2 us."""

    __slots__ = ("__weakref__", "_closed", "_greenlet", "_inbox", "_tracker")

    def __init__(self, tracker: JobTracker) -> None:
        self._tracker = tracker
        self._greenlet: gevent.Greenlet | None = None
        self._inbox: Waiter | None = None
        """Set while the greenlet waits for its next submission."""
        self._closed = False

    def submit(self, job: TrackedJob, op: Operation, body: bytes, query: str = "") -> Verdict:
        """Send a submission from the submitter's greenlet and wait for its answer (one at a
        time: the caller is the user's greenlet)."""
        if self._closed:
            raise RuntimeError("this submitter is closed (its user stopped)")
        reply: Waiter = Waiter()
        task: _Task = (job, op, body, query, reply)
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            get_hub().loop.run_callback(inbox.switch, task)
        elif self._greenlet is None:
            self._greenlet = gevent.spawn(self._serve, task)
        else:
            raise RuntimeError("a submission is already in progress")
        verdict: Verdict = reply.get()
        return verdict

    def close(self) -> None:
        """No more submissions: end the greenlet now if idle, else after the one it sends."""
        self._closed = True
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            get_hub().loop.run_callback(inbox.switch, None)
        elif self._greenlet is None:
            self._tracker._submitters.discard(self)

    def _serve(self, task: _Task | None) -> None:
        hub = get_hub()
        try:
            while task is not None:
                job, op, body, query, reply = task
                try:
                    verdict = self._tracker._submit(job, op, body, query)
                except BaseException as exc:
                    # The user sees the error as if it had sent the request itself (a user
                    # gone meanwhile leaves the Waiter unread).
                    hub.loop.run_callback(reply.throw, *sys.exc_info())
                    if not isinstance(exc, Exception):
                        raise  # this greenlet was killed: it ends
                else:
                    hub.loop.run_callback(reply.switch, verdict)
                if self._closed:
                    return
                inbox = self._inbox = Waiter()
                task = inbox.get()
        finally:
            self._inbox = None
            self._tracker._submitters.discard(self)


CANCEL_AFTER_END = f"{CANCEL.name} after end"
"""Locust's name for the run's own /cancel of a job that had ended before it arrived (the
answer names a terminal status other than CANCELLED): `cancel` then counts the jobs that the
run did interrupt, and the job itself counts under the status it ended with."""


def cancel_request_name(verdict: Verdict) -> str | None:
    status = verdict.field("status")
    if status in JobStatus.TERMINAL and status != JobStatus.CANCELLED:
        return CANCEL_AFTER_END
    return None
