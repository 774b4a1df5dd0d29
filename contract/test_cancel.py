"""/cancel: stop a job (docs/operations/cancel.md): a
queued job and a running job both end CANCELLED, answered at once, and never run (on) after; a
job that has already ended is left as it was. Also, on the same jobs: /health counts a running
job, and /retry refuses a CANCELLED one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.operations import JobStatus, operation
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

from ._support import (
    check,
    fail,
    note_error_body,
    note_undocumented_body,
    now,
    pause,
    poll_until,
    probe_plan,
    require_ok,
    send_budgeted,
    shape,
    state_of,
    submit_job,
    unknown_job_refused,
)

DOC = "docs/operations/cancel.md"
RUNNING = (JobStatus.IN_PROGRESS, "RUNNING")

# How long a slow job of another handler is watched after its cancel, when its run time is
# unknown (the "slow" role runs for several seconds).
_UNKNOWN_RUN_S = 5.0

# The most idle workers the queued-job retry occupies with slow jobs (each one is paid for).
_MAX_WORKERS_TO_OCCUPY = 5


@dataclass
class CancelledJob:
    """One job cancelled by the suite, and what the endpoint said around the cancel."""

    job_id: str
    before: ApiResponse
    """/status just before the cancel."""
    answer: ApiResponse
    """The /cancel answer."""
    after: ApiResponse
    """/status right after the cancel."""
    later: ApiResponse | None = None
    """/status once the job would have ended had it not been cancelled."""
    ran_for_ms: float | None = None
    """For a running job: the most it can have run when the cancel was answered (from the
    /status read before the one that first showed it running)."""

    @property
    def state_before(self) -> str | None:
        return self.before.status


@dataclass
class CancelRun:
    queued: CancelledJob
    """The job cancelled right after its submission: the retry's when there was one."""
    skip_queued: str | None
    """Why no job could be cancelled while IN_QUEUE, when the retry could not be made."""
    running: CancelledJob | None
    skip_running: str | None
    health: ApiResponse | None
    """/health read while the running job was seen IN_PROGRESS before and after it."""
    client: RunpodClient
    job_input: dict[str, Any]


def _cancel(
    client: RunpodClient, ledger: JobLedger, job_id: str, before: ApiResponse
) -> CancelledJob:
    answer = client.cancel(job_id)
    after = client.status(job_id)
    ledger.observe(after)
    return CancelledJob(job_id, before, answer, after)


def _submit(client: RunpodClient, ledger: JobLedger, job_input: dict[str, Any]) -> str:
    return submit_job(ledger, client, job_input).job_id or ""


@pytest.fixture(scope="module")
def cancel_run(target: SuiteTarget, ledger: JobLedger, probe_inputs: ProbeInputs) -> CancelRun:
    """On an endpoint of its own (a fresh one starts cold, so a new job waits in the queue):
    a slow job cancelled while queued, then another cancelled once it runs; then a pause for
    as long as they would have run, and a last look at both."""
    job_input = probe_inputs.get("slow")
    if job_input is None:
        pytest.skip("--probe-inputs gives no 'slow' input, so /cancel cannot be checked")
    client = target.client(target.fresh_endpoint_url("cancel"))

    queued_id = _submit(client, ledger, job_input)
    queued = _cancel(client, ledger, queued_id, client.status(queued_id))

    running_id = _submit(client, ledger, job_input)
    last_queued_at = now(target)

    def read_running() -> ApiResponse:
        nonlocal last_queued_at
        answer = client.status(running_id)
        if answer.status == JobStatus.IN_QUEUE:
            last_queued_at = now(target)
        return answer

    seen, started = poll_until(
        target,
        read_running,
        lambda answer: not answer.ok or answer.status not in (JobStatus.IN_QUEUE, None),
    )
    running: CancelledJob | None = None
    skip_running: str | None = None
    health: ApiResponse | None = None
    if started and seen.status in RUNNING:
        reading = client.health()
        before = client.status(running_id)
        if before.status in RUNNING:
            health = reading
        running = _cancel(client, ledger, running_id, before)
        running.ran_for_ms = (now(target) - last_queued_at) * 1000
    else:
        skip_running = (
            f"the second slow job was never seen running (last status {seen.status}, "
            f"HTTP {seen.status_code}) within --job-timeout"
        )
        client.cancel(running_id)

    skip_queued: str | None = None
    if queued.state_before in RUNNING and not target.private:
        # On a live endpoint a worker took it at once: try again behind busy workers.
        retried, skip_queued = _cancel_behind_busy_workers(
            target, client, ledger, job_input, state_of(queued.before)
        )
        if retried is not None:
            queued = retried

    plan = probe_plan(probe_inputs, job_input)
    run_s = plan.duration_ms / 1000 if plan is not None else _UNKNOWN_RUN_S
    pause(target, min(target.job_timeout_s, run_s + 1.0))
    for job in (queued, running):
        if job is not None:
            job.later = client.status(job.job_id)
            ledger.observe(job.later)
    return CancelRun(queued, skip_queued, running, skip_running, health, client, job_input)


def _idle_workers(health: ApiResponse) -> int | None:
    """Idle workers in a /health answer (`workers.idle`, else `workers.ready`); None when the
    answer does not say (refused, not JSON, no such integer)."""
    if not health.ok or not health.is_json or not isinstance(health.json, dict):
        return None
    workers = health.json.get("workers")
    if not isinstance(workers, dict):
        return None
    for key in ("idle", "ready"):
        value = workers.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _budget_refusal(ledger: JobLedger, jobs: int) -> str | None:
    """Why `jobs` more submissions would pass --max-jobs, or None; reserves nothing (each
    submission reserves its own)."""
    try:
        ledger.reserve(jobs)
    except pytest.skip.Exception as refused:
        return str(refused.msg)
    ledger.refund(jobs)
    return None


def _wait_until_running(
    target: SuiteTarget, client: RunpodClient, ledger: JobLedger, job_ids: list[str]
) -> str | None:
    """Poll until every job is IN_PROGRESS (bounded by --job-timeout); why not, or None."""
    deadline = now(target) + target.job_timeout_s
    waiting = list(job_ids)
    while True:
        still: list[str] = []
        for job_id in waiting:
            answer = ledger.observe(client.status(job_id))
            if answer.status in RUNNING:
                continue
            if not answer.ok or answer.status != JobStatus.IN_QUEUE:
                return f"an occupying slow job read {state_of(answer)} instead of running"
            still.append(job_id)
        if not still:
            return None
        remaining = deadline - now(target)
        if remaining <= 0:
            return (
                f"{len(still)} of {len(job_ids)} occupying slow jobs were still IN_QUEUE after "
                f"{target.job_timeout_s:g} s (--job-timeout)"
            )
        waiting = still
        pause(target, min(target.poll_interval_s, remaining))


def _cancel_behind_busy_workers(
    target: SuiteTarget,
    client: RunpodClient,
    ledger: JobLedger,
    job_input: dict[str, Any],
    first_state: str,
) -> tuple[CancelledJob | None, str | None]:
    """Occupy the idle workers /health reports with slow jobs, then submit a job and cancel it
    at once, so that it is cancelled while IN_QUEUE; the occupying jobs are cancelled right
    after. (the cancelled job, or None and why the retry could not be made)."""
    # What was seen, not a guess at why: the worker may have been warm or just started.
    first = (
        f"the first job already read {first_state} at the /status right after its submission, "
        "before its cancel (a worker took it at once)"
    )
    health = client.health()
    idle = _idle_workers(health)
    if idle is None:
        return None, f"{first}, and /health tells no idle worker count: {health.describe()}"
    if idle > _MAX_WORKERS_TO_OCCUPY:
        return None, (
            f"{first}, and /health reports {idle} idle workers: more than the "
            f"{_MAX_WORKERS_TO_OCCUPY} the suite would occupy with slow jobs"
        )
    occupy = f"occupying {idle} idle worker{'' if idle == 1 else 's'}"
    refused = _budget_refusal(ledger, idle + 1)
    if refused is not None:
        return None, f"{first}; {occupy}: {refused}"
    occupying: list[str] = []
    try:
        for _ in range(idle):
            occupying.append(_submit(client, ledger, job_input))
        problem = _wait_until_running(target, client, ledger, occupying)
        if problem is not None:
            return None, f"{first}; {occupy}: {problem}"
        job_id = _submit(client, ledger, job_input)
        job = _cancel(client, ledger, job_id, client.status(job_id))
    finally:
        for occupier in occupying:
            ledger.observe(client.cancel(occupier))
    if job.state_before != JobStatus.IN_QUEUE:
        return None, (
            f"{first}; after {occupy}, the next job too read {state_of(job.before)} before "
            "its cancel (a worker /health did not count took it: autoscaling?)"
        )
    return job, None


def _check_cancelled(job: CancelledJob, contract: ContractChecks, rule: str) -> None:
    body = shape(contract, job.answer, rule)
    check(body["id"] == job.job_id, f"{rule}: answered id {body['id']!r} for {job.job_id!r}")
    check(
        body["status"] == JobStatus.CANCELLED,
        f"{rule}: answered status {body['status']}, expected CANCELLED",
    )
    for moment, answer in (("right after the cancel", job.after), ("later", job.later)):
        if answer is None:
            continue
        if answer.status_code == 404:
            # A cancelled job that is gone at once is undocumented, not a break.
            contract.drift("cancel", [f"/status of the cancelled job {moment} answered 404"])
            continue
        require_ok(answer, f"{rule}: /status {moment}")
        check(
            answer.status == JobStatus.CANCELLED,
            f"{rule}: /status {moment} says {answer.status}: the cancelled job "
            + ("ran anyway" if answer.status != JobStatus.IN_QUEUE else "is still queued"),
        )


@pytest.mark.contract("cancel", "queued-job", ref=f"{DOC}#queued-job")
def test_cancel_removes_a_queued_job(cancel_run: CancelRun, contract: ContractChecks) -> None:
    """cancel: a queued job is answered CANCELLED at once, /status says CANCELLED, and the job
    never runs."""
    job = cancel_run.queued
    if cancel_run.skip_queued is not None:
        pytest.skip(f"cancel: queued-job: {cancel_run.skip_queued}")
    if job.state_before != JobStatus.IN_QUEUE:
        pytest.skip(
            f"the job was already {state_of(job.before)} when cancelled"
            f"{_how_it_left_the_queue(job.before)}, so cancelling a queued job could not be tried"
        )
    _check_cancelled(job, contract, "cancel: queued-job")


def _how_it_left_the_queue(before: ApiResponse) -> str:
    """Why a job read before its cancel was not queued, where its status says so (nothing is
    claimed for an unreadable answer)."""
    if before.status in RUNNING:
        return " (a worker took it at once)"
    if before.status in JobStatus.TERMINAL:
        return " (it had run and ended already)"
    return ""


@pytest.mark.contract("cancel", "running-job", ref=f"{DOC}#running-job")
def test_cancel_stops_a_running_job(
    cancel_run: CancelRun, contract: ContractChecks, probe_inputs: ProbeInputs
) -> None:
    """cancel: a running job is answered CANCELLED at once, /status says CANCELLED, and it does
    not go on to COMPLETED."""
    job = cancel_run.running
    if job is None:
        pytest.skip(cancel_run.skip_running or "no running job to cancel")
    if job.state_before not in RUNNING:
        pytest.skip(f"the job was already {state_of(job.before)} when the cancel went out")
    ended = job.answer.status
    if ended in JobStatus.TERMINAL - {JobStatus.CANCELLED} and job.after.status == ended:
        # It may have ended on its own just before the cancel reached it: only a job that
        # cannot have run its full time yet proves the cancel was ignored.
        plan = probe_plan(probe_inputs, cancel_run.job_input)
        if plan is None or (job.ran_for_ms or 0) >= plan.duration_ms:
            pytest.skip(f"the job ended {ended} on its own before the cancel reached it")
    _check_cancelled(job, contract, "cancel: running-job")


@pytest.mark.contract("cancel", "terminal-job-unchanged", ref=f"{DOC}#terminal-job-unchanged")
def test_cancel_leaves_a_finished_job_as_it_was(
    completed_job: tuple[ApiResponse, ApiResponse],
    client: RunpodClient,
    contract: ContractChecks,
) -> None:
    """cancel: what /cancel answers for a job that already ended is undocumented (drift), but
    the job stays COMPLETED: a terminal state never changes."""
    _, final = completed_job
    job_id = final.job_id or ""
    answer = client.cancel(job_id)
    rule = "cancel: terminal-job-unchanged"
    check(answer.status_code < 500, f"{rule}: {answer.describe('expected an answer, not 5xx')}")
    if answer.ok:
        note_undocumented_body(contract, answer, operation("cancel").responses[200])
        if answer.status != final.status:
            contract.drift("cancel", [f"answered status {answer.status} for a {final.status} job"])
    else:
        contract.drift("cancel", [f"HTTP {answer.status_code} for a job that already ended"])
        note_error_body(contract, answer)
    after = client.status(job_id)
    require_ok(after, f"{rule}: /status after the cancel")
    check(
        after.status == final.status,
        f"{rule}: the {final.status} job became {after.status} after a cancel",
    )


@pytest.mark.contract("cancel", "unknown-job-404", ref=f"{DOC}#unknown-job-404")
def test_cancel_of_an_unknown_job_is_not_found(
    cancel_run: CancelRun, contract: ContractChecks
) -> None:
    """cancel: an id no job has is refused (404; another 4xx is drift), by a route that
    answered the cancel of a queued job otherwise."""
    unknown_job_refused(
        cancel_run.client,
        contract,
        "cancel",
        route_seen=cancel_run.queued.answer,
        must_see_route=True,
    )


@pytest.mark.contract("health", "counts-running", ref="docs/operations/health.md#counts-running")
def test_health_counts_a_running_job(
    cancel_run: CancelRun, target: SuiteTarget, contract: ContractChecks
) -> None:
    """health: while a job is seen IN_PROGRESS before and after the read, /health counts at
    least one job in progress and one running worker."""
    health = cancel_run.health
    if health is None:
        pytest.skip("no /health read was bracketed by two IN_PROGRESS reads of one job")
    body = shape(contract, health, "health: counts-running")
    findings = []
    if body["jobs"]["inProgress"] < 1:
        findings.append(f"jobs.inProgress is {body['jobs']['inProgress']}")
    if body["workers"]["running"] < 1:
        findings.append(f"workers.running is {body['workers']['running']}")
    if not findings:
        return
    message = f"while a job was IN_PROGRESS, {' and '.join(findings)}"
    if target.private:
        fail(f"health: counts-running: {message}")
    # A shared live endpoint's counters may lag (undocumented).
    contract.drift("health", [message])


@pytest.mark.contract(
    "retry", "only-failed-retried", ref="docs/operations/retry.md#only-failed-retried"
)
def test_retry_refuses_a_cancelled_job(
    cancel_run: CancelRun, ledger: JobLedger, contract: ContractChecks
) -> None:
    """retry: only FAILED and TIMED_OUT jobs can be retried; a CANCELLED job is refused
    (any 4xx; which one is undocumented) and stays CANCELLED."""
    job = cancel_run.queued
    if job.after.status != JobStatus.CANCELLED:
        pytest.skip(f"the cancelled job reads {state_of(job.after)}, not CANCELLED")
    client = cancel_run.client
    answer = send_budgeted(ledger, client, lambda: client.retry(job.job_id))
    rule = "retry: only-failed-retried (a CANCELLED job)"
    if answer.ok:
        fail(f"{rule}: the job was requeued: {answer.describe()}")
    check(400 <= answer.status_code < 500, f"{rule}: {answer.describe('expected a 4xx')}")
    if answer.status_code != 400:
        contract.drift("retry", [f"HTTP {answer.status_code} for a job in the wrong state"])
    note_error_body(contract, answer)
    after = client.status(job.job_id)
    check(
        after.status in (JobStatus.CANCELLED, None) or after.status_code == 404,
        f"{rule}: the CANCELLED job became {after.status} after a refused retry",
    )
