"""/status: the job's state, timings and output (docs/operations/status.md):
every answer's shape, the order of states a job goes
through, terminal answers that never change, the output of a COMPLETED job, the error of a
FAILED one, timings that could be true, and the legacy POST form."""

from __future__ import annotations

from typing import Any

import pytest

from runpod_testkit.client import RunpodClient
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs

from ._support import (
    JobTrace,
    check,
    fail,
    lifecycle_findings,
    probe_plan,
    require_ok,
    shape,
    timing_findings,
)

DOC = "docs/operations/status.md"

# The jobs the suite follows with /status, by the fixture that holds each trace.
FOLLOWED = ["completed_trace", "failed_trace", "runsync_slow_trace"]
TIMED = ["completed_trace", "failed_trace", "runsync_fast_trace", "runsync_slow_trace"]

# The documented fields of a job object: none may change once the job has ended.
_STABLE = ("id", "status", "output", "error", "delayTime", "executionTime", "workerId", "retries")


def _trace(request: pytest.FixtureRequest, name: str) -> JobTrace:
    trace: JobTrace = request.getfixturevalue(name)
    return trace


@pytest.mark.parametrize("trace_name", FOLLOWED)
@pytest.mark.contract("status", "shape", ref=f"{DOC}#shape")
def test_every_status_answer_has_the_job_shape(
    trace_name: str, request: pytest.FixtureRequest, contract: ContractChecks
) -> None:
    """status: every answer is 200 with a JSON job object of the documented shape."""
    trace = _trace(request, trace_name)
    for index, answer in enumerate(trace.reads):
        body = shape(contract, answer, f"status: shape (read {index + 1} of {trace.job_id!r})")
        check(
            body["id"] == trace.job_id,
            f"status: shape: /status of {trace.job_id!r} answered id {body['id']!r}",
        )


@pytest.mark.parametrize("trace_name", FOLLOWED)
@pytest.mark.contract("status", "lifecycle", ref=f"{DOC}#lifecycle")
def test_states_only_move_forward(
    trace_name: str, request: pytest.FixtureRequest, contract: ContractChecks
) -> None:
    """status: IN_QUEUE -> IN_PROGRESS -> one terminal state, never backwards."""
    trace = _trace(request, trace_name)
    breaks, drift = lifecycle_findings(trace.statuses)
    check(not breaks, f"status: lifecycle of {trace.job_id!r}: {'; '.join(breaks)}")
    contract.drift("status", drift)


@pytest.mark.parametrize("trace_name", ["completed_trace", "failed_trace"])
@pytest.mark.contract("status", "terminal-stable", ref=f"{DOC}#terminal-stable")
def test_a_terminal_answer_stays_the_same(
    trace_name: str,
    request: pytest.FixtureRequest,
    client: RunpodClient,
    contract: ContractChecks,
) -> None:
    """status: once terminal, later reads give the same job: id, status, output, error and
    timings (the SDK caches the first terminal answer)."""
    trace = _trace(request, trace_name)
    before = trace.final
    rule = f"status: terminal-stable ({trace.job_id!r}, {before.status})"
    for _ in range(2):
        again = client.status(trace.job_id)
        require_ok(again, rule)
        body: dict[str, Any] = again.json if isinstance(again.json, dict) else {}
        earlier: dict[str, Any] = before.json if isinstance(before.json, dict) else {}
        changed = [name for name in _STABLE if body.get(name) != earlier.get(name)]
        if changed:
            fail(
                f"{rule}: a later read changed "
                + "; ".join(f"/{n} {earlier.get(n)!r} -> {body.get(n)!r}" for n in changed)
            )
        others = sorted((set(body) | set(earlier)) - set(_STABLE))
        moved = [name for name in others if body.get(name) != earlier.get(name)]
        contract.drift("status", [f"/{name} changed after the job ended" for name in moved])


@pytest.mark.contract("status", "completed-output", ref=f"{DOC}#completed-output")
def test_a_completed_job_reports_its_output(
    completed_trace: JobTrace, contract: ContractChecks, probe_inputs: ProbeInputs
) -> None:
    """status: the fast job ends COMPLETED under the id /run gave, with the handler's output."""
    final = completed_trace.final
    body = shape(contract, final, "status: completed-output")
    rule = "status: completed-output"
    check(
        body["id"] == completed_trace.job_id,
        f"{rule}: /id {body['id']!r} differs from the id /run returned",
    )
    check(
        body["status"] == JobStatus.COMPLETED,
        f"{rule}: the fast job ended {body['status']}, expected COMPLETED",
    )
    plan = probe_plan(probe_inputs, completed_trace.job_input)
    if plan is not None:
        check(
            body.get("output") == plan.final_output(),
            f"{rule}: output {body.get('output')!r}, the probe returns {plan.final_output()!r}",
        )


@pytest.mark.contract("status", "failed-error", ref=f"{DOC}#failed-error")
def test_a_failed_job_reports_its_error(
    failed_trace: JobTrace, contract: ContractChecks, probe_inputs: ProbeInputs
) -> None:
    """status: the failing job ends FAILED with an `error` string (the handler's message)."""
    final = failed_trace.final
    body = shape(contract, final, "status: failed-error")
    rule = "status: failed-error"
    check(
        body["status"] == JobStatus.FAILED,
        f"{rule}: the failing job ended {body['status']}, expected FAILED",
    )
    plan = probe_plan(probe_inputs, failed_trace.job_input)
    if plan is not None and plan.fail is not None:
        check(
            plan.fail in body["error"],
            f"{rule}: /error {body['error'][:120]!r} does not carry the handler's message "
            f"{plan.fail!r}",
        )


@pytest.mark.parametrize("trace_name", TIMED)
@pytest.mark.contract("status", "timings", ref=f"{DOC}#timings")
def test_timings_could_be_true(
    trace_name: str, request: pytest.FixtureRequest, probe_inputs: ProbeInputs
) -> None:
    """status: delayTime + executionTime never exceed the time that passed, and a probe job's
    executionTime covers the time its handler ran (whole milliseconds)."""
    trace = _trace(request, trace_name)
    problems = timing_findings(trace, probe_plan(probe_inputs, trace.job_input))
    check(not problems, f"status: timings of {trace.job_id!r}: {'; '.join(problems)}")


@pytest.mark.contract("status", "post-method", ref=f"{DOC}#post-method")
def test_status_also_answers_post(
    completed_trace: JobTrace, client: RunpodClient, contract: ContractChecks
) -> None:
    """status: the legacy docs and the Go SDK use POST; refusing it is drift, not a break."""
    answer = client.status(completed_trace.job_id, method="POST")
    if not answer.ok:
        contract.drift(
            "status",
            [f"POST /status answered HTTP {answer.status_code} (legacy docs and the Go SDK post)"],
        )
        return
    check(
        answer.status == completed_trace.final.status,
        f"status: post-method: POST says {answer.status}, GET says {completed_trace.final.status}",
    )
