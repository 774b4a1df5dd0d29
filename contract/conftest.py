"""Jobs shared between checks, so that a live run submits as few (paid) jobs as it can."""

from __future__ import annotations

from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.target import SuiteTarget


def finish(client: RunpodClient, ledger: JobLedger, target: SuiteTarget, job_id: str) -> ApiResponse:
    """Poll /status until the job is terminal (bounded by --job-timeout)."""
    final = client.wait_for_terminal(
        job_id, timeout_s=target.job_timeout_s, poll_interval_s=target.poll_interval_s
    )
    return ledger.observe(final)


def submit_and_finish(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, job_input: dict[str, Any]
) -> tuple[ApiResponse, ApiResponse]:
    """(the /run answer, the terminal /status answer) of one job."""
    submitted = ledger.submit(client, job_input)
    if not (submitted.ok and submitted.job_id):
        pytest.fail(f"run -> HTTP {submitted.status_code}: no job id to follow", pytrace=False)
    return submitted, finish(client, ledger, target, submitted.job_id)


@pytest.fixture(scope="session")
def completed_job(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: Any
) -> tuple[ApiResponse, ApiResponse]:
    """A fast job run to its end: (the /run answer, the terminal /status answer)."""
    job_input = probe_inputs.get("fast")
    if job_input is None:
        pytest.skip("--probe-inputs gives no 'fast' input")
    return submit_and_finish(client, ledger, target, job_input)


@pytest.fixture(scope="session")
def failed_job(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: Any
) -> tuple[ApiResponse, ApiResponse]:
    """A job that fails: (the /run answer, the terminal /status answer)."""
    job_input = probe_inputs.get("fail")
    if job_input is None:
        pytest.skip("--probe-inputs gives no 'fail' input")
    return submit_and_finish(client, ledger, target, job_input)
