"""The emulator's state machine on a virtual clock (issue 2): job lifecycle and timings, workers and
scaling, cancel/retry/purge, policies, retention and memory, probe timelines, determinism.

Rules come from docs/operations/ and docs/job-states.md. No test sleeps:
time is a `VirtualClock` moved by `Harness.at`, which also checks the model's invariants.
"""

from __future__ import annotations

import gc
import random
import re
import sys
import weakref
from collections import Counter
from typing import Any

import orjson
import pytest

from runpod_testkit.emulator.mock import VirtualClock
from runpod_testkit.emulator.model import (
    _JOB_EXPIRE,
    EmulatorConfig,
    Job,
    JobRequestError,
    Model,
    SimulatedRuntime,
    WorkerState,
)
from runpod_testkit.operations import (
    MAX_JOB_LIFETIME_MS,
    RETENTION_ASYNC_S,
    RETENTION_SYNC_S,
    JobStatus,
)

EP = "endpoint-a"
_UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
# Production's suffixes (captured 2026-09): -u1, -u2, -e1, -e2.
RUN_ID = re.compile(rf"{_UUID4}-[ue][12]")
SYNC_ID = re.compile(rf"sync-{_UUID4}-[ue][12]")


class Harness:
    """A seeded model on a virtual clock with its job log; every step checks the invariants.

    Times given to `at` are seconds after the start. Tests that assert an exact boundary use
    binary-exact durations (0.25 s, 1.5 s, ...) so that `start + a + b == start + (a + b)`.
    """

    def __init__(self, **config: Any) -> None:
        config.setdefault("seed", 7)
        self.clock = VirtualClock()
        self.t0 = self.clock.now
        self.log: list[dict[str, Any]] = []
        self.model = Model(EmulatorConfig(**config), self.clock, on_terminal=self._record)

    def _record(self, job: Job) -> None:
        self.log.append(job.log_record())

    def submit(
        self,
        *,
        sync: bool = False,
        policy: dict[str, Any] | None = None,
        endpoint: str = EP,
        **probe: Any,
    ) -> Job:
        body: dict[str, Any] = {"input": probe}
        if policy is not None:
            body["policy"] = policy
        job = self.model.submit(endpoint, body, sync=sync)
        check_invariants(self.model, self.log)
        return job

    def at(self, seconds: float) -> None:
        """Move the clock to `seconds` after the start and apply every event due."""
        target = self.t0 + seconds
        assert target >= self.clock.now, "tests only move time forward"
        self.clock.jump_to(target)
        self.model.advance()
        check_invariants(self.model, self.log)

    def ms(self, at: float) -> int:
        """A clock reading as the job log writes it (epoch ms)."""
        return round(at * 1000)

    def health(self, endpoint: str = EP) -> dict[str, Any]:
        return self.model.health(endpoint)

    def workers(self, endpoint: str = EP) -> dict[str, int]:
        counts: dict[str, int] = self.health(endpoint)["workers"]
        return counts

    def exists(self, job: Job) -> bool:
        return self.model.get(job.endpoint.id, job.id) is job

    def records(self, job: Job) -> list[dict[str, Any]]:
        return [record for record in self.log if record["id"] == job.id]


def check_invariants(model: Model, log: list[dict[str, Any]]) -> None:
    """What must hold between any two operations, for every endpoint."""
    config = model.config
    for endpoint in model.endpoints.values():
        jobs = list(endpoint.jobs.values())
        workers = list(endpoint.workers.values())
        assert config.workers_min <= len(workers) <= config.workers_max
        running = [w for w in workers if w.state is WorkerState.RUNNING]
        idle = [w for w in workers if w.state is WorkerState.IDLE]
        in_progress = [j for j in jobs if j.status == JobStatus.IN_PROGRESS]
        queued = [j for j in jobs if j.status == JobStatus.IN_QUEUE]

        # Each running worker holds exactly one in-progress job, and every such job has one.
        assert sorted(id(w.job) for w in running) == sorted(id(j) for j in in_progress)
        for worker in running:
            assert worker.job is not None
            assert worker.job.worker_id == worker.id
        for worker in workers:
            if worker.state is not WorkerState.RUNNING:
                assert worker.job is None
        # The queue is FIFO, holds exactly the queued jobs, and never waits beside an idle worker.
        assert sorted(id(j) for j in endpoint.queue) == sorted(id(j) for j in queued)
        queued_at = [j.queued_at for j in endpoint.queue]
        assert queued_at == sorted(queued_at)
        assert not (endpoint.queue and idle)

        health = endpoint.health()
        assert health["jobs"]["inProgress"] == len(in_progress) == len(running)
        assert health["jobs"]["inQueue"] == len(queued)
        states = ("idle", "initializing", "running", "throttled", "unhealthy")
        assert sum(health["workers"][state] for state in states) == len(workers)
        assert health["workers"]["ready"] == health["workers"]["idle"]
        ended = Counter(r["status"] for r in log if r["endpointId"] == endpoint.id)
        assert health["jobs"]["completed"] == ended[JobStatus.COMPLETED]
        assert health["jobs"]["failed"] == ended[JobStatus.FAILED] + ended[JobStatus.TIMED_OUT]

        for key, job in endpoint.jobs.items():
            assert key == job.id
            check_job_body(job)


def check_job_body(job: Job) -> None:
    """Field presence by state (docs/operations/status.md#job-object)."""
    body = job.body()
    ran = job.started_at is not None
    assert body["id"] == job.id
    assert body["status"] == job.status
    assert ("delayTime" in body) == ran
    assert ("executionTime" in body) == (ran and job.is_terminal)
    assert ("workerId" in body) == (ran and job.is_terminal)
    if "output" in body:
        assert job.status == JobStatus.COMPLETED
    if "error" in body:
        assert job.status == JobStatus.FAILED
    assert body.get("delayTime", 0) >= 0
    assert body.get("executionTime", 0) >= 0


def only_worker_id(h: Harness) -> str:
    (worker_id,) = h.model.endpoint(EP).workers
    return worker_id


# --- lifecycle and timings ----------------------------------------------------------------------


def test_job_ids_have_production_forms() -> None:
    h = Harness(workers_min=1)

    run_ids = [h.submit().id for _ in range(20)]
    sync_ids = [h.submit(sync=True).id for _ in range(20)]

    assert all(RUN_ID.fullmatch(job_id) for job_id in run_ids), run_ids
    assert all(SYNC_ID.fullmatch(job_id) for job_id in sync_ids), sync_ids
    assert len(set(run_ids + sync_ids)) == 40
    # Each of production's suffixes turns up (40 ids, four suffixes drawn uniformly).
    assert {job_id[-3:] for job_id in run_ids + sync_ids} == {"-u1", "-u2", "-e1", "-e2"}


def test_completed_job_has_exact_timings_and_its_worker() -> None:
    h = Harness(workers_min=1)
    h.at(0.5)

    job = h.submit(sleep_ms=2500, echo="hi")

    assert job.body() == {"delayTime": 0, "id": job.id, "status": JobStatus.IN_PROGRESS}
    h.at(2.999)
    assert job.status == JobStatus.IN_PROGRESS
    h.at(3.0)
    assert job.body() == {
        "delayTime": 0,
        "executionTime": 2500,
        "id": job.id,
        "output": [{"echo": "hi"}],
        "status": JobStatus.COMPLETED,
        "workerId": only_worker_id(h),
    }
    (record,) = h.records(job)
    assert record["status"] == JobStatus.COMPLETED
    assert (record["delayTime"], record["executionTime"]) == (0, 2500)
    assert record["submittedAt"] == record["startedAt"] == h.ms(h.t0 + 0.5)
    assert record["endedAt"] == h.ms(h.t0 + 3.0)
    assert record["workerId"] == only_worker_id(h)
    assert record["sync"] is False


def test_cold_start_from_zero_counts_in_delay_time() -> None:
    h = Harness(workers_min=0, cold_start_ms=1500, queue_delay_s=4.0)

    job = h.submit(sleep_ms=1000)

    # Scale from zero at once, not after the queue delay.
    assert job.body() == {"id": job.id, "status": JobStatus.IN_QUEUE}
    assert h.workers()["initializing"] == 1
    assert h.health()["jobs"]["inQueue"] == 1
    h.at(1.499)
    assert job.status == JobStatus.IN_QUEUE
    h.at(1.5)
    assert job.body() == {"delayTime": 1500, "id": job.id, "status": JobStatus.IN_PROGRESS}
    assert h.workers()["running"] == 1
    assert h.health()["jobs"]["inProgress"] == 1
    h.at(2.5)
    assert job.status == JobStatus.COMPLETED
    assert (job.body()["delayTime"], job.body()["executionTime"]) == (1500, 1000)
    assert h.health()["jobs"] == {
        "completed": 1,
        "failed": 0,
        "inProgress": 0,
        "inQueue": 0,
        "retried": 0,
    }
    assert h.workers()["idle"] == 1


def test_failed_job_reports_the_error_and_no_output() -> None:
    h = Harness(workers_min=1)

    job = h.submit(sleep_ms=250, fail="boom")
    h.at(0.25)

    assert job.body() == {
        "delayTime": 0,
        "executionTime": 250,
        "error": "boom",
        "id": job.id,
        "status": JobStatus.FAILED,
        "workerId": only_worker_id(h),
    }
    assert h.health()["jobs"]["failed"] == 1
    assert h.health()["jobs"]["completed"] == 0


def test_execution_timeout_ends_the_job_at_exactly_the_timeout() -> None:
    h = Harness(workers_min=1)

    job = h.submit(sleep_ms=60_000, policy={"executionTimeout": 5000})
    h.at(4.999)
    assert job.status == JobStatus.IN_PROGRESS
    h.at(5.0)

    assert job.body() == {
        "delayTime": 0,
        "executionTime": 5000,
        "id": job.id,
        "status": JobStatus.TIMED_OUT,
        "workerId": only_worker_id(h),
    }
    assert h.workers()["idle"] == 1
    assert h.health()["jobs"]["failed"] == 1


def test_job_shorter_than_its_execution_timeout_completes() -> None:
    h = Harness(workers_min=1)

    job = h.submit(sleep_ms=4999, policy={"executionTimeout": 5000})
    h.at(5.0)

    assert job.status == JobStatus.COMPLETED
    assert job.body()["executionTime"] == 4999


# --- cancel, retry, purge -----------------------------------------------------------------------


def test_cancel_removes_a_queued_job_before_it_starts() -> None:
    h = Harness(workers_min=1, workers_max=1)
    running = h.submit(sleep_ms=10_000)
    queued = h.submit(sleep_ms=0)

    h.model.cancel(queued)
    check_invariants(h.model, h.log)

    assert queued.body() == {"id": queued.id, "status": JobStatus.CANCELLED}
    assert h.health()["jobs"]["inQueue"] == 0
    h.at(60)
    assert running.status == JobStatus.COMPLETED
    assert queued.started_at is None
    assert [r["status"] for r in h.records(queued)] == [JobStatus.CANCELLED]


def test_cancel_stops_a_running_job_and_frees_its_worker() -> None:
    h = Harness(workers_min=1, workers_max=1)
    first = h.submit(sleep_ms=10_000)
    second = h.submit(sleep_ms=1000)
    h.at(2.0)

    h.model.cancel(first)
    check_invariants(h.model, h.log)

    assert first.body() == {
        "delayTime": 0,
        "executionTime": 2000,
        "id": first.id,
        "status": JobStatus.CANCELLED,
        "workerId": only_worker_id(h),
    }
    assert second.body() == {"delayTime": 2000, "id": second.id, "status": JobStatus.IN_PROGRESS}
    h.at(20)
    assert first.status == JobStatus.CANCELLED  # no late completion
    assert second.status == JobStatus.COMPLETED
    assert [r["status"] for r in h.records(first)] == [JobStatus.CANCELLED]
    assert h.health()["jobs"]["completed"] == 1
    assert h.health()["jobs"]["failed"] == 0


@pytest.mark.parametrize("probe", [{}, {"fail": "no"}, {"sleep_ms": 60_000}])
def test_cancel_leaves_a_terminal_job_as_it_is(probe: dict[str, Any]) -> None:
    h = Harness(workers_min=1)
    job = h.submit(policy={"executionTimeout": 5000}, **probe)
    h.at(5)
    before, log_length = job.body(), len(h.log)

    h.model.cancel(job)

    assert job.body() == before
    assert len(h.log) == log_length


@pytest.mark.parametrize(
    ("probe", "policy", "ended"),
    [
        ({"sleep_ms": 500, "fail": "flaky"}, None, JobStatus.FAILED),
        ({"sleep_ms": 60_000}, {"executionTimeout": 5000}, JobStatus.TIMED_OUT),
    ],
)
def test_retry_requeues_under_the_same_id_with_results_cleared(
    probe: dict[str, Any], policy: dict[str, Any] | None, ended: str
) -> None:
    h = Harness(workers_min=1, workers_max=1, queue_delay_s=3600)
    job = h.submit(policy=policy, **probe)
    h.at(8)
    assert job.status == ended
    blocker = h.submit(sleep_ms=2000)  # keeps the only worker busy, so the retry waits

    h.model.retry(job)
    check_invariants(h.model, h.log)

    assert h.model.get(EP, job.id) is job
    assert job.body() == {"id": job.id, "status": JobStatus.IN_QUEUE}
    assert h.health()["jobs"]["retried"] == 1
    assert h.health()["jobs"]["inQueue"] == 1
    h.at(10)
    assert blocker.status == JobStatus.COMPLETED
    assert job.status == JobStatus.IN_PROGRESS
    assert job.body()["delayTime"] == 2000  # from the retry, not the first submission
    h.at(120)
    assert [r["status"] for r in h.records(job)] == [ended, ended]
    assert h.health()["jobs"]["retried"] == 1


@pytest.mark.parametrize("state", ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "CANCELLED"])
def test_retry_refuses_jobs_that_did_not_fail(state: str) -> None:
    h = Harness(workers_min=1, workers_max=1)
    h.submit(sleep_ms=10_000)
    jobs = {
        "IN_QUEUE": h.submit(),
        "COMPLETED": h.submit(endpoint="other"),
        "IN_PROGRESS": h.submit(sleep_ms=10_000, endpoint="third"),
    }
    jobs["CANCELLED"] = h.submit(sleep_ms=10_000, endpoint="fourth")
    h.model.cancel(jobs["CANCELLED"])
    job = jobs[state]
    assert job.status == state

    with pytest.raises(ValueError, match="only FAILED or TIMED_OUT"):
        h.model.retry(job)

    assert job.status == state
    assert h.health(job.endpoint.id)["jobs"]["retried"] == 0


def test_purge_queue_removes_only_queued_jobs() -> None:
    h = Harness(workers_min=1, workers_max=1, queue_delay_s=3600)
    running = h.submit(sleep_ms=4000)
    queued = [h.submit(), h.submit(sleep_ms=5), h.submit(policy={"lowPriority": True})]

    removed = h.model.purge_queue(EP)
    check_invariants(h.model, h.log)

    assert removed == 3
    assert all(job.status == JobStatus.CANCELLED for job in queued)
    assert all(job.started_at is None for job in queued)
    assert running.status == JobStatus.IN_PROGRESS
    assert h.health()["jobs"]["inQueue"] == 0
    assert h.health()["jobs"]["inProgress"] == 1
    h.at(4)
    assert running.status == JobStatus.COMPLETED
    assert h.model.purge_queue(EP) == 0


# --- workers and scaling ------------------------------------------------------------------------


def test_minimum_workers_are_warm_and_never_retired() -> None:
    h = Harness(workers_min=2, workers_max=4, cold_start_ms=1000, idle_timeout_s=5)

    assert h.workers() == {
        "idle": 2,
        "initializing": 0,
        "ready": 2,
        "running": 0,
        "throttled": 0,
        "unhealthy": 0,
    }
    job = h.submit()
    assert job.body()["delayTime"] == 0
    h.at(3600)
    assert h.workers()["idle"] == 2


def test_queue_delay_scaler_adds_a_worker_when_a_job_waits_long_enough() -> None:
    h = Harness(workers_min=1, workers_max=2, cold_start_ms=1000, queue_delay_s=4, idle_timeout_s=5)
    h.submit(sleep_ms=60_000)
    waiting = h.submit(sleep_ms=1000)

    h.at(3.999)
    assert len(h.model.endpoint(EP).workers) == 1
    assert waiting.status == JobStatus.IN_QUEUE
    h.at(4.0)
    assert h.workers()["initializing"] == 1
    h.at(5.0)
    assert waiting.body()["delayTime"] == 5000  # queue delay plus cold start
    h.at(6.0)
    assert waiting.status == JobStatus.COMPLETED
    # The added worker retires after its idle timeout, down to workers_min.
    h.at(10.999)
    assert len(h.model.endpoint(EP).workers) == 2
    h.at(11.0)
    assert len(h.model.endpoint(EP).workers) == 1
    assert h.workers()["running"] == 1


def test_workers_max_is_never_exceeded() -> None:
    h = Harness(workers_min=0, workers_max=3, cold_start_ms=1000, queue_delay_s=4)
    jobs = [h.submit(sleep_ms=60_000) for _ in range(20)]

    h.at(3.999)
    assert len(h.model.endpoint(EP).workers) == 1
    h.at(4.0)
    assert h.workers()["initializing"] == 2
    h.at(5.0)
    assert h.workers()["running"] == 3
    assert [job.body()["delayTime"] for job in jobs[:3]] == [1000, 5000, 5000]
    peak = 0
    for step in range(12, 900):
        h.at(step / 2)  # the invariants check workers_max at every step
        peak = max(peak, len(h.model.endpoint(EP).workers))
    assert peak == 3
    assert all(job.status == JobStatus.COMPLETED for job in jobs)


def test_idle_workers_retire_down_to_workers_min() -> None:
    h = Harness(workers_min=1, workers_max=3, cold_start_ms=500, queue_delay_s=0, idle_timeout_s=2)
    for _ in range(3):
        h.submit(sleep_ms=1000)
    h.at(0)
    assert len(h.model.endpoint(EP).workers) == 3  # a zero queue delay scales at once

    h.at(1.5)  # the warm worker idles from 1.0, the added two from 1.5
    assert h.workers()["idle"] == 3
    h.at(2.999)
    assert len(h.model.endpoint(EP).workers) == 3
    h.at(3.0)
    assert len(h.model.endpoint(EP).workers) == 2
    h.at(3.5)
    assert len(h.model.endpoint(EP).workers) == 1
    h.at(3600)
    assert h.workers()["idle"] == 1


def test_workers_retire_to_zero_and_the_next_job_scales_from_zero() -> None:
    h = Harness(workers_min=0, workers_max=2, cold_start_ms=2000, idle_timeout_s=5)
    h.submit()
    h.at(6.999)
    assert h.workers()["idle"] == 1
    h.at(7.0)
    assert sum(h.workers().values()) == 0

    job = h.submit(sleep_ms=1000)

    assert h.workers()["initializing"] == 1
    h.at(10.0)
    assert job.status == JobStatus.COMPLETED
    assert job.body()["delayTime"] == 2000


def test_low_priority_jobs_do_not_trigger_scaling() -> None:
    h = Harness(workers_min=0, workers_max=3, queue_delay_s=4)
    low = [h.submit(policy={"lowPriority": True}) for _ in range(3)]

    h.at(600)
    assert sum(h.workers().values()) == 0
    assert all(job.status == JobStatus.IN_QUEUE for job in low)

    normal = h.submit()  # scales from zero; the worker then serves the queue in order
    h.at(700)
    assert all(job.status == JobStatus.COMPLETED for job in [*low, normal])


def test_low_priority_jobs_wait_for_a_busy_worker_instead_of_scaling() -> None:
    h = Harness(workers_min=1, workers_max=3, queue_delay_s=4, cold_start_ms=1000)
    blocker = h.submit(sleep_ms=120_000)
    low = [h.submit(policy={"lowPriority": True}) for _ in range(5)]

    h.at(60)
    assert len(h.model.endpoint(EP).workers) == 1
    assert all(job.status == JobStatus.IN_QUEUE for job in low)
    normal = h.submit()
    h.at(63.999)
    assert len(h.model.endpoint(EP).workers) == 1
    h.at(64)
    assert h.workers()["initializing"] == 1  # a normal job that waited does scale
    h.at(65)
    assert all(job.status == JobStatus.COMPLETED for job in [*low, normal])
    assert normal.body()["delayTime"] == 5000
    assert blocker.status == JobStatus.IN_PROGRESS


def test_each_endpoint_id_has_its_own_queue_and_workers() -> None:
    h = Harness(workers_min=1, workers_max=1)
    a = h.submit(sleep_ms=10_000, endpoint="a")
    b = h.submit(sleep_ms=10_000, endpoint="b")

    assert a.status == b.status == JobStatus.IN_PROGRESS
    assert a.worker_id != b.worker_id
    assert h.model.get("a", b.id) is None
    assert h.model.purge_queue("a") == 0
    assert h.health("b")["jobs"]["inProgress"] == 1


# --- policies, ttl, retention and memory --------------------------------------------------------


def test_policy_ttl_expires_a_job_that_never_started() -> None:
    h = Harness(workers_min=0)
    job = h.submit(policy={"ttl": 10_000, "lowPriority": True})

    h.at(9.999)
    assert h.exists(job)
    h.at(10.0)

    assert not h.exists(job)
    (record,) = h.records(job)
    assert record["status"] == JobStatus.TIMED_OUT
    assert record["delayTime"] is None
    assert h.health()["jobs"]["inQueue"] == 0


def test_policy_ttl_removes_a_running_job() -> None:
    h = Harness(workers_min=1)
    job = h.submit(sleep_ms=60_000, policy={"ttl": 10_000})

    h.at(9.999)
    assert job.status == JobStatus.IN_PROGRESS
    h.at(10.0)

    assert not h.exists(job)
    (record,) = h.records(job)
    assert (record["status"], record["executionTime"]) == (JobStatus.TIMED_OUT, 10_000)
    assert h.workers()["idle"] == 1


def test_status_ttl_deletes_a_finished_job_sooner() -> None:
    h = Harness(workers_min=1)
    job = h.submit()
    h.at(1.0)

    h.model.set_ttl(job, 2000)

    h.at(2.999)
    assert h.exists(job)
    h.at(3.0)
    assert not h.exists(job)


def test_status_ttl_never_outlives_the_policy_ttl() -> None:
    h = Harness(workers_min=1)
    job = h.submit(sleep_ms=8000, policy={"ttl": 10_000})
    h.at(1.0)

    h.model.set_ttl(job, 60_000)

    h.at(8.0)
    assert job.status == JobStatus.COMPLETED
    h.at(9.999)
    assert h.exists(job)
    h.at(10.0)
    assert not h.exists(job)


@pytest.mark.parametrize(
    ("sync", "retention_s"), [(False, RETENTION_ASYNC_S), (True, RETENTION_SYNC_S)]
)
def test_results_are_kept_for_the_retention_period(sync: bool, retention_s: float) -> None:
    h = Harness(workers_min=1)
    job = h.submit(sync=sync, sleep_ms=1000)
    h.at(1.0)
    assert job.status == JobStatus.COMPLETED

    h.at(1.0 + retention_s - 0.001)
    assert h.exists(job)
    h.at(1.0 + retention_s)
    assert not h.exists(job)


def test_retention_is_configurable() -> None:
    h = Harness(workers_min=1, retention_async_s=5, retention_sync_s=2)
    run = h.submit()
    runsync = h.submit(sync=True)

    h.at(1.999)
    assert h.exists(run)
    assert h.exists(runsync)
    h.at(2.0)
    assert h.exists(run)
    assert not h.exists(runsync)
    h.at(5.0)
    assert not h.exists(run)


def test_expired_jobs_free_their_memory() -> None:
    h = Harness(workers_min=0, workers_max=3)
    model = h.model
    watched: list[weakref.ref[Job]] = []
    for index in range(10_000):
        job = model.submit(EP, {"input": {"echo": index}})
        if index % 100 == 0:
            watched.append(weakref.ref(job))
        h.clock.advance(0.001)
    del job
    h.at(60)
    assert Counter(r["status"] for r in h.log) == {JobStatus.COMPLETED: 10_000}
    assert model.pending_events() > 10_000  # every job still waits out its retention
    peak_table_size = sys.getsizeof(model.endpoint(EP).jobs)

    h.at(RETENTION_ASYNC_S + 120)  # retention over; the 24 h TTL events are not yet due

    assert list(model.jobs()) == []
    assert model.pending_events() <= model.config.workers_max  # stale events compacted away
    # The job table was rebuilt as it emptied (a dict never shrinks in place).
    table_size = sys.getsizeof(model.endpoint(EP).jobs)
    assert table_size < sys.getsizeof(dict.fromkeys(range(1000))) < peak_table_size
    gc.collect()
    assert [ref for ref in watched if ref() is not None] == []


# --- request checks and probe input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([], "request body"),
        ({"inputs": {}}, "'input'"),
        ({"input": [1]}, "'input'"),
        ({"input": "text"}, "'input'"),
        ({"input": {}, "policy": []}, "'policy'"),
        ({"input": {}, "policy": {"executionTimeout": 4999}}, "policy.executionTimeout"),
        (
            {"input": {}, "policy": {"executionTimeout": MAX_JOB_LIFETIME_MS + 1}},
            "policy.executionTimeout",
        ),
        ({"input": {}, "policy": {"executionTimeout": "600000"}}, "policy.executionTimeout"),
        ({"input": {}, "policy": {"executionTimeout": 5000.5}}, "policy.executionTimeout"),
        ({"input": {}, "policy": {"executionTimeout": True}}, "policy.executionTimeout"),
        ({"input": {}, "policy": {"ttl": 9999}}, "policy.ttl"),
        ({"input": {}, "policy": {"ttl": None}}, "policy.ttl"),
        ({"input": {}, "policy": {"lowPriority": "yes"}}, "policy.lowPriority"),
        ({"input": {}, "webhook": 5}, "'webhook'"),
        ({"input": {}, "s3Config": "bucket"}, "'s3Config'"),
    ],
)
def test_bad_requests_are_refused_naming_the_key(body: Any, named: str) -> None:
    h = Harness(workers_min=1)

    with pytest.raises(JobRequestError, match=re.escape(named)):
        h.model.submit(EP, body)

    assert list(h.model.jobs()) == []


@pytest.mark.parametrize(
    "policy",
    [
        {"executionTimeout": 5000, "ttl": 10_000, "lowPriority": False},
        {"executionTimeout": MAX_JOB_LIFETIME_MS, "ttl": MAX_JOB_LIFETIME_MS},
        {},
    ],
)
def test_policy_limits_are_inclusive(policy: dict[str, Any]) -> None:
    assert Harness(workers_min=1).submit(policy=policy).status == JobStatus.COMPLETED


@pytest.mark.parametrize(
    ("probe", "key"),
    [
        ({"sleep_ms": -1}, "sleep_ms"),
        ({"chunks": "3"}, "chunks"),
        ({"chunk_interval_ms": 1.5}, "chunk_interval_ms"),
        ({"output_bytes": 10**12}, "output_bytes"),
        ({"fail": 5}, "fail"),
    ],
)
def test_probe_input_errors_fail_the_job_naming_the_key(probe: dict[str, Any], key: str) -> None:
    h = Harness(workers_min=1)

    job = h.submit(**probe)

    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert repr(key) in job.error
    assert job.body()["executionTime"] == 0


def test_model_without_a_clock_says_so() -> None:
    with pytest.raises(RuntimeError, match="clock"):
        Model().submit(EP, {"input": {}})


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"workers_min": -1}, "workers_min"),
        ({"workers_max": 0}, "workers_max"),
        ({"workers_min": 3, "workers_max": 2}, "workers_max"),
        ({"cold_start_ms": -5}, "cold_start_ms"),
        ({"idle_timeout_s": -1}, "idle_timeout_s"),
        ({"queue_delay_s": -1}, "queue_delay_s"),
        ({"retention_sync_s": -1}, "retention_sync_s"),
    ],
)
def test_bad_config_is_refused_naming_the_field(config: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        EmulatorConfig(**config)


# --- the probe timeline (what /stream drains) ---------------------------------------------------


def test_chunks_appear_on_the_probe_timeline() -> None:
    h = Harness(workers_min=1)
    job = h.submit(sleep_ms=250, chunks=4, chunk_interval_ms=125)
    seen: list[Any] = []

    for at, expected in [(0.249, 0), (0.25, 1), (0.374, 1), (0.375, 2), (0.5, 3), (0.625, 4)]:
        h.at(at)
        seen += [chunk["output"]["index"] for chunk in job.take_new_chunks(h.clock.now)]
        assert len(seen) == expected, at
    assert seen == [0, 1, 2, 3]
    assert job.status == JobStatus.COMPLETED  # the last chunk and the end are one instant
    assert job.output == [{"index": i} for i in range(4)]
    assert job.take_new_chunks(h.clock.now) == []


def test_next_chunk_time_is_exact_at_epoch_magnitudes() -> None:
    """A virtual clock that jumps to `next_chunk_at` must find that chunk there (a float
    difference at epoch seconds is off by ~0.1 us; the mock's /stream wait spun forever)."""
    for start in (0.1, 0.3, 1.7):
        for sleep_ms, interval_ms in [(0, 7), (100, 100), (3, 333)]:
            h = Harness(workers_min=1)
            h.at(start)
            job = h.submit(sleep_ms=sleep_ms, chunks=5, chunk_interval_ms=interval_ms)
            produced = job.chunks_available(h.clock.now)
            while (due := job.next_chunk_at(h.clock.now)) is not None:
                h.clock.jump_to(due)
                h.model.advance()
                assert job.chunks_available(h.clock.now) == produced + 1
                produced += 1
            assert produced == 5
            assert job.status == JobStatus.COMPLETED


def test_cancel_freezes_the_stream() -> None:
    h = Harness(workers_min=1)
    job = h.submit(chunks=10, chunk_interval_ms=250)
    h.at(0.6)  # chunks 0, 1, 2 are out (at 0, 0.25 and 0.5)
    assert len(job.take_new_chunks(h.clock.now)) == 3

    h.model.cancel(job)
    h.at(100)

    assert job.chunks_available(h.clock.now) == 3
    assert job.take_new_chunks(h.clock.now) == []
    assert job.next_chunk_at(h.clock.now) is None


def test_a_job_without_chunks_yields_its_echo_once() -> None:
    h = Harness(workers_min=1)
    job = h.submit(sleep_ms=500, echo={"k": [1]}, output_bytes=3)

    assert job.take_new_chunks(h.clock.now) == []
    h.at(0.5)

    echo = {"echo": {"k": [1]}, "padding": "xxx"}
    assert job.take_new_chunks(h.clock.now) == [{"output": echo}]
    assert job.output == [echo]


def test_a_failing_job_yields_nothing() -> None:
    h = Harness(workers_min=1)
    job = h.submit(sleep_ms=500, chunks=3, fail="nope")
    h.at(1)

    assert job.take_new_chunks(h.clock.now) == []
    assert job.status == JobStatus.FAILED


# --- random operations: invariants and determinism ----------------------------------------------


def drive(model_seed: int, ops_seed: int, steps: int = 400, **config: Any) -> Harness:
    """Random submits, cancels, retries, purges, ?ttl, stream drains and clock jumps."""
    h = Harness(seed=model_seed, **config)
    rng = random.Random(ops_seed)
    jobs: list[Job] = []
    for _ in range(steps):
        roll = rng.random()
        live = [job for job in jobs if h.exists(job)]
        if roll < 0.35:
            policy: dict[str, Any] = {}
            if rng.random() < 0.2:
                policy["executionTimeout"] = 5000
            if rng.random() < 0.2:
                policy["ttl"] = rng.choice([10_000, 30_000])
            if rng.random() < 0.15:
                policy["lowPriority"] = True
            probe = {
                "sleep_ms": rng.choice([0, 250, 1000, 4000, 20_000]),
                "chunks": rng.choice([0, 0, 1, 4]),
                "chunk_interval_ms": rng.choice([0, 100, 333]),
                "fail": "boom" if rng.random() < 0.1 else None,
            }
            endpoint = rng.choice(["a", "b"])
            jobs.append(
                h.submit(sync=rng.random() < 0.3, policy=policy, endpoint=endpoint, **probe)
            )
        elif roll < 0.45 and live:
            h.model.cancel(rng.choice(live))
        elif roll < 0.55 and live:
            retryable = [job for job in live if job.status in JobStatus.RETRYABLE]
            if retryable:
                h.model.retry(rng.choice(retryable))
        elif roll < 0.58:
            h.model.purge_queue(rng.choice(["a", "b"]))
        elif roll < 0.63 and live:
            h.model.set_ttl(rng.choice(live), rng.choice([1000, 5000, 60_000]))
        elif roll < 0.73 and live:
            job = rng.choice(live)
            before = job.chunks_sent
            assert len(job.take_new_chunks(h.clock.now)) == job.chunks_sent - before
        else:
            h.clock.advance(rng.choice([0, 0.001, 0.1, 0.5, 1, 3, 10]))
            h.model.advance()
        check_invariants(h.model, h.log)
    return h


@pytest.mark.parametrize(
    "config",
    [
        {"workers_min": 0, "workers_max": 3},
        {"workers_min": 2, "workers_max": 2, "cold_start_ms": 0},
        {
            "workers_min": 1,
            "workers_max": 4,
            "cold_start_ms": 0,
            "queue_delay_s": 0,
            "idle_timeout_s": 0,
            "retention_async_s": 5,
            "retention_sync_s": 0,
        },
    ],
)
def test_invariants_hold_under_random_operations(config: dict[str, Any]) -> None:
    h = drive(model_seed=3, ops_seed=11, **config)
    h.clock.advance(8 * 24 * 3600)  # past every TTL: everything ends and is deleted
    h.model.advance()

    check_invariants(h.model, h.log)
    assert list(h.model.jobs()) == []
    assert {r["status"] for r in h.log} <= JobStatus.TERMINAL
    assert len({r["status"] for r in h.log}) >= 3


def test_same_seed_gives_the_same_ids_and_job_log() -> None:
    first = drive(model_seed=5, ops_seed=9)
    again = drive(model_seed=5, ops_seed=9)
    reseeded = drive(model_seed=6, ops_seed=9)

    assert len(first.log) > 50
    assert first.log == again.log
    ids = [r["id"] for r in first.log]
    assert ids != [r["id"] for r in reseeded.log]
    assert [r["status"] for r in first.log] == [r["status"] for r in reseeded.log]


# --- what the fast paths must not change ---------------------------------------------------------


def test_encoded_body_follows_every_state_the_job_goes_through() -> None:
    """The encoded body is reused while the job stays as it is, and never outlives a change:
    queued, running, failed, retried (same instant, another run), failed again."""
    h = Harness(workers_min=1, cold_start_ms=0)
    blocker = h.submit(sleep_ms=1000)
    job = h.submit(sleep_ms=500, fail="boom")
    seen: list[bytes] = []

    def check() -> None:
        encoded = job.encoded_body()
        assert encoded == orjson.dumps(job.body())
        assert job.encoded_body() is encoded  # unchanged state: the same bytes again
        seen.append(encoded)

    check()  # IN_QUEUE behind the blocker
    h.at(1.0)
    assert blocker.status == JobStatus.COMPLETED
    check()  # IN_PROGRESS
    h.at(1.5)
    check()  # FAILED
    h.model.retry(job)
    check()  # picked up again at once by the idle worker: IN_PROGRESS, new start
    h.at(2.0)
    check()  # FAILED again, later timings
    assert [orjson.loads(body)["status"] for body in seen] == [
        JobStatus.IN_QUEUE,
        JobStatus.IN_PROGRESS,
        JobStatus.FAILED,
        JobStatus.IN_PROGRESS,
        JobStatus.FAILED,
    ]
    assert len(set(seen)) == len(seen)


def test_jobs_of_one_input_share_a_plan_and_others_get_their_own() -> None:
    h = Harness(workers_min=1, cold_start_ms=0)
    first = h.submit(sleep_ms=0, echo="same")
    second = h.submit(sleep_ms=0, echo="same")
    other = h.submit(sleep_ms=0, echo="other")
    unhashable = h.submit(sleep_ms=0, echo=["a", {"b": 1}])
    broken = h.submit(sleep_ms=-1)

    assert first.plan is second.plan
    assert first.output is second.output
    assert other.plan is not first.plan
    assert other.output == [{"echo": "other"}]
    assert unhashable.output == [{"echo": ["a", {"b": 1}]}]
    assert broken.status == JobStatus.FAILED
    assert "sleep_ms" in (broken.error or "")


def test_the_plan_cache_stays_bounded() -> None:
    h = Harness(workers_min=1, cold_start_ms=0)
    for index in range(1500):
        job = h.model.submit(EP, {"input": {"echo": index}})
        assert job.output == [{"echo": index}]
    assert len(h.model._plans) <= 1024


def test_a_finished_job_keeps_its_input_only_while_it_can_run_again() -> None:
    h = Harness(workers_min=1, cold_start_ms=0)
    done = h.submit(sleep_ms=0, echo="x")
    failed = h.submit(sleep_ms=0, fail="boom", echo="y")

    assert done.status == JobStatus.COMPLETED
    assert done.input == {}
    assert failed.status == JobStatus.FAILED
    assert failed.input["echo"] == "y"
    h.model.retry(failed)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "boom"


def test_run_events_and_expiries_apply_in_the_order_they_were_scheduled() -> None:
    """Two heaps, one order: a job ends at the very instant a queued job's TTL runs out; the
    job's end was scheduled first, so its worker takes the queued job before that expires (it
    then times out while running), rather than the queued job expiring unstarted."""
    h = Harness(workers_min=1, workers_max=1, cold_start_ms=0)
    running = h.submit(sleep_ms=10_000)
    queued = h.submit(policy={"ttl": 10_000})

    h.at(10.0)

    assert running.status == JobStatus.COMPLETED
    (record,) = h.records(queued)
    assert record["status"] == JobStatus.TIMED_OUT
    assert record["startedAt"] is not None  # it was picked up before its TTL expiry applied
    assert record["executionTime"] == 0


def _run_trace(simulated: bool) -> tuple[Model, list[dict[str, Any]]]:
    """The same seeded trace (arrivals, lengths, some past the execution timeout) submitted as
    /run bodies or through `submit_simulated` with `keep_ended_jobs=False`."""
    rng = random.Random(3)
    clock = VirtualClock()
    log: list[dict[str, Any]] = []
    config = EmulatorConfig(workers_max=3, cold_start_ms=700, idle_timeout_s=1.5, seed=5)
    model = Model(
        config,
        clock,
        on_terminal=lambda job: log.append(job.log_record()),
        keep_ended_jobs=not simulated,
    )
    endpoint = model.endpoint(EP)
    at = clock.now
    for _ in range(300):
        at += rng.expovariate(4.0)
        clock.jump_to(at)
        sleep_ms = rng.choice((250, 500, 1500, 6000))
        if simulated:
            model.submit_simulated(endpoint, {"sleep_ms": sleep_ms}, 5_000)
        else:
            body = {"input": {"sleep_ms": sleep_ms}, "policy": {"executionTimeout": 5_000}}
            model.submit(EP, body)
        check_invariants(model, log)
    while (upcoming := model.next_event_time()) is not None and upcoming < at + 600:
        clock.jump_to(upcoming)
        model.advance()
    return model, log


def test_a_simulated_submission_runs_as_the_same_run_request_does() -> None:
    kept, requested = _run_trace(simulated=False)
    forgotten, simulated = _run_trace(simulated=True)
    # Only the ids differ (job ids count up, so worker ids draw other random numbers).
    timings = ["status", "delayTime", "executionTime", "submittedAt", "startedAt", "endedAt"]
    assert [[r[k] for k in timings] for r in simulated] == [
        [r[k] for k in timings] for r in requested
    ]
    assert {r["status"] for r in simulated} == {JobStatus.COMPLETED, JobStatus.TIMED_OUT}
    assert [r["id"] for r in simulated[:3]] != [r["id"] for r in requested[:3]]
    assert len({r["id"] for r in simulated}) == 300
    assert all(re.fullmatch(r"sim-\d+", r["id"]) for r in simulated)
    # keep_ended_jobs=False: every job is gone when it ends, and no expiry stays behind.
    assert len(kept.endpoint(EP).jobs) == 300
    assert kept.pending_events() >= 300
    assert forgotten.endpoint(EP).jobs == {}
    assert forgotten.next_event_time() is None


class _ExpiriesInTheHeapModel(Model):
    """The model as it was before the expiry line: every JOB_EXPIRE event in the heap."""

    def _schedule_expiry(self, job: Job, at: float) -> None:
        job.expires_at = at
        job.expiry_generation += 1
        self._schedule(at, _JOB_EXPIRE, job, job.expiry_generation)


class _UnlistedRuntime(SimulatedRuntime):
    """The simulated runtime under another type: the model takes none of the shortcuts of a
    plain simulation (it cannot know what such a runtime does)."""


def _tied_trace(
    model_class: type[Model], runtime: SimulatedRuntime | None = None
) -> tuple[list[tuple[Any, ...]], int, int]:
    """A busy endpoint on a 0.25 s grid, so that TTL expiries, retention expiries, job ends,
    cold starts and idle retirements fall on the same instants: TTLs in and out of time
    order, sync and async jobs, ?ttl, cancellations and retries."""
    rng = random.Random(11)
    clock = VirtualClock()
    log: list[tuple[Any, ...]] = []
    config = EmulatorConfig(workers_max=2, cold_start_ms=500, idle_timeout_s=1.0, seed=3)
    model = model_class(
        config,
        clock,
        on_terminal=lambda job: log.append(
            (job.id, job.status, job.submitted_at, job.started_at, job.ended_at, clock.now)
        ),
        runtime=runtime,
    )
    jobs: list[Job] = []
    start = clock.now
    for step in range(600):
        clock.jump_to(start + step * 0.25)
        model.advance()
        if rng.random() < 0.6:
            # Mostly one TTL (in time order: the line), now and then a longer one (after
            # which the shorter ones are out of order for a while: the heap).
            policy = {"ttl": 10_000 if rng.random() < 0.9 else 12_000}
            body = {"input": {"sleep_ms": rng.choice((250, 500, 1000, 2000))}, "policy": policy}
            jobs.append(model.submit(EP, body, sync=rng.random() < 0.3))
        if jobs and rng.random() < 0.05:
            model.set_ttl(rng.choice(jobs), rng.choice((1_000, 2_000)))
        if jobs and rng.random() < 0.03:
            model.cancel(rng.choice(jobs))
        if jobs and rng.random() < 0.03:
            failed = [job for job in jobs if job.status in JobStatus.RETRYABLE]
            if failed:
                model.retry(failed[0])
    for _ in range(100_000):
        upcoming = model.next_event_time()
        if upcoming is None:
            break
        clock.jump_to(upcoming)
        model.advance()
    return log, model.pending_events(), model.scheduled


def test_expiries_on_the_line_apply_in_the_order_one_heap_gives() -> None:
    """In-order expiries wait on a line instead of the heap; every event still applies in
    the order of (time, sequence), same-instant ties included: the job log is the same,
    entry for entry, as with every expiry in the heap."""
    lined, lined_left, _ = _tied_trace(Model)
    heaped, heaped_left, _ = _tied_trace(_ExpiriesInTheHeapModel)
    assert lined == heaped
    statuses = Counter(entry[1] for entry in lined)
    assert statuses[JobStatus.TIMED_OUT] > 10  # queued jobs outlived their TTL
    assert statuses[JobStatus.COMPLETED] > 10
    assert statuses[JobStatus.CANCELLED] > 0
    assert lined_left == heaped_left == 0  # every retention expiry applied


def test_a_plain_simulation_skips_only_work_that_does_nothing() -> None:
    """With simulated workers and no job faults the model skips the worker walk behind a
    non-empty queue and the queue-delay checks at workers-max; the same trace with a runtime
    it cannot vouch for takes neither shortcut, schedules more events, and ends the same."""
    plain, _, plain_events = _tied_trace(Model)
    general, _, general_events = _tied_trace(Model, _UnlistedRuntime())
    assert plain == general
    assert plain_events < general_events - 100  # the saturated trace's skipped checks
