"""The official runpod Python SDK (`runpod.Endpoint`) end to end against the emulator over real
HTTP: run then status and output, run_sync, stream, cancel, health, purge_queue.

The SDK reads `runpod.endpoint_url_base` and `runpod.api_key` when an Endpoint is built; the `sdk`
fixture points them at the emulator and restores them afterwards. Rate limits stay off (the SDK
retries a 429 for 30 s). `Job.stream()` sleeps 1 s before each poll and never ends on CANCELLED,
so it streams only short jobs that complete, and runs under a bounded join.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import requests
import runpod
from runpod.endpoint.runner import Job

from runpod_testkit.emulator.server import RunningEmulator
from runpod_testkit.operations import JobStatus, operation
from runpod_testkit.probe_protocol import ProbeInput

T = TypeVar("T")
LONG_MS = 60_000


@pytest.fixture
def sdk_settings() -> Iterator[Callable[[str, str], None]]:
    """Point the SDK's module-level settings somewhere for one test; restored afterwards."""
    saved = (runpod.endpoint_url_base, runpod.api_key)

    def point(base_url: str, api_key: str) -> None:
        runpod.endpoint_url_base = base_url
        runpod.api_key = api_key

    try:
        yield point
    finally:
        runpod.endpoint_url_base, runpod.api_key = saved


@pytest.fixture
def endpoint(
    emulator: RunningEmulator,
    endpoint_id: str,
    api_key: str,
    sdk_settings: Callable[[str, str], None],
) -> runpod.Endpoint:
    sdk_settings(emulator.base_url, api_key)
    return runpod.Endpoint(endpoint_id)


def in_thread(work: Callable[[], T], timeout_s: float) -> T:
    """Run `work` on a daemon thread and fail if it does not return within `timeout_s` (the
    SDK's own loops have no deadline)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"the SDK call did not return within {timeout_s} s"
    if errors:
        raise errors[0]
    return results[0]


def wait_for_status(job: Job, wanted: str, timeout_s: float = 5.0) -> None:
    """Poll `job.status()` (the SDK's own request) until it reports `wanted`; bounded."""
    deadline = time.monotonic() + timeout_s
    while (seen := job.status()) != wanted:
        assert time.monotonic() < deadline, f"job stayed {seen}, expected {wanted}"
        time.sleep(0.01)  # the polling interval; the deadline bounds the wait


def settle(emulator: RunningEmulator, endpoint_id: str, job_id: str, api_key: str) -> str:
    """Hold on /status-sync (event-driven, bounded) until the job ends; its final status."""
    url = emulator.endpoint_url(endpoint_id) + operation("status-sync").path_for(job_id)
    answer = httpx.get(url, params={"wait": 5_000}, headers={"authorization": api_key}, timeout=10)
    final = str(answer.json()["status"])
    assert final in JobStatus.TERMINAL
    return final


def output_of(probe: dict[str, Any]) -> Any:
    return ProbeInput.parse(probe).final_output()


def test_run_then_status_and_output(
    endpoint: runpod.Endpoint, emulator: RunningEmulator, endpoint_id: str, api_key: str
) -> None:
    probe = {"sleep_ms": 30, "echo": {"text": "sdk ✓", "n": [1, 2.5, None]}}
    job = endpoint.run({"input": probe})
    assert job.job_id[-3:] in ("-u1", "-u2", "-e1", "-e2")  # production's suffixes
    assert job.status() in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS, JobStatus.COMPLETED)
    assert settle(emulator, endpoint_id, job.job_id, api_key) == JobStatus.COMPLETED
    assert job.status() == JobStatus.COMPLETED
    assert job.output() == output_of(probe)


def test_output_with_a_timeout_polls_until_done(endpoint: runpod.Endpoint) -> None:
    probe = {"echo": "quick"}
    job = endpoint.run({"input": probe})
    assert in_thread(lambda: job.output(timeout=10), timeout_s=15) == output_of(probe)


def test_run_wraps_an_input_without_the_input_key(endpoint: runpod.Endpoint) -> None:
    probe = {"echo": "wrapped by the SDK"}
    assert endpoint.run_sync(probe, timeout=10) == output_of(probe)


def test_run_sync_returns_the_output(endpoint: runpod.Endpoint) -> None:
    probe = {"sleep_ms": 30, "echo": ["run", "sync"]}
    assert endpoint.run_sync({"input": probe}, timeout=10) == output_of(probe)


def test_run_sync_of_a_failing_job_returns_no_output(endpoint: runpod.Endpoint) -> None:
    # The SDK returns `output` for FAILED too, and never reads `error` (notes section 11).
    assert endpoint.run_sync({"input": {"fail": "handler raised"}}, timeout=10) is None


def test_stream_yields_each_chunk_once(endpoint: runpod.Endpoint) -> None:
    probe = {"chunks": 3, "chunk_interval_ms": 20}
    job = endpoint.run({"input": probe})
    plan = ProbeInput.parse(probe)
    streamed = in_thread(lambda: list(job.stream()), timeout_s=10)
    assert streamed == [plan.yielded(index) for index in range(plan.yield_count)]
    assert job.status() == JobStatus.COMPLETED


def test_cancel_stops_a_running_job(endpoint: runpod.Endpoint) -> None:
    job = endpoint.run({"input": {"sleep_ms": LONG_MS}})
    wait_for_status(job, JobStatus.IN_PROGRESS)
    # A running job's cancel carries its timings, as production's does (captured 2026-09).
    answer = job.cancel()
    assert sorted(answer) == ["delayTime", "executionTime", "id", "status"]
    assert (answer["id"], answer["status"]) == (job.job_id, JobStatus.CANCELLED)
    assert job.status() == JobStatus.CANCELLED


def test_health_counts_the_endpoint_jobs(endpoint: runpod.Endpoint) -> None:
    before = endpoint.health()
    assert before["jobs"]["completed"] == 0
    endpoint.run_sync({"input": {}}, timeout=10)
    after = endpoint.health()
    assert after["jobs"]["completed"] == 1
    assert after["workers"]["idle"] + after["workers"]["running"] == 1


def test_purge_queue_removes_the_queued_jobs(endpoint: runpod.Endpoint) -> None:
    running = endpoint.run({"input": {"sleep_ms": LONG_MS}})
    queued = [endpoint.run({"input": {"echo": index}}) for index in range(2)]
    wait_for_status(running, JobStatus.IN_PROGRESS)
    assert endpoint.purge_queue() == {"removed": 2, "status": "completed"}
    for job in queued:
        assert job.status() in JobStatus.TERMINAL
    assert running.status() == JobStatus.IN_PROGRESS
    running.cancel()


def test_an_unknown_job_raises_http_404(endpoint: runpod.Endpoint) -> None:
    job = Job(endpoint.endpoint_id, "no-such-job-u1", endpoint.rp_client)
    with pytest.raises(requests.HTTPError, match="404"):
        job.status()


def test_a_wrong_key_raises_unauthorized(
    start_emulator: Callable[..., RunningEmulator],
    endpoint_id: str,
    sdk_settings: Callable[[str, str], None],
) -> None:
    key = "rpa_SDK_RIGHT_KEY_1b2c"
    running = start_emulator(api_key=key)
    sdk_settings(running.base_url, "rpa_SDK_WRONG_KEY")
    with pytest.raises(RuntimeError, match="401") as raised:
        runpod.Endpoint(endpoint_id).health()
    assert key not in str(raised.value)
    sdk_settings(running.base_url, key)
    assert runpod.Endpoint(endpoint_id).health()["jobs"]["inQueue"] == 0
