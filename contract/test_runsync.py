"""/runsync: synchronous submission (docs/operations/runsync.md): a job that ends within ?wait comes
back finished; one that outlasts ?wait comes back as the still-running job object, whose id
/status then follows to the end; a finished sync job stays readable through /status."""

from __future__ import annotations

import pytest

from runpod_testkit.client import RunpodClient
from runpod_testkit.operations import RETENTION_SYNC_S, JobStatus
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

from ._support import (
    RUNSYNC_SHORT_WAIT_MS,
    JobTrace,
    check,
    fail,
    now,
    probe_plan,
    require_ok,
    shape,
)

DOC = "docs/operations/runsync.md"

# A non-terminal answer that came back in less than this share of ?wait did not wait.
_EARLY_SHARE = 0.5
# Beyond ?wait, network and queueing may add this much before the answer arrives.
_LATE_ALLOWANCE_MS = 5000


def _wait_of(trace: JobTrace) -> int | None:
    value = trace.first.response.request.url.params.get("wait")
    return int(value) if value is not None and value.isdigit() else None


@pytest.mark.contract("runsync", "shape", ref=f"{DOC}#shape")
def test_runsync_answers_with_a_job_object(
    runsync_fast_trace: JobTrace, contract: ContractChecks
) -> None:
    """runsync: 200 with a JSON job object; a COMPLETED one carries its timings."""
    first = runsync_fast_trace.first
    check(first.status_code == 200, f"runsync: shape: answered HTTP {first.status_code}")
    shape(contract, first, "runsync: shape")


@pytest.mark.contract("runsync", "completes-within-wait", ref=f"{DOC}#completes-within-wait")
def test_a_fast_job_comes_back_finished(
    runsync_fast_trace: JobTrace, probe_inputs: ProbeInputs
) -> None:
    """runsync: a job that ends well within ?wait is answered COMPLETED, with its output."""
    trace = runsync_fast_trace
    first = trace.first
    wait_ms = _wait_of(trace) or 0
    if not first.is_terminal:
        waited = trace.elapsed_ms(0)
        check(
            waited >= wait_ms * _EARLY_SHARE,
            f"runsync: completes-within-wait: answered {first.status} after {waited:.0f} ms, "
            f"before ?wait={wait_ms} ms ran out",
        )
        pytest.skip(
            f"the fast job was still {first.status} when ?wait={wait_ms} ms ran out "
            "(a cold endpoint?); raise --job-timeout to give it a longer wait"
        )
    check(
        first.status == JobStatus.COMPLETED,
        f"runsync: completes-within-wait: the fast job ended {first.status}, expected COMPLETED",
    )
    plan = probe_plan(probe_inputs, trace.job_input)
    if plan is not None:
        expected = plan.final_output()
        check(
            first.output == expected,
            f"runsync: completes-within-wait: output {first.output!r}, the probe returns "
            f"{expected!r}",
        )


@pytest.mark.contract("runsync", "past-wait-answers-job", ref=f"{DOC}#past-wait-answers-job")
def test_a_job_longer_than_wait_comes_back_unfinished(
    runsync_slow_trace: JobTrace, contract: ContractChecks, probe_inputs: ProbeInputs
) -> None:
    """runsync: when ?wait runs out first, the answer is the job object with its id and a
    non-terminal status (IN_QUEUE or IN_PROGRESS), sent once ?wait has passed."""
    trace = runsync_slow_trace
    first = trace.first
    body = shape(contract, first, "runsync: past-wait-answers-job")
    waited = trace.elapsed_ms(0)
    wait_ms = _wait_of(trace) or RUNSYNC_SHORT_WAIT_MS
    rule = f"runsync: past-wait-answers-job (?wait={wait_ms} ms)"
    if first.is_terminal:
        plan = probe_plan(probe_inputs, trace.job_input)
        if plan is not None and plan.duration_ms > wait_ms:
            fail(
                f"{rule}: answered {body['status']} for a job whose handler runs "
                f"{plan.duration_ms} ms: the request was held past ?wait"
            )
        if waited > wait_ms + _LATE_ALLOWANCE_MS:
            fail(f"{rule}: answered {body['status']} after {waited:.0f} ms: held past ?wait")
        pytest.skip(f"the slow job ended within ?wait={wait_ms} ms, so the check cannot run")
    check(
        waited >= wait_ms * _EARLY_SHARE,
        f"{rule}: answered {body['status']} after only {waited:.0f} ms, without waiting",
    )


@pytest.mark.contract("runsync", "past-wait-pollable", ref=f"{DOC}#past-wait-pollable")
def test_the_unfinished_job_is_followed_to_its_end(
    runsync_slow_trace: JobTrace, probe_inputs: ProbeInputs
) -> None:
    """runsync: the id of a job answered unfinished is a job /status follows to COMPLETED."""
    trace = runsync_slow_trace
    if trace.first.is_terminal:
        pytest.skip("the slow job ended within ?wait, so there was nothing to follow")
    final = trace.final
    rule = "runsync: past-wait-pollable"
    check(
        final.job_id == trace.job_id,
        f"{rule}: /status of {trace.job_id!r} answered id {final.job_id!r}",
    )
    check(
        final.status == JobStatus.COMPLETED,
        f"{rule}: the slow job ended {final.status}, expected COMPLETED",
    )
    plan = probe_plan(probe_inputs, trace.job_input)
    if plan is not None:
        check(
            final.output == plan.final_output(),
            f"{rule}: output {final.output!r}, the probe returns {plan.final_output()!r}",
        )


@pytest.mark.contract("runsync", "result-on-status", ref=f"{DOC}#result-on-status")
def test_a_finished_sync_job_is_readable_through_status(
    runsync_fast_trace: JobTrace, client: RunpodClient, target: SuiteTarget
) -> None:
    """runsync: a finished sync job's result is also served by /status (kept 1 minute)."""
    trace = runsync_fast_trace
    if not trace.final.is_terminal:
        pytest.skip("the sync job did not finish")
    answer = client.status(trace.job_id)
    rule = "runsync: result-on-status"
    kept_s = now(target) - (trace.read_at[-1] if trace.read_at else trace.first_at)
    if answer.status_code == 404 and kept_s > RETENTION_SYNC_S:
        pytest.skip(f"read {kept_s:.0f} s after the job ended, past the 1-minute retention")
    require_ok(answer, rule)
    check(
        answer.status == trace.final.status,
        f"{rule}: /status says {answer.status}, the job ended {trace.final.status}",
    )
    check(
        answer.output == trace.final.output,
        f"{rule}: /status gives output {answer.output!r}, the job returned {trace.final.output!r}",
    )
