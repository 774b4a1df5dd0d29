"""A job id the endpoint never issued (docs/operations/status.md#unknown-job-404): /status answers
404; /stream, /cancel and /retry refuse it too (404 expected; another 4xx is undocumented drift,
a 2xx claims a job that does not exist and breaks the contract)."""

from __future__ import annotations

import pytest

from runpod_testkit.client import RunpodClient
from runpod_testkit.suite.plugin import ContractChecks

from ._support import check, fail, note_error_body, unknown_job_id

DOC = "docs/operations/{}.md#unknown-job-404"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(
            name, marks=pytest.mark.contract(name, "unknown-job-404", ref=DOC.format(name)), id=name
        )
        for name in ("status", "stream", "cancel", "retry")
    ],
)
def test_an_unknown_job_is_not_found(
    operation: str, client: RunpodClient, contract: ContractChecks
) -> None:
    """status/stream/cancel/retry: an id no job has is answered 404 (status: exactly)."""
    job_id = unknown_job_id()
    answer = client.request(operation, job_id=job_id)
    rule = f"{operation}: unknown-job-404"
    if answer.ok:
        fail(f"{rule}: answered as if job {job_id!r} existed: {answer.describe()}")
    if operation == "status":
        check(answer.status_code == 404, f"{rule}: {answer.describe('expected 404 Not Found')}")
    else:
        check(400 <= answer.status_code < 500, f"{rule}: {answer.describe('expected 404')}")
        if answer.status_code != 404:
            contract.drift(operation, [f"HTTP {answer.status_code} for an unknown job"])
    note_error_body(contract, answer)
