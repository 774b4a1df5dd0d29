"""/run: asynchronous submission (docs/operations/run.md):
the answer's shape, distinct job ids, and 400 for bodies that break the request contract
(also checked once on /runsync, which takes the same body)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks

from ._support import (
    RUNSYNC_SHORT_WAIT_MS,
    JobTrace,
    check,
    fail,
    note_error_body,
    send_budgeted,
    shape,
)

DOC = "docs/operations/run.md"


@pytest.mark.contract("run", "shape", ref=f"{DOC}#shape")
def test_run_answers_with_a_job_id_and_a_status(
    completed_job: tuple[ApiResponse, ApiResponse], contract: ContractChecks
) -> None:
    """run: 200 with a JSON job object {id, status}; production answers IN_QUEUE."""
    submitted, _ = completed_job
    check(
        submitted.status_code == 200,
        f"run: shape: answered HTTP {submitted.status_code}, expected 200",
    )
    body = shape(contract, submitted, "run: shape")
    if body["status"] != JobStatus.IN_QUEUE:
        contract.drift("run", [f"/status: production answers IN_QUEUE, got {body['status']!r}"])


@pytest.mark.contract("run", "unique-ids", ref=f"{DOC}#unique-ids")
def test_every_job_gets_its_own_id(
    completed_trace: JobTrace, failed_trace: JobTrace, runsync_fast_trace: JobTrace
) -> None:
    """run: two submissions never share an id (whatever form the ids take)."""
    ids = [completed_trace.job_id, failed_trace.job_id, runsync_fast_trace.job_id]
    check(len(set(ids)) == len(ids), f"run: unique-ids: two jobs got the same id: {ids}")


@dataclass(frozen=True)
class BadBody:
    operation: str
    what: str
    request: dict[str, Any]
    """Keyword arguments of the client's run/runsync: `content` (raw bytes) or `body`."""


def _submit_bad_body(ledger: JobLedger, client: RunpodClient, bad: BadBody) -> ApiResponse:
    """Send a body the endpoint must refuse. It still goes through the ledger: an endpoint that
    wrongly accepts it has started a job, which is budgeted and cancelled at the end."""
    if bad.operation == "runsync":
        return send_budgeted(
            ledger, client, lambda: client.runsync(wait_ms=RUNSYNC_SHORT_WAIT_MS, **bad.request)
        )
    return send_budgeted(ledger, client, lambda: client.run(**bad.request))


def _bad(operation: str, what: str, kind: str, **request: Any) -> Any:
    return pytest.param(
        BadBody(operation, what, request),
        marks=pytest.mark.contract(
            operation, "bad-body-400", ref=f"docs/operations/{operation}.md#bad-body-400"
        ),
        id=f"{operation}-{kind}",
    )


BAD_BODIES = [
    _bad("run", "malformed JSON", "malformed-json", content=b'{"input": {"sleep_ms": 0'),
    _bad("run", "a body without `input`", "missing-input", body={"prompt": "no input key"}),
    _bad("run", "a string `input`", "non-object-input", body={"input": "not an object"}),
    _bad("runsync", "malformed JSON", "malformed-json", content=b'{"input": '),
]


@pytest.mark.parametrize("bad", BAD_BODIES)
def test_a_bad_body_is_refused_with_400(
    bad: BadBody, client: RunpodClient, ledger: JobLedger, contract: ContractChecks
) -> None:
    """run/runsync: a body that is not JSON, has no `input`, or whose `input` is not an object
    is refused with 400 and starts no job."""
    answer = _submit_bad_body(ledger, client, bad)
    rule = f"{bad.operation}: bad-body-400: {bad.what}"
    if answer.ok:
        fail(f"{rule} was accepted ({answer.describe()}); expected 400 and no job")
    check(answer.status_code == 400, f"{rule}: {answer.describe('expected 400 Bad Request')}")
    note_error_body(contract, answer)
