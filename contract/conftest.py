"""Jobs shared between checks, so that a live run submits as few (paid) jobs as it can.

Each shared job is followed once from submission to its end (a `JobTrace`: every answer, in
order) and then only read by the checks that use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

from ._support import (
    RUNSYNC_DEFAULT_WAIT_MS,
    RUNSYNC_SHORT_WAIT_MS,
    JobTrace,
    redact_with,
    submit_traced,
)


@pytest.fixture(scope="session", autouse=True)
def _failures_never_show_the_key(client: RunpodClient) -> Iterator[None]:
    with redact_with(client.redact):
        yield


def _role_input(probe_inputs: ProbeInputs, role: str) -> dict[str, Any]:
    job_input = probe_inputs.get(role)
    if job_input is None:
        pytest.skip(f"--probe-inputs gives no {role!r} input, so this check cannot run")
    return job_input


@pytest.fixture(scope="session")
def completed_trace(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: ProbeInputs
) -> JobTrace:
    """A fast job submitted with /run and followed to its end."""
    return submit_traced(client, ledger, target, _role_input(probe_inputs, "fast"))


@pytest.fixture(scope="session")
def completed_job(completed_trace: JobTrace) -> tuple[ApiResponse, ApiResponse]:
    """A fast job run to its end: (the /run answer, the terminal /status answer)."""
    return completed_trace.first, completed_trace.final


@pytest.fixture(scope="session")
def failed_trace(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: ProbeInputs
) -> JobTrace:
    """A job that fails, submitted with /run and followed to its end."""
    return submit_traced(client, ledger, target, _role_input(probe_inputs, "fail"))


@pytest.fixture(scope="session")
def failed_job(failed_trace: JobTrace) -> tuple[ApiResponse, ApiResponse]:
    """A job that fails: (the /run answer, the terminal /status answer)."""
    return failed_trace.first, failed_trace.final


@pytest.fixture(scope="session")
def runsync_fast_trace(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: ProbeInputs
) -> JobTrace:
    """A fast job submitted with /runsync and a ?wait long enough for it (the default 90 s,
    shortened to --job-timeout); followed with /status if the answer was not terminal."""
    wait_ms = max(
        RUNSYNC_SHORT_WAIT_MS, min(RUNSYNC_DEFAULT_WAIT_MS, int(target.job_timeout_s * 1000))
    )
    return submit_traced(
        client, ledger, target, _role_input(probe_inputs, "fast"), sync=True, wait_ms=wait_ms
    )


@pytest.fixture(scope="session")
def runsync_slow_trace(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: ProbeInputs
) -> JobTrace:
    """A slow job submitted with /runsync?wait=1000, so that the wait runs out first; the
    answer is kept as it came (`first`), then the job is followed with /status to its end."""
    return submit_traced(
        client,
        ledger,
        target,
        _role_input(probe_inputs, "slow"),
        sync=True,
        wait_ms=RUNSYNC_SHORT_WAIT_MS,
    )
