"""Self-tests of runpod_testkit.loadtest.tracker: a stop never loses a job it started.

The caller is a stand-in that answers from memory (gevent, nothing monkey-patched, no network):
a submission can be held open to kill its user in the middle of it, as Locust kills users.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest
from gevent.event import Event

from runpod_testkit.jobstats import INTERRUPTED, SUBMITTED, JobStats
from runpod_testkit.loadtest.tracker import JobTracker, Submitter, TrackedJob
from runpod_testkit.loadtest.verdict import Verdict
from runpod_testkit.operations import OPERATIONS, Operation

RUN = OPERATIONS["run"]
WAIT_S = 5


class HeldCaller:
    """Answers /run with a new job id (after `release` is set, if `hold`), /cancel with
    CANCELLED, and records every call."""

    def __init__(self, *, hold: bool = False) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.entered = Event()
        self.release = Event()
        if not hold:
            self.release.set()
        self.fail_with: Exception | None = None
        self._jobs = 0

    def call(
        self,
        op: Operation,
        job_id: str | None = None,
        *,
        body: bytes | None = None,
        query: str = "",
        check: Any = None,
        deadline: float | None = None,
        rename: Any = None,
    ) -> Verdict:
        self.calls.append((op.name, job_id))
        if op.name == "cancel":
            return Verdict(200, {"id": job_id, "status": "CANCELLED"}, None)
        self.entered.set()
        assert self.release.wait(WAIT_S)
        if self.fail_with is not None:
            raise self.fail_with
        self._jobs += 1
        return Verdict(200, {"id": f"job-{self._jobs}", "status": "IN_QUEUE"}, None)

    def cancelled(self) -> list[str | None]:
        return [job_id for name, job_id in self.calls if name == "cancel"]


class User:
    """What JobUser does around a submission: submit, and on a kill abandon the job and close
    the submitter (Locust calls on_stop when it kills a user)."""

    def __init__(self, tracker: JobTracker, caller: HeldCaller) -> None:
        self.tracker = tracker
        self.caller = caller
        self.submitter = tracker.submitter()
        self.job: TrackedJob | None = None

    def submit(self) -> TrackedJob:
        now = time.time()
        job = self.job = TrackedJob(self.caller, now, now)  # type: ignore[arg-type]
        try:
            self.submitter.submit(job, RUN, b"{}")
        except gevent.GreenletExit:
            self.tracker.abandon(job)
            self.submitter.close()
            raise
        return job


def test_a_user_killed_during_its_submission_still_gets_its_job_cancelled() -> None:
    stats = JobStats()
    tracker, caller = JobTracker(stats), HeldCaller(hold=True)
    user = User(tracker, caller)
    greenlet = gevent.spawn(user.submit)
    assert caller.entered.wait(WAIT_S)  # the request is out, its answer not yet in
    greenlet.kill(block=True, timeout=WAIT_S)
    assert greenlet.dead
    assert caller.cancelled() == []  # the id is not known yet
    caller.release.set()  # the answer arrives after the user is gone
    tracker.stop(timeout_s=WAIT_S)
    assert caller.cancelled() == ["job-1"]
    assert stats.outcomes == {SUBMITTED: 1, INTERRUPTED: 1}
    assert tracker.in_flight == {}


def test_a_stop_waits_for_the_submission_in_flight_and_cancels_its_job() -> None:
    stats = JobStats()
    tracker, caller = JobTracker(stats), HeldCaller(hold=True)
    user = User(tracker, caller)
    greenlet = gevent.spawn(user.submit)
    assert caller.entered.wait(WAIT_S)
    gevent.spawn_later(0.05, caller.release.set)
    tracker.stop(timeout_s=WAIT_S)  # waits for the answer, then cancels what it started
    assert caller.cancelled() == ["job-1"]
    assert stats.outcomes == {SUBMITTED: 1, INTERRUPTED: 1}
    greenlet.join(WAIT_S)
    assert greenlet.successful()


def test_one_greenlet_sends_every_submission_of_a_user_and_ends_on_close() -> None:
    tracker, caller = JobTracker(JobStats()), HeldCaller()
    user = User(tracker, caller)
    ids = [gevent.spawn(user.submit).get(timeout=WAIT_S).id for _ in range(3)]
    assert ids == ["job-1", "job-2", "job-3"]
    serving = user.submitter._greenlet
    assert serving is not None
    assert not serving.dead  # reused from one submission to the next
    user.submitter.close()
    serving.join(WAIT_S)
    assert serving.dead
    with pytest.raises(RuntimeError, match="closed"):
        user.submitter.submit(TrackedJob(caller, 0.0, 0.0), RUN, b"{}")  # type: ignore[arg-type]


def test_an_error_in_a_submission_reaches_the_user() -> None:
    tracker, caller = JobTracker(JobStats()), HeldCaller()
    caller.fail_with = ValueError("broken")
    user = User(tracker, caller)
    with pytest.raises(ValueError, match="broken"):
        gevent.spawn(user.submit).get(timeout=WAIT_S)
    caller.fail_with = None
    assert gevent.spawn(user.submit).get(timeout=WAIT_S).id == "job-1"  # still serving


def test_a_stop_ends_the_submitters_left_open() -> None:
    tracker, caller = JobTracker(JobStats()), HeldCaller()
    submitter = tracker.submitter()
    assert isinstance(submitter, Submitter)
    gevent.spawn(User(tracker, caller).submit).get(timeout=WAIT_S)
    other = tracker.submitter()
    now = time.time()
    gevent.spawn(other.submit, TrackedJob(caller, now, now), RUN, b"{}").get(timeout=WAIT_S)  # type: ignore[arg-type]
    serving = other._greenlet
    assert serving is not None
    tracker.stop(timeout_s=WAIT_S)
    serving.join(WAIT_S)
    assert serving.dead


class AnsweringCaller:
    """Answers every submission with one fixed verdict and counts the calls."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.calls = 0

    def call(self, op: Operation, job_id: str | None = None, **_kwargs: Any) -> Verdict:
        self.calls += 1
        return self.verdict


@pytest.mark.parametrize(
    ("verdict", "outcome"),
    [
        (Verdict(503, None, "run: server error (HTTP 503)"), "unknown"),
        (Verdict(0, None, "run: connection error", error=ConnectionResetError()), "unknown"),
        (Verdict(0, None, "run: connection error", error=ConnectionRefusedError()), "error"),
        (Verdict(429, {"error": "slow down"}, "run: throttled (HTTP 429)"), "error"),
        (Verdict(400, {"error": "bad input"}, "run: HTTP 400"), "error"),
    ],
    ids=["5xx", "reset", "refused", "429", "400"],
)
def test_a_submission_that_may_have_created_a_job_counts_as_unknown(
    verdict: Verdict, outcome: str
) -> None:
    """A /run answered 5xx or cut off after it was sent may have created a job: the tracker
    counts it as "unknown" (and sends it once: the caller decides retries, never the tracker);
    one refused before anything was sent, or answered 4xx, is an "error"."""
    stats = JobStats()
    tracker = JobTracker(stats)
    caller = AnsweringCaller(verdict)
    submitter = tracker.submitter()
    now = time.time()
    job = TrackedJob(caller, now, now)  # type: ignore[arg-type]
    submitter.submit(job, RUN, b"{}")
    submitter.close()
    assert job.id is None
    assert job.closed
    assert caller.calls == 1
    assert stats.outcomes == {outcome: 1}
    assert stats.submitted == 0
