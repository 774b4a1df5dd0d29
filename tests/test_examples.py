"""The handlers in examples/ run as real worker processes (`--worker`) and do what their
probe-inputs files promise: each role's input ends as the README's "Test your own handler" says.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.emulator.server import running_emulator
from tests.polling import wait_until
from tests.test_emulator_workers import (
    AUTH,
    START_TIMEOUT_S,
    health,
    run_sync,
    submit,
    wait_for_status,
    worker_processes,
)

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parent.parent / "examples"
NAMES = ("plain", "streaming", "concurrent", "failing")


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    yield
    prefix = f"{os.getpid()}-"
    wait_until(lambda: not worker_processes(prefix), 10, "every worker process to be gone")


def probe_inputs(name: str) -> dict[str, Any]:
    inputs: dict[str, Any] = json.loads((EXAMPLES / name / "probe-inputs.json").read_text())
    return inputs


@contextmanager
def example_endpoint(name: str) -> Iterator[tuple[httpx.Client, str]]:
    """One warm worker running examples/NAME/handler.py, and a client for its endpoint URL."""
    command = shlex.join([sys.executable, str(EXAMPLES / name / "handler.py")])
    config = EmulatorConfig(workers_min=1, workers_max=1, cold_start_ms=0, idle_timeout_s=60.0)
    with running_emulator(config, worker=command) as emu, httpx.Client(timeout=90) as client:
        url = emu.endpoint_url("examples")
        wait_until(lambda: health(client, url)["idle"] == 1, START_TIMEOUT_S, "a warm worker")
        yield client, url


def test_every_example_has_a_handler_and_the_roles_the_suite_knows() -> None:
    for name in NAMES:
        assert (EXAMPLES / name / "handler.py").is_file()
        roles = set(probe_inputs(name))
        assert roles <= {"fast", "slow", "stream", "fail"}, name
        assert {"fast", "fail"} <= roles, name


def test_the_plain_example_answers_and_refuses() -> None:
    inputs = probe_inputs("plain")
    with example_endpoint("plain") as (client, url):
        done = run_sync(client, url, inputs["fast"])
        assert done["status"] == "COMPLETED"
        assert done["output"] == {"words": 4, "longest": "quick"}
        failed = run_sync(client, url, inputs["fail"])
        assert failed["status"] == "FAILED"
        assert failed["error"] == "input.text must be a non-empty string"


def test_the_streaming_example_streams_each_token_once_then_the_list() -> None:
    inputs = probe_inputs("streaming")
    expected = [{"index": i, "token": t} for i, t in enumerate(["one", "two", "three"])]
    with example_endpoint("streaming") as (client, url):
        job_id = submit(client, url, inputs["stream"])
        streamed: list[Any] = []
        ended: dict[str, Any] = {}

        def drained() -> bool:
            body = client.get(f"{url}/stream/{job_id}", headers=AUTH).json()
            streamed.extend(item["output"] for item in body.get("stream", []))
            ended.update(body)
            return body["status"] == "COMPLETED" and not body.get("stream")

        wait_until(drained, START_TIMEOUT_S, f"job {job_id} to stream to its end")
        assert streamed == expected
        assert wait_for_status(client, url, job_id, "COMPLETED")["output"] == expected
        failed = run_sync(client, url, inputs["fail"])
        assert failed["status"] == "FAILED"
        assert failed["error"] == "input.tokens must be >= 0"


def test_the_concurrent_example_runs_four_jobs_on_one_worker() -> None:
    inputs = probe_inputs("concurrent")
    with example_endpoint("concurrent") as (client, url):
        jobs = [submit(client, url, {"sleep_s": 3}) for _ in range(4)]

        def all_running() -> bool:
            counts = client.get(f"{url}/health", headers=AUTH).json()
            return bool(counts["jobs"]["inProgress"] == 4 and counts["workers"]["running"] == 1)

        wait_until(all_running, START_TIMEOUT_S, "four jobs in progress on the one worker")
        for job_id in jobs:
            assert wait_for_status(client, url, job_id, "COMPLETED")["output"]["job"] == job_id
        failed = run_sync(client, url, inputs["fail"])
        assert failed["status"] == "FAILED"
        assert "input.sleep_s must be >= 0" in failed["error"]


def test_the_failing_example_fails_by_error_and_by_exception() -> None:
    inputs = probe_inputs("failing")
    with example_endpoint("failing") as (client, url):
        assert run_sync(client, url, inputs["fast"])["output"] == {"ok": True}
        refused = run_sync(client, url, inputs["fail"])
        assert refused["status"] == "FAILED"
        assert refused["error"] == "the handler refused this input"
        crashed = run_sync(client, url, {"mode": "raise"})
        assert crashed["status"] == "FAILED"
        assert "the handler crashed on purpose" in crashed["error"]
