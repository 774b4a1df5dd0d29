"""Authentication (docs/auth.md): every
operation refuses a request without an API key, and one with a key no account has, with 401.

The job operations are tried on a job of the suite's own that has ended, so that an endpoint
which wrongly lets the request through cannot change anything that matters; /run goes through
the job budget (an endpoint that wrongly accepts it has started a job, cancelled at the end);
/purge-queue is tried only where destructive checks are allowed."""

from __future__ import annotations

from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, CallOptions, RunpodClient
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks, SuiteSettings
from runpod_testkit.suite.probe_inputs import ProbeInputs

from ._support import check, fail, note_error_body, send_budgeted, wrong_key_headers

DOC = "docs/auth.md"
_JOB_OPERATIONS = ("status", "stream", "cancel", "retry")
_OPERATIONS = ("health", *_JOB_OPERATIONS, "run", "purge-queue")
_HOW = {"no-key": "without an API key", "wrong-key": "with a key no account has"}


def _cases() -> list[Any]:
    return [
        pytest.param(
            operation,
            how,
            marks=pytest.mark.contract(operation, f"{how}-401", ref=f"{DOC}#{how}-401"),
            id=f"{operation}-{how}",
        )
        for how in _HOW
        for operation in _OPERATIONS
    ]


def _send(operation: str, options: CallOptions, request: pytest.FixtureRequest) -> ApiResponse:
    client: RunpodClient = request.getfixturevalue("client")
    if operation == "health":
        return client.health(**options)
    if operation == "purge-queue":
        return client.purge_queue(**options)
    if operation == "run":
        probe_inputs: ProbeInputs = request.getfixturevalue("probe_inputs")
        ledger: JobLedger = request.getfixturevalue("ledger")
        job_input = probe_inputs.get("fast")
        if job_input is None:
            pytest.skip("--probe-inputs gives no 'fast' input to send")
        return send_budgeted(ledger, client, lambda: client.run(job_input, **options))
    completed: tuple[ApiResponse, ApiResponse] = request.getfixturevalue("completed_job")
    job_id = completed[1].job_id or ""
    if operation == "retry":
        ledger = request.getfixturevalue("ledger")
        return send_budgeted(ledger, client, lambda: client.retry(job_id, **options))
    return client.request(operation, job_id=job_id, **options)


@pytest.mark.parametrize(("operation", "how"), _cases())
def test_a_request_without_a_valid_key_is_refused_with_401(
    operation: str,
    how: str,
    client: RunpodClient,
    request: pytest.FixtureRequest,
    contract: ContractChecks,
) -> None:
    """every operation: no key, or a wrong one, is answered 401 and does nothing."""
    suite: SuiteSettings = request.getfixturevalue("suite")
    if operation == "purge-queue" and not suite.allow_destructive:
        pytest.skip(
            "an endpoint that ignored the key would purge its queue: "
            "pass --allow-destructive to try /purge-queue"
        )
    options: CallOptions = (
        {"authenticate": False} if how == "no-key" else {"headers": wrong_key_headers(client)}
    )
    # A 429 here would be retried with the wrong key again; there is no reason to.
    options["retry_429"] = False
    answer = _send(operation, options, request)
    rule = f"{operation}: {how}-401"
    if answer.ok:
        fail(f"{rule}: a request {_HOW[how]} was let through: {answer.describe()}")
    check(answer.status_code == 401, f"{rule}: {answer.describe('expected 401 Unauthorized')}")
    note_error_body(contract, answer)
