"""/purge-queue: remove every queued job (docs/operations/purge-queue.md):
the answer {"removed": n, "status": ...}; queued jobs are removed and
never run; a job already running goes on to its end.

Destructive: on a live endpoint it removes other people's queued jobs too, so it runs only with
--allow-destructive (always on the suite's own emulator, on an endpoint id of its own)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks, SuiteSettings
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

from ._support import (
    check,
    fail,
    pause,
    poll_until,
    probe_plan,
    require_ok,
    shape,
    state_of,
    submit_job,
)

DOC = "docs/operations/purge-queue.md"
_QUEUED_JOBS = 2
# A job that ran has one of these states; a removed one never shows them.
_RAN = frozenset({JobStatus.IN_PROGRESS, "RUNNING", JobStatus.COMPLETED, JobStatus.FAILED})


@dataclass
class PurgeRun:
    answer: ApiResponse
    running_id: str
    running_after: ApiResponse
    """/status of the running job right after the purge."""
    running_final: ApiResponse
    """/status of the running job once it ended."""
    queued_before: dict[str, ApiResponse] = field(default_factory=dict)
    """/status of each would-be-queued job just before the purge."""
    queued_after: dict[str, ApiResponse] = field(default_factory=dict)
    """... right after the purge."""
    queued_later: dict[str, ApiResponse] = field(default_factory=dict)
    """... once the running job had ended and a free worker could have taken them."""

    @property
    def were_queued(self) -> list[str]:
        """The suite's jobs still IN_QUEUE just before the purge went out."""
        return [
            job_id
            for job_id, reply in self.queued_before.items()
            if reply.status == JobStatus.IN_QUEUE
        ]


def _submit(client: RunpodClient, ledger: JobLedger, job_input: dict[str, Any]) -> str:
    return submit_job(ledger, client, job_input).job_id or ""


@pytest.fixture(scope="module")
def purge_run(
    suite: SuiteSettings, target: SuiteTarget, ledger: JobLedger, probe_inputs: ProbeInputs
) -> PurgeRun:
    """On an endpoint of its own: a slow job seen running, two fast jobs queued behind it
    (its only worker is busy), the purge, then the running job followed to its end."""
    if not suite.allow_destructive:
        pytest.skip(
            "/purge-queue removes every queued job of the endpoint, other people's too: "
            "pass --allow-destructive to run it"
        )
    slow, fast = probe_inputs.get("slow"), probe_inputs.get("fast")
    if slow is None or fast is None:
        pytest.skip("--probe-inputs needs 'slow' and 'fast' inputs to check /purge-queue")
    client = target.client(target.fresh_endpoint_url("purge"))
    running_id = _submit(client, ledger, slow)
    seen, started = poll_until(
        target,
        lambda: client.status(running_id),
        lambda reply: not reply.ok or reply.status != JobStatus.IN_QUEUE,
    )
    if not (started and seen.status in (JobStatus.IN_PROGRESS, "RUNNING")):
        pytest.skip(
            f"the slow job was never seen running (last {seen.status}, HTTP "
            f"{seen.status_code}) within --job-timeout, so nothing could run beside a purge"
        )
    queued_ids = [_submit(client, ledger, fast) for _ in range(_QUEUED_JOBS)]
    before = {job_id: client.status(job_id) for job_id in queued_ids}
    answer = client.purge_queue()
    run = PurgeRun(
        answer,
        running_id,
        running_after=client.status(running_id),
        running_final=seen,
        queued_before=before,
        queued_after={job_id: client.status(job_id) for job_id in queued_ids},
    )
    final, _ = poll_until(target, lambda: client.status(running_id), lambda r: r.is_terminal)
    run.running_final = ledger.observe(final)
    plan = probe_plan(probe_inputs, fast)
    pause(target, target.poll_interval_s + (plan.duration_ms / 1000 if plan else 1.0))
    for job_id in queued_ids:
        run.queued_later[job_id] = ledger.observe(client.status(job_id))
    return run


@pytest.mark.contract("purge-queue", "shape", ref=f"{DOC}#shape")
def test_purge_answers_the_number_removed(purge_run: PurgeRun, contract: ContractChecks) -> None:
    """purge-queue: 200 JSON {"removed": integer >= 0, "status": string}."""
    shape(contract, purge_run.answer, "purge-queue: shape")


@pytest.mark.contract("purge-queue", "removes-queued", ref=f"{DOC}#removes-queued")
def test_purge_removes_the_queued_jobs(
    purge_run: PurgeRun, target: SuiteTarget, contract: ContractChecks
) -> None:
    """purge-queue: a job queued when the purge went out leaves the queue and never runs;
    `removed` counts it (exactly, on an endpoint nobody else uses)."""
    body = shape(contract, purge_run.answer, "purge-queue: removes-queued")
    were_queued = purge_run.were_queued
    if not were_queued:
        pytest.skip("a worker took the suite's jobs before the purge: none was left queued")
    rule = "purge-queue: removes-queued"
    removed_ours = 0
    for job_id in were_queued:
        after, later = purge_run.queued_after[job_id], purge_run.queued_later[job_id]
        check(
            after.status != JobStatus.IN_QUEUE,
            f"{rule}: job {job_id!r} is still IN_QUEUE after the purge",
        )
        ran = after.status in _RAN or later.status in _RAN
        if ran and target.private:
            fail(f"{rule}: job {job_id!r} was queued at the purge, yet ran ({later.status})")
        if ran:
            continue  # a live worker took it between the last read and the purge
        removed_ours += 1
        if later.status != JobStatus.CANCELLED:
            # What a purged job reads as is undocumented.
            shown = later.status or f"HTTP {later.status_code}"
            contract.drift("purge-queue", [f"a purged job reads {shown}"])
    removed = body["removed"]
    if target.private:
        check(
            removed == removed_ours,
            f"{rule}: removed {removed}, but {removed_ours} job(s) were queued",
        )
    else:
        check(
            removed >= removed_ours,
            f"{rule}: removed {removed}, but the suite's {removed_ours} queued job(s) left",
        )


@pytest.mark.contract("purge-queue", "spares-running", ref=f"{DOC}#spares-running")
def test_purge_leaves_a_running_job_alone(purge_run: PurgeRun) -> None:
    """purge-queue: a job already running is not touched: it goes on to COMPLETED."""
    rule = "purge-queue: spares-running"
    after = purge_run.running_after
    require_ok(after, f"{rule}: /status of the running job after the purge")
    check(
        after.status in (JobStatus.IN_PROGRESS, "RUNNING", JobStatus.COMPLETED),
        f"{rule}: the running job reads {state_of(after)} right after the purge",
    )
    final = purge_run.running_final
    check(
        final.status == JobStatus.COMPLETED,
        f"{rule}: the job running during the purge ended {state_of(final)}, expected COMPLETED",
    )
