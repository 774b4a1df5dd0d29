from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from runpod_testkit import probe as probe_module
from runpod_testkit.operations import operation
from runpod_testkit.probe import WORKER_CONFIG, completed_output, handler, main
from runpod_testkit.probe_protocol import ProbeInput
from tests.devserver import DevServerError, _local_environment, running_devserver

JOB_ID = "job-1"
HTTP_TIMEOUT = 10.0


def run_handler(job_input: Any) -> list[Any]:
    """Every value the handler yields for one job."""

    async def collect() -> list[Any]:
        return [value async for value in handler({"id": JOB_ID, "input": job_input})]

    return asyncio.run(collect())


@pytest.fixture
def deadlines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the handler's waits with a record of when it would wake, in ms after pickup."""
    recorded: list[int] = []

    async def record(picked_up: float, offset_ms: int) -> None:
        recorded.append(offset_ms)

    monkeypatch.setattr(probe_module, "_wait_until", record)
    return recorded


# --- the handler, driven directly ------------------------------------------------------------


def test_runpod_sees_an_async_generator_handler() -> None:
    from runpod.serverless.modules.rp_handler import is_generator

    assert is_generator(handler)
    assert WORKER_CONFIG["return_aggregate_stream"] is True


def test_default_input_yields_the_echo_once(deadlines: list[int]) -> None:
    assert run_handler({}) == [{"echo": None}]
    assert deadlines == [0]


def test_echo_and_padding(deadlines: list[int]) -> None:
    yielded = run_handler({"echo": {"k": [1, "two"]}, "output_bytes": 16, "sleep_ms": 30})

    assert yielded == [{"echo": {"k": [1, "two"]}, "padding": "x" * 16}]
    assert deadlines == [30]


def test_chunks_are_yielded_at_their_offsets(deadlines: list[int]) -> None:
    yielded = run_handler({"sleep_ms": 50, "chunks": 4, "chunk_interval_ms": 20, "echo": "x"})

    assert yielded == [{"index": 0}, {"index": 1}, {"index": 2}, {"index": 3}]
    assert deadlines == [50, 70, 90, 110]


def test_fail_yields_the_message_after_the_sleep(deadlines: list[int]) -> None:
    assert run_handler({"fail": "boom", "sleep_ms": 40, "chunks": 3}) == [{"error": "boom"}]
    assert deadlines == [40]


@pytest.mark.parametrize(
    ("job_input", "message_part"),
    [
        ({"sleep_ms": "soon"}, "'sleep_ms' must be an integer"),
        ({"chunks": -1}, "'chunks' must be from 0"),
        ({"fail": 7}, "'fail' must be a non-empty string or null"),
        ({"fail": ""}, "'fail' must be a non-empty string or null"),
        ("not an object", "must be a JSON object, got str"),
    ],
)
def test_bad_input_yields_an_error_at_once(
    deadlines: list[int], job_input: Any, message_part: str
) -> None:
    yielded = run_handler(job_input)

    assert len(yielded) == 1
    assert message_part in yielded[0]["error"]
    assert deadlines == []


def test_a_job_without_input_is_bad_input() -> None:
    async def collect() -> list[Any]:
        return [value async for value in handler({"id": JOB_ID})]

    assert asyncio.run(collect()) == [{"error": "probe input must be a JSON object, got NoneType"}]


@pytest.mark.parametrize(
    "probe",
    [ProbeInput(), ProbeInput(echo=[1], output_bytes=3), ProbeInput(chunks=3, sleep_ms=1)],
    ids=["default", "padded", "streaming"],
)
def test_completed_output_is_what_the_handler_yields(
    deadlines: list[int], probe: ProbeInput
) -> None:
    assert completed_output(probe) == run_handler(probe.to_input())


def test_completed_output_shapes() -> None:
    assert completed_output(ProbeInput(echo="e")) == [{"echo": "e"}]
    assert completed_output(ProbeInput(chunks=2)) == ProbeInput(chunks=2).final_output()


def test_sleeps_really_wait_and_do_not_block_the_event_loop() -> None:
    job = {"id": JOB_ID, "input": {"sleep_ms": 200, "chunks": 2, "chunk_interval_ms": 50}}

    async def yield_times(started: float) -> list[float]:
        return [time.monotonic() - started async for _ in handler(job)]

    async def three_at_once() -> list[list[float]]:
        started = time.monotonic()
        return list(await asyncio.gather(*(yield_times(started) for _ in range(3))))

    for times in asyncio.run(asyncio.wait_for(three_at_once(), timeout=5)):
        assert times[0] >= 0.195
        assert times[1] >= 0.245
        # Three 0.25 s jobs sharing one event loop end together (0.75 s if sleeps blocked it).
        assert times[1] < 0.6


# --- the production worker path (runpod's own handle_job, transport replaced) ----------------


def run_in_worker(
    monkeypatch: pytest.MonkeyPatch, job_input: Any
) -> tuple[list[Any], dict[str, Any], bool]:
    """Run one job through runpod's worker code; return (stream posts, job-done body, is_stream)."""
    from runpod.serverless.modules import rp_job

    streamed: list[Any] = []
    done: list[tuple[dict[str, Any], bool]] = []

    async def stream_result(session: object, job_data: Any, job: dict[str, Any]) -> None:
        streamed.append(job_data)

    async def send_result(
        session: object, job_data: dict[str, Any], job: dict[str, Any], is_stream: bool = False
    ) -> None:
        done.append((job_data, is_stream))

    monkeypatch.setattr(rp_job, "stream_result", stream_result)
    monkeypatch.setattr(rp_job, "send_result", send_result)
    job = {"id": JOB_ID, "input": job_input}
    asyncio.run(asyncio.wait_for(rp_job.handle_job(None, dict(WORKER_CONFIG), job), timeout=5))
    assert len(done) == 1
    return streamed, done[0][0], done[0][1]


def test_worker_reports_the_echo_as_a_one_element_list(monkeypatch: pytest.MonkeyPatch) -> None:
    streamed, result, is_stream = run_in_worker(monkeypatch, {"echo": "hi", "output_bytes": 2})

    assert streamed == [{"output": {"echo": "hi", "padding": "xx"}}]
    assert result == {"output": [{"echo": "hi", "padding": "xx"}]}
    assert is_stream


def test_worker_streams_and_aggregates_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    streamed, result, _ = run_in_worker(monkeypatch, {"chunks": 3, "chunk_interval_ms": 1})

    assert streamed == [{"output": {"index": i}} for i in range(3)]
    assert result == {"output": [{"index": 0}, {"index": 1}, {"index": 2}]}


def test_worker_fails_the_job_with_exactly_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    streamed, result, _ = run_in_worker(monkeypatch, {"fail": "boom", "chunks": 2})

    assert streamed == []
    assert result == {"error": "boom"}


def test_worker_fails_bad_input_with_the_parse_message(monkeypatch: pytest.MonkeyPatch) -> None:
    streamed, result, _ = run_in_worker(monkeypatch, {"output_bytes": "lots"})

    assert streamed == []
    assert result == {"error": "probe input 'output_bytes' must be an integer, got 'lots'"}


# --- main() --------------------------------------------------------------------------------


def test_main_starts_runpod_with_the_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, Any]] = []
    fake_runpod = SimpleNamespace(serverless=SimpleNamespace(start=started.append))
    monkeypatch.setitem(sys.modules, "runpod", fake_runpod)

    main()

    assert started == [{"handler": handler, "return_aggregate_stream": True}]


def test_main_without_runpod_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "runpod", None)

    with pytest.raises(SystemExit, match=r"pip install \"runpod-testkit\[probe\]\""):
        main()


# --- end to end on runpod-python's dev server ----------------------------------------------


def test_devserver_gets_no_runpod_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "must-not-leak")
    monkeypatch.setenv("RUNPOD_WEBHOOK_GET_JOB", "http://example.invalid/job-take")

    env = _local_environment()

    assert not [name for name in env if name.startswith("RUNPOD_")]


@pytest.fixture(scope="module")
def devserver() -> Iterator[httpx.Client]:
    with (
        running_devserver() as base_url,
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as client,
    ):
        yield client


def runsync(client: httpx.Client, job_input: dict[str, Any]) -> dict[str, Any]:
    response = client.post(operation("runsync").path_for(), json={"input": job_input})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["id"].startswith("test-")
    return body


@pytest.mark.slow
def test_devserver_runsync_echo(devserver: httpx.Client) -> None:
    body = runsync(devserver, {"echo": {"a": [1, None]}, "sleep_ms": 10})

    assert body["status"] == "COMPLETED"
    assert body["output"] == [{"echo": {"a": [1, None]}}]


@pytest.mark.slow
def test_devserver_runsync_padding(devserver: httpx.Client) -> None:
    body = runsync(devserver, {"echo": "e", "output_bytes": 1000})

    assert body["output"] == [{"echo": "e", "padding": "x" * 1000}]


@pytest.mark.slow
def test_devserver_reports_a_failing_probe_as_completed(devserver: httpx.Client) -> None:
    # The dev server ignores `error` in yielded dicts (notes section 10, item 13); a deployed
    # worker reports FAILED with this message (test_worker_fails_the_job_with_exactly_the_message).
    body = runsync(devserver, {"fail": "boom", "sleep_ms": 10})

    assert body["status"] == "COMPLETED"
    assert body["output"] == [{"error": "boom"}]


@pytest.mark.slow
def test_devserver_bad_input(devserver: httpx.Client) -> None:
    body = runsync(devserver, {"chunks": 10**9})

    assert body["output"] == [
        {"error": "probe input 'chunks' must be from 0 to 100000, got 1000000000"}
    ]


@pytest.mark.slow
def test_devserver_streams_chunks(devserver: httpx.Client) -> None:
    job_input = {"chunks": 3, "chunk_interval_ms": 20, "sleep_ms": 10}
    submitted = devserver.post(operation("run").path_for(), json={"input": job_input})
    job_id = submitted.json()["id"]

    # The dev server's /stream is POST-only and runs the whole job at once.
    streamed = devserver.post(operation("stream").path_for(job_id))

    assert streamed.status_code == 200
    assert streamed.json() == {
        "id": job_id,
        "status": "COMPLETED",
        "stream": [{"output": {"index": i}} for i in range(3)],
    }
    assert runsync(devserver, job_input)["output"] == [{"index": i} for i in range(3)]


@pytest.mark.slow
def test_devserver_is_stopped_on_exit() -> None:
    with running_devserver() as base_url:
        assert httpx.get(f"{base_url}/openapi.json", timeout=HTTP_TIMEOUT).status_code == 200

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/openapi.json", timeout=HTTP_TIMEOUT)


@pytest.mark.slow
def test_devserver_that_cannot_start_says_why() -> None:
    with (
        pytest.raises(DevServerError, match=r"(?s)exited with status 1:.*No module named"),
        running_devserver("runpod_testkit.no_such_module"),
    ):
        pytest.fail("the context must not be entered")
