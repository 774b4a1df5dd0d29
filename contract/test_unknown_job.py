"""A job id the endpoint never issued (docs/operations/status.md#unknown-job-404): /status answers
404; /stream refuses it too (404 expected; another 4xx is undocumented drift, a 2xx claims a job
that does not exist and breaks the contract). /cancel and /retry are checked the same way in
their own modules, where their route is also seen answering a job that exists."""

from __future__ import annotations

import pytest

from runpod_testkit.client import RunpodClient
from runpod_testkit.suite.plugin import ContractChecks

from ._support import unknown_job_refused

DOC = "docs/operations/{}.md#unknown-job-404"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(
            name, marks=pytest.mark.contract(name, "unknown-job-404", ref=DOC.format(name)), id=name
        )
        for name in ("status", "stream")
    ],
)
def test_an_unknown_job_is_not_found(
    operation: str, client: RunpodClient, contract: ContractChecks
) -> None:
    """status/stream: an id no job has is answered 404 (status: exactly)."""
    unknown_job_refused(client, contract, operation)
