"""/retry: requeue a failed job (docs/operations/retry.md): a FAILED job is requeued under the same
id, its previous result cleared, and runs again; a COMPLETED job is refused (a CANCELLED one is
tried in test_cancel.py). /health counts the failure and the retry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

from ._support import (
    HEALTH_LAG_S,
    NON_TERMINAL,
    JobTrace,
    check,
    fail,
    follow,
    note_error_body,
    now,
    poll_until,
    probe_plan,
    require_ok,
    send_budgeted,
    shape,
    state_of,
    submit_traced,
    unknown_job_refused,
)

DOC = "docs/operations/retry.md"

# A probe job retried must still be running when /status is read right after the retry, so
# that "requeued" can be told from "never requeued".
_PROBE_RETRY_SLEEP_MS = 1500


@dataclass
class RetryRun:
    client: RunpodClient
    health_before: ApiResponse
    failed: JobTrace
    answer: ApiResponse | None
    """The /retry answer; None when the job did not fail, so there was nothing to retry."""
    again: JobTrace | None
    """The job after the retry: `first` is the /retry answer, `reads[0]` the /status read
    right after it, then every read until it ended again."""


@pytest.fixture(scope="module")
def retry_run(target: SuiteTarget, ledger: JobLedger, probe_inputs: ProbeInputs) -> RetryRun:
    """On an endpoint of its own: a failing job run to its end, retried, and followed again."""
    job_input: dict[str, Any] | None = probe_inputs.get("fail")
    if job_input is None:
        pytest.skip("--probe-inputs gives no 'fail' input, so /retry cannot be checked")
    if probe_plan(probe_inputs, job_input) is not None:
        job_input["sleep_ms"] = max(int(job_input.get("sleep_ms") or 0), _PROBE_RETRY_SLEEP_MS)
    client = target.client(target.fresh_endpoint_url("retry"))
    health_before = client.health()
    failed = submit_traced(client, ledger, target, job_input)
    if failed.final.status not in JobStatus.RETRYABLE:
        return RetryRun(client, health_before, failed, None, None)
    started = now(target)
    # A retry runs the job again: it costs one more job.
    answer = send_budgeted(ledger, client, lambda: client.retry(failed.job_id))
    if not answer.ok:
        return RetryRun(client, health_before, failed, answer, None)
    again = JobTrace(failed.job_id, job_input, answer, started, now(target))
    right_after = client.status(failed.job_id)
    again.reads.append(right_after)
    again.read_at.append(now(target))
    if right_after.ok and right_after.status is not None:
        follow(client, ledger, target, again)
    return RetryRun(client, health_before, failed, answer, again)


def _retried(run: RetryRun) -> tuple[ApiResponse, JobTrace]:
    """The /retry answer and the trace after it, or fail/skip saying why there are none."""
    if run.answer is None:
        pytest.skip(f"the failing job ended {state_of(run.failed.final)}, so there was no retry")
    if not run.answer.ok:
        fail(f"retry: a FAILED job was not requeued: {run.answer.describe()}")
    assert run.again is not None
    return run.answer, run.again


@pytest.mark.contract("retry", "requeues-failed", ref=f"{DOC}#requeues-failed")
def test_retry_requeues_a_failed_job(
    retry_run: RetryRun, contract: ContractChecks, probe_inputs: ProbeInputs
) -> None:
    """retry: a FAILED job is answered {id, status: IN_QUEUE}, is queued or running right
    after, and runs again to a terminal state (FAILED again, for the probe)."""
    answer, again = _retried(retry_run)
    rule = "retry: requeues-failed"
    body = shape(contract, answer, rule)
    plan = probe_plan(probe_inputs, again.job_input)
    if body["status"] != JobStatus.IN_QUEUE:
        if plan is not None and body["status"] in JobStatus.TERMINAL:
            fail(f"{rule}: answered {body['status']}: the job was not requeued")
        contract.drift("retry", [f"/status: answered {body['status']!r}, documented IN_QUEUE"])
    right_after = again.reads[0]
    require_ok(right_after, f"{rule}: /status right after the retry")
    # Only a read sooner than the job's own run time proves it was not requeued and run again.
    gap_ms = again.elapsed_ms(1)
    if plan is not None and gap_ms < plan.duration_ms:
        check(
            right_after.status in NON_TERMINAL,
            f"{rule}: /status {gap_ms:.0f} ms after the retry says {right_after.status}, but "
            f"the job runs {plan.duration_ms} ms: it was not requeued",
        )
    final = again.final
    check(final.is_terminal, f"{rule}: the retried job never ended ({state_of(final)})")
    if plan is not None:
        check(
            final.status == JobStatus.FAILED,
            f"{rule}: the retried failing probe job ended {state_of(final)}, expected FAILED",
        )


@pytest.mark.contract("retry", "unknown-job-404", ref=f"{DOC}#unknown-job-404")
def test_retry_of_an_unknown_job_is_not_found(
    retry_run: RetryRun, contract: ContractChecks
) -> None:
    """retry: an id no job has is refused (404; another 4xx is drift), by a route that
    answered the retry of a failed job otherwise."""
    unknown_job_refused(
        retry_run.client, contract, "retry", route_seen=retry_run.answer, must_see_route=True
    )


@pytest.mark.contract("retry", "same-id", ref=f"{DOC}#same-id")
def test_retry_keeps_the_job_id(retry_run: RetryRun) -> None:
    """retry: the answer and every read after it carry the id of the job retried."""
    answer, again = _retried(retry_run)
    ids = [reply.job_id for reply in again.answers]
    check(
        all(job_id == again.job_id for job_id in ids),
        f"retry: same-id: retried {again.job_id!r}, answers carried ids {ids}",
    )
    check(answer.job_id == retry_run.failed.job_id, "retry: same-id: the answer's id differs")


@pytest.mark.contract("retry", "clears-output", ref=f"{DOC}#clears-output")
def test_retry_clears_the_previous_result(retry_run: RetryRun, contract: ContractChecks) -> None:
    """retry: until the new run ends, /status shows no output (and, undocumented, no error)."""
    _, again = _retried(retry_run)
    pending = [reply for reply in again.reads if reply.status in NON_TERMINAL]
    if not pending:
        pytest.skip("the retried job was never seen before it ended again")
    for reply in pending:
        body = reply.json if isinstance(reply.json, dict) else {}
        check(
            "output" not in body,
            f"retry: clears-output: /status says {reply.status} with the output "
            f"{body.get('output')!r} of the previous run",
        )
        if "error" in body:
            contract.drift("retry", [f"{reply.status} job still carries /error after a retry"])


@pytest.mark.contract("retry", "only-failed-retried", ref=f"{DOC}#only-failed-retried")
def test_retry_refuses_a_completed_job(
    completed_job: tuple[ApiResponse, ApiResponse],
    client: RunpodClient,
    ledger: JobLedger,
    contract: ContractChecks,
) -> None:
    """retry: a COMPLETED job is refused (any 4xx; which one is undocumented) and stays
    COMPLETED with its output."""
    _, final = completed_job
    job_id = final.job_id or ""
    answer = send_budgeted(ledger, client, lambda: client.retry(job_id))
    rule = "retry: only-failed-retried (a COMPLETED job)"
    if answer.ok:
        fail(f"{rule}: the job was requeued: {answer.describe()}")
    check(400 <= answer.status_code < 500, f"{rule}: {answer.describe('expected a 4xx')}")
    if answer.status_code != 400:
        contract.drift("retry", [f"HTTP {answer.status_code} for a job in the wrong state"])
    note_error_body(contract, answer)
    after = client.status(job_id)
    require_ok(after, f"{rule}: /status after the refused retry")
    check(
        after.status == JobStatus.COMPLETED and after.output == final.output,
        f"{rule}: after a refused retry the job reads {after.status} / {after.output!r}",
    )


@pytest.mark.contract(
    "health", "counts-failed-retried", ref="docs/operations/health.md#counts-failed-retried"
)
def test_health_counts_the_failure_and_the_retry(
    retry_run: RetryRun, target: SuiteTarget, contract: ContractChecks
) -> None:
    """health: after a job failed and was retried, jobs.failed and jobs.retried have grown by
    at least one each (by exactly one retry on an endpoint nobody else uses)."""
    _retried(retry_run)
    before = shape(contract, retry_run.health_before, "health: counts-failed-retried")["jobs"]

    def counted(reply: ApiResponse) -> bool:
        jobs = reply.json["jobs"] if reply.ok and isinstance(reply.json, dict) else None
        if not isinstance(jobs, dict):
            return False
        return bool(
            jobs.get("failed", 0) >= before["failed"] + 1
            and jobs.get("retried", 0) >= before["retried"] + 1
        )

    reply, done = poll_until(target, retry_run.client.health, counted, timeout_s=HEALTH_LAG_S)
    jobs = shape(contract, reply, "health: counts-failed-retried")["jobs"]
    check(
        done,
        f"health: counts-failed-retried: after a failure and a retry, failed went "
        f"{before['failed']} -> {jobs['failed']} and retried {before['retried']} -> "
        f"{jobs['retried']} (each should grow by at least 1)",
    )
    if target.private:
        check(
            jobs["retried"] == before["retried"] + 1,
            f"health: counts-failed-retried: one retry moved retried "
            f"{before['retried']} -> {jobs['retried']}",
        )
