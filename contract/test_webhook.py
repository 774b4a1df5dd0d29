"""Webhooks (docs/webhooks.md): a job submitted with `"webhook": URL`
is POSTed to URL when it ends; "Your webhook should return a 200 status code. If the call fails,
Runpod retries up to 2 more times with a 10-second delay." The envelope is the job object plus
the request's input and webhook (a production capture, docs/webhooks.md#shape).

The suite runs its own receiver (mock and emulator mode); live mode needs --webhook-url and
--webhook-listen, and skips these checks without them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget
from runpod_testkit.suite.webhooks import SuiteWebhooks
from runpod_testkit.webhook_receiver import Delivery

from ._support import JobTrace, check, fail, follow, refund

DOC = "docs/webhooks.md"
SCHEMA = "webhook.envelope"
MAX_ATTEMPTS = 3
"""The first POST and "up to 2 more times"."""


@dataclass
class HookedJob:
    trace: JobTrace
    url: str
    deliveries: list[Delivery]


def _submit_hooked(
    client: RunpodClient,
    ledger: JobLedger,
    target: SuiteTarget,
    webhooks: SuiteWebhooks,
    job_input: dict[str, Any],
    *,
    name: str,
    refusals: int = 0,
    expected: int = 1,
) -> HookedJob:
    """Submit a job with a webhook of its own, follow it to its end, and wait for `expected`
    deliveries (each retry is up to a delay away) plus a settle time for any extra one."""
    url = webhooks.url_for(f"{name}-{uuid.uuid4().hex[:10]}")
    if refusals:
        webhooks.receiver.refuse(url, refusals)
    started = target.now()
    answer: ApiResponse = ledger.submit(client, job_input, webhook=url)
    if not answer.ok or not answer.job_id:
        refund(ledger)
        fail(f"run: a valid job with a webhook was refused: {answer.describe()}")
    assert answer.job_id is not None
    trace = JobTrace(answer.job_id, job_input, answer, started, target.now())
    follow(client, ledger, target, trace)
    wait_s = (expected - 1) * webhooks.retry_delay_s + webhooks.settle_s() + 30.0
    webhooks.wait_for(lambda: len(webhooks.deliveries(url)) >= expected, wait_s)
    # Then watch a while for one more, which should not come.
    webhooks.wait_for(lambda: len(webhooks.deliveries(url)) > expected, webhooks.settle_s())
    return HookedJob(trace, url, webhooks.deliveries(url))


def _input(probe_inputs: ProbeInputs, role: str) -> dict[str, Any]:
    job_input = probe_inputs.get(role)
    if job_input is None:
        pytest.skip(f"--probe-inputs gives no {role!r} input, so this check cannot run")
    return job_input


@pytest.fixture(scope="session")
def hooked_completed(
    client: RunpodClient,
    ledger: JobLedger,
    target: SuiteTarget,
    webhooks: SuiteWebhooks,
    probe_inputs: ProbeInputs,
) -> HookedJob:
    return _submit_hooked(
        client, ledger, target, webhooks, _input(probe_inputs, "fast"), name="completed"
    )


@pytest.fixture(scope="session")
def hooked_failed(
    client: RunpodClient,
    ledger: JobLedger,
    target: SuiteTarget,
    webhooks: SuiteWebhooks,
    probe_inputs: ProbeInputs,
) -> HookedJob:
    return _submit_hooked(
        client, ledger, target, webhooks, _input(probe_inputs, "fail"), name="failed"
    )


def _envelope(job: HookedJob, contract: ContractChecks) -> dict[str, Any]:
    check(bool(job.deliveries), f"webhook: no POST arrived at {job.url} after the job ended")
    delivery = job.deliveries[0]
    try:
        body = delivery.json()
    except ValueError:
        fail(f"webhook: the POST body is not JSON: {delivery.body[:120]!r}")
    where = "webhook -> POST"
    result = contract.suite.validator.check(SCHEMA, body)
    contract.drift(where, result.drift)
    if result.violations:
        fail(f"{where}: {'; '.join(v.message for v in result.violations)}")
    assert isinstance(body, dict)
    return body


@pytest.mark.contract("webhook", "shape", ref=f"{DOC}#shape")
def test_the_envelope_is_the_job_object(
    hooked_completed: HookedJob, contract: ContractChecks
) -> None:
    """webhook: the POST body is the ended job's object (id, status, timings, output)."""
    body = _envelope(hooked_completed, contract)
    check(
        body.get("id") == hooked_completed.trace.job_id,
        f"webhook: shape: envelope id {body.get('id')!r} is not the job's",
    )
    if "webhook" in body:
        check(body["webhook"] == hooked_completed.url, "webhook: shape: 'webhook' is not the URL")
    if "input" in body:
        check(
            body["input"] == hooked_completed.trace.job_input,
            "webhook: shape: 'input' is not the job's input",
        )


@pytest.mark.contract("webhook", "one-delivery-per-job", ref=f"{DOC}#one-delivery-per-job")
def test_an_accepted_delivery_is_sent_once(hooked_completed: HookedJob) -> None:
    """webhook: a receiver that answers 200 gets exactly one POST for the job."""
    count = len(hooked_completed.deliveries)
    check(count == 1, f"webhook: one-delivery: {count} POSTs arrived for one job (expected 1)")


@pytest.mark.contract("webhook", "delivered-on-failure", ref=f"{DOC}#delivered-on-failure")
def test_a_failed_job_is_delivered_with_its_error(
    hooked_failed: HookedJob, contract: ContractChecks
) -> None:
    """webhook: a FAILED job is delivered too, with status FAILED and its error."""
    body = _envelope(hooked_failed, contract)
    check(
        body.get("status") == JobStatus.FAILED,
        f"webhook: delivered-on-failure: status {body.get('status')!r}, expected FAILED",
    )
    check(isinstance(body.get("error"), str), "webhook: delivered-on-failure: no error string")


@pytest.mark.contract("webhook", "agrees-with-status", ref=f"{DOC}#agrees-with-status")
def test_the_envelope_agrees_with_status(
    hooked_completed: HookedJob, hooked_failed: HookedJob, contract: ContractChecks
) -> None:
    """webhook: the envelope says what /status says of the ended job."""
    for job in (hooked_completed, hooked_failed):
        body = _envelope(job, contract)
        final = job.trace.final.json
        assert isinstance(final, dict)
        for key in ("id", "status", "output", "error", "delayTime", "executionTime"):
            check(
                body.get(key) == final.get(key),
                f"webhook: agrees-with-status: {key} is {body.get(key)!r} in the envelope "
                f"but {final.get(key)!r} in /status",
            )


@pytest.mark.contract("webhook", "retries", ref=f"{DOC}#retries")
def test_a_refused_delivery_is_retried_twice_a_delay_apart(
    client: RunpodClient,
    ledger: JobLedger,
    target: SuiteTarget,
    webhooks: SuiteWebhooks,
    probe_inputs: ProbeInputs,
) -> None:
    """webhook: a receiver that refuses twice gets exactly three POSTs, the retry delay apart."""
    job = _submit_hooked(
        client,
        ledger,
        target,
        webhooks,
        _input(probe_inputs, "fast"),
        name="retries",
        refusals=2,
        expected=MAX_ATTEMPTS,
    )
    count = len(job.deliveries)
    check(count == MAX_ATTEMPTS, f"webhook: retries: {count} POSTs arrived (expected 3)")
    delay = webhooks.retry_delay_s
    # The network and the sender's scheduling may add time, never take it away: seconds live;
    # against a local emulator, what a loaded machine delays a timer by (1.31 s for 1 s seen).
    slack_high = 0.2 * delay + (5.0 if target.mode == "live" else 0.5)
    for earlier, later in zip(job.deliveries, job.deliveries[1:], strict=False):
        gap = later.arrived_at - earlier.arrived_at
        check(
            delay - 0.2 * delay <= gap <= delay + slack_high,
            f"webhook: retries: {gap:.2f} s between attempts (expected about {delay:g} s)",
        )
    bodies = {delivery.body for delivery in job.deliveries}
    check(len(bodies) == 1, "webhook: retries: the attempts sent different bodies")
