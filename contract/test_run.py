"""/run: asynchronous submission (queue-api-reference.txt "/run"; runpod-api-notes.md §2.1)."""

from __future__ import annotations

from typing import Any

import pytest

from runpod_testkit.client import ApiResponse
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.plugin import ContractChecks

REF = "runpod-api-notes.md §2.1"


@pytest.mark.contract("run", "shape", ref=REF)
def test_run_answers_with_a_job_id_and_a_status(
    completed_job: tuple[ApiResponse, ApiResponse], contract: ContractChecks
) -> None:
    submitted, _ = completed_job
    assert submitted.status_code == 200, f"run -> HTTP {submitted.status_code}, expected 200"
    body = contract.shape(submitted)
    contract.json_content_type(submitted)
    if body["status"] != JobStatus.IN_QUEUE:
        contract.drift("run", [f"/status: production answers IN_QUEUE, got {body['status']!r}"])


@pytest.mark.contract("status", "terminal-shape", ref="runpod-api-notes.md §1.1, §2.3")
def test_completed_job_reports_timings(
    completed_job: tuple[ApiResponse, ApiResponse], contract: ContractChecks, probe_inputs: Any
) -> None:
    submitted, final = completed_job
    body = contract.shape(final)
    assert body["id"] == submitted.job_id, "status: /id differs from the id /run returned"
    assert body["status"] == JobStatus.COMPLETED, f"status: the fast job ended {body['status']}"
