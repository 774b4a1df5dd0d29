"""The jobs a Locust process has in flight, so that stopping a run leaves nothing running.

A submission (/run, /runsync) runs in a greenlet of its own: when Locust kills a user in the
middle of it (a stop, a ramp-down), the request still completes and the job id it returns is
cancelled rather than lost. A user's `on_stop` abandons its current job (cancelled at once, or
as soon as its id is known); `stop()` (at test_stop) waits, bounded, for pending submissions and
cancellations, and cancels whatever is left.

A job cancelled this way counts as "interrupted" (JobStats keeps it out of the failure rate); a
job that turns out to have ended before the cancel counts under its own status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gevent.lock import BoundedSemaphore
from gevent.pool import Group

from runpod_testkit.jobstats import CLIENT_ERROR, INTERRUPTED, JobStats
from runpod_testkit.loadtest.caller import EndpointCaller
from runpod_testkit.loadtest.verdict import Verdict
from runpod_testkit.operations import OPERATIONS, JobStatus, Operation

__all__ = ["JobTracker", "TrackedJob", "metric_ms"]

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


@dataclass(eq=False)
class TrackedJob:
    caller: EndpointCaller
    started_at: float
    """Epoch seconds that e2e and ttfc count from: the intended send time in the open model,
    else the moment the submission was sent."""
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
        self._submits = Group()
        self._cancels = Group()
        self._cancel_slots = BoundedSemaphore(CANCEL_CONCURRENCY)
        self._stopping = False
        self._not_cancelled: list[str] = []

    def start(self) -> None:
        self._stopping = False

    # ---- submitting

    def submit(self, job: TrackedJob, op: Operation, body: bytes, query: str = "") -> Verdict:
        """Send the submission in its own greenlet and wait for its answer."""
        greenlet = self._submits.spawn(self._submit, job, op, body, query)
        verdict: Verdict = greenlet.get()
        return verdict

    def _submit(self, job: TrackedJob, op: Operation, body: bytes, query: str) -> Verdict:
        verdict = job.caller.call(op, body=body, query=query)
        job.reply, job.replied_at = verdict, time.time()
        job_id = verdict.field("id") if verdict.usable else None
        if not isinstance(job_id, str) or not job_id:
            job.closed = True
            self.stats.record_outcome(CLIENT_ERROR)
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
            verdict = job.caller.call(CANCEL, job.id)
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
        if not self._submits.join(timeout=timeout_s):
            logger.warning(
                "%d submission(s) still unanswered at stop; their jobs (ids unknown) may run on",
                len(self._submits),
            )
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
