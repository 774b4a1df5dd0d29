"""The emulator over real HTTP on loopback: every rule of issue 2, bad input included.

Each test gets its own endpoint id (its own queue and worker) on a module-wide emulator; tests
that need other settings start their own. Waits are event-driven holds (/runsync, /status-sync,
/stream with `?wait=`) or polling loops bounded by a deadline. Every 200 body is checked against
its schema, every error body must be JSON with a string `error`, and after every bad request the
server must still answer /health.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import uvloop

from runpod_testkit.emulator.app import EmulatorApp
from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.emulator.server import RunningEmulator, running_emulator
from runpod_testkit.operations import OPERATIONS, POLICY_LIMITS, JobStatus, operation
from runpod_testkit.probe_protocol import ProbeInput
from runpod_testkit.schemas import ContractValidator

VALIDATOR = ContractValidator()
JOB_ID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-[ue][12]$"
)
LONG_MS = 60_000
"""A job that outlives any test: it holds its endpoint's only worker until cancelled."""


# --- helpers ----------------------------------------------------------------------------------


class ShiftableClock:
    """The wall clock (epoch seconds) plus an offset the test moves forward: crosses a 10-second
    policy.ttl at once while everything else still runs in real time over real HTTP."""

    def __init__(self) -> None:
        self._epoch0 = time.time()
        self._mono0 = time.monotonic()
        self.offset = 0.0

    def __call__(self) -> float:
        return self._epoch0 + (time.monotonic() - self._mono0) + self.offset

    def shift(self, seconds: float) -> None:
        assert seconds >= 0, "the clock never goes back"
        self.offset += seconds


def path(name: str, job_id: str | None = None, **query: Any) -> str:
    """The operation's path below the endpoint URL, from the operations table."""
    below = operation(name).path_for(job_id)
    return below + ("?" + urlencode(query) if query else "")


def keyword(name: str, value: Any) -> dict[str, Any]:
    """One keyword argument with a computed name: `call(..., **keyword(param, value))`."""
    return {name: value}


def call(
    api: httpx.Client,
    name: str,
    job_id: str | None = None,
    *,
    method: str | None = None,
    body: Any = None,
    **query: Any,
) -> httpx.Response:
    method = method or operation(name).method
    content = None if body is None else json.dumps(body).encode()
    return api.request(method, path(name, job_id, **query), content=content)


def ok(name: str, response: httpx.Response) -> dict[str, Any]:
    """A 200 whose body keeps operation `name`'s response schema."""
    assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    result = VALIDATOR.check_response(name, 200, body)
    assert result.ok, str(result)
    assert isinstance(body, dict)
    return body


def submit(api: httpx.Client, **probe: Any) -> str:
    body = ok("run", call(api, "run", body={"input": probe}))
    assert body["status"] == JobStatus.IN_QUEUE
    return str(body["id"])


def status(api: httpx.Client, job_id: str, **query: Any) -> dict[str, Any]:
    return ok("status", call(api, "status", job_id, **query))


def settle(api: httpx.Client, job_id: str, wait_ms: int = 5_000) -> dict[str, Any]:
    """The job once terminal: /status-sync holds until it ends (bounded by `wait_ms`)."""
    body = ok("status-sync", call(api, "status-sync", job_id, wait=wait_ms))
    assert body["status"] in JobStatus.TERMINAL, body
    return body


def poll(
    api: httpx.Client,
    job_id: str,
    until: Callable[[httpx.Response], bool],
    timeout_s: float = 5.0,
) -> httpx.Response:
    """Poll /status until `until(response)`; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = call(api, "status", job_id)
        if until(response):
            return response
        assert time.monotonic() < deadline, f"gave up waiting: {response.text[:300]}"
        time.sleep(0.01)  # the polling interval; the deadline bounds the wait


def has_status(wanted: str) -> Callable[[httpx.Response], bool]:
    return lambda response: response.status_code == 200 and response.json()["status"] == wanted


def is_gone(response: httpx.Response) -> bool:
    return response.status_code == 404


def health(api: httpx.Client) -> dict[str, Any]:
    return ok("health", call(api, "health"))


def cancel_all(api: httpx.Client, *job_ids: str) -> None:
    for job_id in job_ids:
        ok("cancel", call(api, "cancel", job_id))


def assert_serving(response: httpx.Response, key: str = "any-key") -> None:
    """The server that answered `response` still serves /health."""
    url = response.request.url
    endpoint_url = f"{url.scheme}://{url.netloc.decode()}/v2/still-serving"
    with httpx.Client(base_url=endpoint_url, timeout=10.0) as client:
        answer = client.get(path("health"), headers={"authorization": key})
    ok("health", answer)


def assert_oversize(response: httpx.Response, limit: str) -> None:
    """Production's answer to a body over the limit (captured 2026-09): 400, problem JSON."""
    assert response.status_code == 400, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "status": 400,
        "title": "Bad Request",
        "detail": f"bad request: body: exceeded max body size of {limit}",
    }
    assert_serving(response, "k")


def assert_error(response: httpx.Response, status_code: int, *words: str, key: str = "k") -> str:
    """An error answer: the right status, a JSON object whose string `error` names each of
    `words`, and the server still serving afterwards."""
    assert response.status_code == status_code, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), body
    message = body.get("error")
    assert isinstance(message, str), body
    assert message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert_serving(response, key)
    return message


def job_input(**probe: Any) -> dict[str, Any]:
    return {"input": probe}


def expected_output(**probe: Any) -> Any:
    return ProbeInput.parse(probe).final_output()


def expected_chunks(**probe: Any) -> list[dict[str, Any]]:
    plan = ProbeInput.parse(probe)
    return [{"output": plan.yielded(index)} for index in range(plan.yield_count)]


@pytest.fixture
def other_api(emulator: RunningEmulator, endpoint_id: str, api_key: str) -> Iterator[httpx.Client]:
    """A client for a second endpoint id on the same emulator."""
    with httpx.Client(
        base_url=emulator.endpoint_url(endpoint_id + "-other"),
        headers={"authorization": api_key},
        timeout=15.0,
    ) as client:
        yield client


# --- routes and queues ------------------------------------------------------------------------


def test_every_endpoint_id_has_its_own_queue(api: httpx.Client, other_api: httpx.Client) -> None:
    blocker = submit(api, sleep_ms=LONG_MS)
    queued = submit(api)
    poll(api, blocker, has_status(JobStatus.IN_PROGRESS))

    # The other endpoint id is not stuck behind this endpoint's busy worker.
    quick = ok("runsync", call(other_api, "runsync", body=job_input(echo="other")))
    assert quick["status"] == JobStatus.COMPLETED
    assert health(api)["jobs"]["inQueue"] == 1
    other_jobs = health(other_api)["jobs"]
    assert (other_jobs["inQueue"], other_jobs["inProgress"], other_jobs["completed"]) == (0, 0, 1)

    # Jobs are found only under their own endpoint id, and a purge touches only its own queue.
    assert_error(call(other_api, "status", blocker), 404, blocker)
    assert ok("purge-queue", call(other_api, "purge-queue"))["removed"] == 0
    assert status(api, queued)["status"] == JobStatus.IN_QUEUE
    cancel_all(api, queued, blocker)


def test_job_ids_take_production_forms(api: httpx.Client) -> None:
    run_id = submit(api)
    sync_id = ok("runsync", call(api, "runsync", body=job_input()))["id"]
    assert JOB_ID.match(run_id), run_id
    assert sync_id.startswith("sync-")
    assert JOB_ID.match(sync_id.removeprefix("sync-")), sync_id
    assert run_id != sync_id.removeprefix("sync-")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("name", ["status", "status-sync", "stream"])
def test_job_reads_answer_get_and_post(api: httpx.Client, name: str, method: str) -> None:
    assert method in operation(name).methods
    job_id = ok("runsync", call(api, "runsync", body=job_input(echo=name)))["id"]
    body = ok(name, call(api, name, job_id, method=method))
    assert body["status"] == JobStatus.COMPLETED
    assert body.get("id") == job_id


# --- lifecycle --------------------------------------------------------------------------------


def test_lifecycle_from_queue_to_completed(api: httpx.Client) -> None:
    probe = {"sleep_ms": 40, "echo": {"text": "héllo ☃"}}
    blocker = submit(api, sleep_ms=LONG_MS)
    job = submit(api, **probe)
    submitted_by = time.monotonic()  # the emulator stamped the job's submission before this

    waiting = status(api, job)
    assert waiting == {"id": job, "status": JobStatus.IN_QUEUE}
    running = poll(api, blocker, has_status(JobStatus.IN_PROGRESS)).json()
    assert running["delayTime"] >= 0
    assert "executionTime" not in running
    assert "workerId" not in running
    assert "output" not in running

    held_ms = (time.monotonic() - submitted_by) * 1000  # the worker is still busy until now
    cancel_all(api, blocker)
    done = settle(api, job)
    assert done["status"] == JobStatus.COMPLETED
    assert done["output"] == expected_output(**probe)
    # delayTime runs from submission to pickup, and the pickup came after the cancel was sent:
    # at least as long as the blocker held the worker (less 1 ms of rounding).
    assert done["delayTime"] >= held_ms - 1
    assert 40 <= done["executionTime"] <= 41  # the simulated handler runs exactly sleep_ms
    assert isinstance(done["workerId"], str)
    assert done["workerId"]
    assert status(api, job) == done  # /status is idempotent once terminal


def test_a_failing_job_ends_failed_with_its_error(api: httpx.Client) -> None:
    body = ok("runsync", call(api, "runsync", body=job_input(sleep_ms=10, fail="boom: ünïcode")))
    assert body["status"] == JobStatus.FAILED
    assert body["error"] == "boom: ünïcode"
    assert "output" not in body
    assert body["executionTime"] >= 10
    assert health(api)["jobs"]["failed"] == 1


def test_runsync_answers_the_finished_job(api: httpx.Client) -> None:
    body = ok("runsync", call(api, "runsync", body=job_input(sleep_ms=30, echo=[1, 2])))
    assert body["status"] == JobStatus.COMPLETED
    assert body["output"] == expected_output(sleep_ms=30, echo=[1, 2])
    assert body["id"].startswith("sync-")
    assert status(api, body["id"]) == body


BIG_INTEGERS = [123456789012345678901234567890, -(2**63) - 1, 2**64, 2**64 - 1, -(2**63)]


def test_integers_past_64_bits_come_back_exact(api: httpx.Client) -> None:
    """orjson would read them as floats and refuse to write them (see emulator/jsonbody.py)."""
    content = b'{"input": {"echo": [%s]}}' % ", ".join(map(str, BIG_INTEGERS)).encode()
    answer = api.post(path("runsync"), content=content)
    body = ok("runsync", answer)
    assert body["output"] == expected_output(echo=BIG_INTEGERS)
    assert b"123456789012345678901234567890" in answer.content
    assert b"e+" not in answer.content


def test_runsync_longer_than_wait_answers_the_running_job(api: httpx.Client) -> None:
    wait_ms = operation("runsync").query_param("wait").minimum  # type: ignore[union-attr]
    started = time.monotonic()
    body = ok("runsync", call(api, "runsync", body=job_input(sleep_ms=LONG_MS), wait=wait_ms))
    held_s = time.monotonic() - started
    assert wait_ms / 1000 - 0.05 <= held_s < wait_ms / 1000 + 2.0
    assert body["status"] in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS)
    assert "output" not in body
    # The client polls the id it was given.
    assert status(api, body["id"])["status"] == JobStatus.IN_PROGRESS
    cancel_all(api, body["id"])


def _query_cases() -> Iterator[Any]:
    for op in OPERATIONS.values():
        for param in op.query:
            yield pytest.param(op.name, param.name, id=f"{op.name}-{param.name}")


@pytest.mark.parametrize(("name", "param"), list(_query_cases()))
def test_query_values_at_their_bounds_pass_and_outside_answer_400(
    api: httpx.Client, name: str, param: str
) -> None:
    spec = operation(name).query_param(param)
    assert spec is not None
    done = ok("runsync", call(api, "runsync", body=job_input()))["id"]
    job_id = done if operation(name).takes_job_id else None
    body = None if job_id else job_input()
    # Maximum first: ?ttl=minimum deletes the job a second later.
    for good in (spec.maximum, spec.minimum):
        answer = call(api, name, job_id, body=body, **keyword(param, good))
        assert ok(name, answer)["status"] == JobStatus.COMPLETED, answer.text
    for bad in (spec.minimum - 1, spec.maximum + 1, "soon", "1.5", "1e3", "", "-0x1"):
        answer = call(api, name, job_id, body=body, **keyword(param, bad))
        assert_error(answer, 400, f"'{param}'")


@pytest.mark.parametrize("lenient", ["1_000", " 1000", "1000 ", "\u0661\u0660\u0660\u0660"])
def test_query_values_must_be_plain_decimal_integers(api: httpx.Client, lenient: str) -> None:
    # Python's int() takes underscores, blanks and non-ASCII digits; an HTTP API does not
    # (Go's strconv.Atoi refuses all three). Parsed in operations.QueryParam.parse.
    assert_error(call(api, "runsync", body=job_input(), wait=lenient), 400, "'wait'")


# --- stream, cancel, retry, purge, health -----------------------------------------------------


def test_stream_drains_each_chunk_once(api: httpx.Client) -> None:
    probe = {"chunks": 4, "chunk_interval_ms": 50}
    job = submit(api, **probe)
    received: list[Any] = []
    answers_with_chunks = 0
    deadline = time.monotonic() + 5.0
    while True:
        body = ok("stream", call(api, "stream", job, wait=2_000))
        received += body["stream"]
        answers_with_chunks += bool(body["stream"])
        if body["status"] in JobStatus.TERMINAL and not body["stream"]:
            break
        assert time.monotonic() < deadline, body
    assert received == expected_chunks(**probe)
    assert answers_with_chunks >= 2  # chunks arrive as they are produced, not all at the end
    drained = {"id": job, "status": JobStatus.COMPLETED, "stream": []}
    assert body == drained
    assert ok("stream", call(api, "stream", job)) == drained
    assert settle(api, job)["output"] == expected_output(**probe)


def test_stream_with_wait_0_answers_a_queued_job_at_once(api: httpx.Client) -> None:
    blocker = submit(api, sleep_ms=LONG_MS)
    queued = submit(api, chunks=2)
    body = ok("stream", call(api, "stream", queued, wait=0))
    assert body == {"id": queued, "status": JobStatus.IN_QUEUE, "stream": []}
    cancel_all(api, queued, blocker)


def test_cancel_stops_queued_and_running_jobs(api: httpx.Client) -> None:
    running = submit(api, sleep_ms=LONG_MS)
    queued = submit(api)
    poll(api, running, has_status(JobStatus.IN_PROGRESS))

    assert ok("cancel", call(api, "cancel", queued)) == {
        "id": queued,
        "status": JobStatus.CANCELLED,
    }
    assert status(api, queued) == {"id": queued, "status": JobStatus.CANCELLED}
    # A running job's cancel answers with its timings (production, captured 2026-09).
    cancelled = ok("cancel", call(api, "cancel", running))
    assert sorted(cancelled) == ["delayTime", "executionTime", "id", "status"]
    assert cancelled["status"] == JobStatus.CANCELLED
    stopped = status(api, running)
    assert stopped["status"] == JobStatus.CANCELLED
    assert stopped["executionTime"] == cancelled["executionTime"] >= 0
    assert stopped["delayTime"] == cancelled["delayTime"]
    jobs = health(api)["jobs"]
    assert (jobs["inQueue"], jobs["inProgress"]) == (0, 0)

    # A job that already ended keeps its state.
    done = ok("runsync", call(api, "runsync", body=job_input()))["id"]
    assert ok("cancel", call(api, "cancel", done))["status"] == JobStatus.COMPLETED
    assert status(api, done)["status"] == JobStatus.COMPLETED


def test_retry_requeues_a_failed_job_under_the_same_id(api: httpx.Client) -> None:
    job = submit(api, sleep_ms=300, fail="flaky")
    assert settle(api, job)["error"] == "flaky"

    assert ok("retry", call(api, "retry", job)) == {"id": job, "status": JobStatus.IN_QUEUE}
    again = status(api, job)
    assert again["status"] in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS)
    assert "error" not in again
    assert "output" not in again
    # While it runs again it cannot be retried; once it fails again it can.
    assert_error(call(api, "retry", job), 400, job, "FAILED", "TIMED_OUT")
    assert settle(api, job)["status"] == JobStatus.FAILED
    jobs = health(api)["jobs"]
    assert (jobs["retried"], jobs["failed"]) == (1, 2)


def test_retry_refuses_a_completed_job(api: httpx.Client) -> None:
    done = ok("runsync", call(api, "runsync", body=job_input()))["id"]
    assert_error(call(api, "retry", done), 400, "COMPLETED")
    assert status(api, done)["status"] == JobStatus.COMPLETED


def test_purge_queue_removes_only_queued_jobs(api: httpx.Client) -> None:
    running = submit(api, sleep_ms=LONG_MS)
    queued = [submit(api), submit(api, sleep_ms=5)]
    poll(api, running, has_status(JobStatus.IN_PROGRESS))

    assert ok("purge-queue", call(api, "purge-queue")) == {"removed": 2, "status": "completed"}
    jobs = health(api)["jobs"]
    assert (jobs["inQueue"], jobs["inProgress"]) == (0, 1)
    assert status(api, running)["status"] == JobStatus.IN_PROGRESS
    for job in queued:
        assert status(api, job)["status"] in JobStatus.TERMINAL
    assert ok("purge-queue", call(api, "purge-queue"))["removed"] == 0
    cancel_all(api, running)


def test_health_counts_jobs_and_workers(api: httpx.Client) -> None:
    fresh = health(api)
    assert fresh["jobs"] == dict.fromkeys(
        ("completed", "failed", "inProgress", "inQueue", "retried"), 0
    )
    assert set(fresh["workers"].values()) == {0}
    assert {"idle", "running", "initializing", "ready", "throttled", "unhealthy"} <= set(
        fresh["workers"]
    )

    ok("runsync", call(api, "runsync", body=job_input()))
    ok("runsync", call(api, "runsync", body=job_input(fail="no")))
    running = submit(api, sleep_ms=LONG_MS)
    queued = submit(api)
    poll(api, running, has_status(JobStatus.IN_PROGRESS))
    busy = health(api)
    assert busy["jobs"] == {
        "completed": 1,
        "failed": 1,
        "inProgress": 1,
        "inQueue": 1,
        "retried": 0,
    }
    assert (busy["workers"]["running"], busy["workers"]["idle"]) == (1, 0)
    cancel_all(api, queued, running)
    assert health(api)["workers"]["idle"] == 1


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting", ["idle_timeout_s", "queue_delay_s", "retention_async_s", "retention_sync_s"]
)
def test_a_nan_setting_is_refused(setting: str) -> None:
    # NaN passes every `< 0` check, and a NaN event time breaks the model's event heap
    # (EmulatorConfig.__post_init__ in model.py). The CLI refuses it on its own.
    with pytest.raises(ValueError, match=setting):
        dataclasses.replace(EmulatorConfig(), **keyword(setting, math.nan))


# --- time: cold start, policies, ttl, retention -----------------------------------------------


@pytest.fixture
def shifted(
    start_emulator: Callable[..., RunningEmulator], endpoint_id: str, api_key: str
) -> Iterator[tuple[httpx.Client, ShiftableClock]]:
    """A client for an emulator whose clock the test moves forward (2-second cold start)."""
    clock = ShiftableClock()
    running = start_emulator(clock=clock, cold_start_ms=2_000)
    with httpx.Client(
        base_url=running.endpoint_url(endpoint_id),
        headers={"authorization": api_key},
        timeout=15.0,
    ) as client:
        yield client, clock


def test_delay_time_includes_the_cold_start(
    shifted: tuple[httpx.Client, ShiftableClock],
) -> None:
    api, clock = shifted
    job = submit(api, sleep_ms=10)
    assert health(api)["workers"]["initializing"] == 1
    assert status(api, job)["status"] == JobStatus.IN_QUEUE
    clock.shift(2.0)
    shifted_at = time.monotonic()
    done = settle(api, job)
    # The emulator wakes for the job's end at once, not when the cold start's timer was due.
    assert time.monotonic() - shifted_at < 1.0
    assert done["delayTime"] >= 2_000
    assert done["executionTime"] == 10


def test_policy_execution_timeout_ends_the_job_timed_out(
    shifted: tuple[httpx.Client, ShiftableClock],
) -> None:
    api, clock = shifted
    timeout_ms = POLICY_LIMITS["executionTimeout"].minimum
    body = {"input": {"sleep_ms": LONG_MS}, "policy": {"executionTimeout": timeout_ms}}
    job = ok("run", call(api, "run", body=body))["id"]
    clock.shift(2.0)  # the cold start
    poll(api, job, has_status(JobStatus.IN_PROGRESS))
    clock.shift(timeout_ms / 1000)
    ended = settle(api, job)
    assert ended["status"] == JobStatus.TIMED_OUT
    assert ended["executionTime"] == timeout_ms
    assert health(api)["jobs"]["failed"] == 1
    # A timed-out job can be retried.
    assert ok("retry", call(api, "retry", job))["status"] == JobStatus.IN_QUEUE
    cancel_all(api, job)


def test_policy_ttl_deletes_the_job(shifted: tuple[httpx.Client, ShiftableClock]) -> None:
    api, clock = shifted
    ttl_ms = POLICY_LIMITS["ttl"].minimum
    body = {"input": {"sleep_ms": LONG_MS}, "policy": {"ttl": ttl_ms}}
    job = ok("run", call(api, "run", body=body))["id"]
    clock.shift(ttl_ms / 1000 - 1)
    assert status(api, job)["status"] == JobStatus.IN_PROGRESS
    clock.shift(1.0)
    assert_error(call(api, "status", job), 404, job)
    assert health(api)["jobs"]["inProgress"] == 0


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_the_wake_up_timer_can_be_re_armed_when_an_event_is_due(loop_kind: str) -> None:
    # Many requests can finish in one loop iteration, each re-arming the timer; with an event
    # already due, call_at runs at once and uvloop hands back a plain Handle (no when()).
    clock = ShiftableClock()
    app = EmulatorApp(EmulatorConfig(cold_start_ms=0), clock=clock)
    app.model.submit("timers", job_input(sleep_ms=LONG_MS))
    clock.shift(LONG_MS / 1000 + 1)

    async def arm_twice() -> None:
        app._arm_timer()
        app._arm_timer()
        await asyncio.sleep(0)  # the due timer fires and applies the event

    loop = uvloop.new_event_loop() if loop_kind == "uvloop" else asyncio.new_event_loop()
    try:
        loop.run_until_complete(arm_twice())
    finally:
        loop.close()
    assert app.model.health("timers")["jobs"]["completed"] == 1


def test_status_ttl_deletes_the_job_that_many_ms_from_now(api: httpx.Client) -> None:
    ttl_ms = operation("status").query_param("ttl").minimum  # type: ignore[union-attr]
    job = ok("runsync", call(api, "runsync", body=job_input()))["id"]
    asked = time.monotonic()
    assert status(api, job, ttl=ttl_ms)["status"] == JobStatus.COMPLETED
    gone = poll(api, job, is_gone, timeout_s=ttl_ms / 1000 + 3)
    assert time.monotonic() - asked >= ttl_ms / 1000 - 0.05
    assert_error(gone, 404, job)


def test_results_expire_after_retention_sync_first(
    start_emulator: Callable[..., RunningEmulator], endpoint_id: str
) -> None:
    # Seconds apart, so that a loaded machine's slow polls cannot outlast the longer retention
    # (at load 30 on 2 cores, 2.5 s went by before the first /status after the sync job's end).
    running = start_emulator(retention_sync_s=0.2, retention_async_s=6)
    with httpx.Client(
        base_url=running.endpoint_url(endpoint_id), headers={"authorization": "k"}, timeout=10
    ) as api:
        async_job = submit(api)
        sync_job = ok("runsync", call(api, "runsync", body=job_input()))["id"]
        ended = time.monotonic()
        settle(api, async_job)

        assert_error(poll(api, sync_job, is_gone, timeout_s=5), 404, sync_job)
        sync_kept_s = time.monotonic() - ended
        assert status(api, async_job)["status"] == JobStatus.COMPLETED
        assert_error(poll(api, async_job, is_gone, timeout_s=12), 404, async_job)
        async_kept_s = time.monotonic() - ended
        assert 0.1 <= sync_kept_s < async_kept_s
        assert async_kept_s >= 5.8
        # Expired jobs are gone from memory, not only hidden.
        assert_error(call(api, "stream", async_job), 404)
        assert_error(call(api, "cancel", sync_job), 404)


# --- limits and errors ------------------------------------------------------------------------


def _body_of_size(size: int) -> bytes:
    """A valid request body of exactly `size` bytes (the padding is a top-level key, which
    production discards, so the job itself stays small)."""
    head, tail = b'{"input": {}, "padding": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _chunked(data: bytes, piece: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("name", ["run", "runsync"])
def test_payload_limits(api: httpx.Client, name: str, framing: str) -> None:
    limit = operation(name).max_body_bytes
    assert limit is not None
    for size, expected in ((limit, 200), (limit + 1, 400)):
        data = _body_of_size(size)
        content: bytes | Iterator[bytes] = data if framing == "content-length" else _chunked(data)
        response = api.post(path(name), content=content)
        sent = response.request.headers
        if framing == "chunked":
            assert sent.get("transfer-encoding") == "chunked"
        else:
            assert sent["content-length"] == str(size)
        if expected == 200:
            assert ok(name, response)["id"]
        else:
            assert_oversize(response, f"{limit // (1024 * 1024)}MiB")


@pytest.mark.parametrize("name", ["cancel", "purge-queue"])
def test_bodiless_operations_refuse_a_large_body_naming_the_limit(
    api: httpx.Client, name: str
) -> None:
    below = path(name, "some-job" if operation(name).takes_job_id else None)
    assert_oversize(api.post(below, content=b"x" * 1_000_000), "64KiB")


def test_rate_limits_answer_429_with_retry_after(
    start_emulator: Callable[..., RunningEmulator], endpoint_id: str
) -> None:
    limit = operation("purge-queue").rate_limit
    assert limit is not None
    running = start_emulator(rate_limits=True)
    with httpx.Client(base_url=running.base_url, headers={"authorization": "k"}) as client:
        purge = f"/{endpoint_id}{path('purge-queue')}"
        for _ in range(limit.requests):
            ok("purge-queue", client.post(purge))
        refused = client.post(purge)
        assert_error(refused, 429, "purge-queue", "rate limit")
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= limit.window_s
        # The budget is per endpoint and per operation.
        ok("purge-queue", client.post(f"/{endpoint_id}-other{path('purge-queue')}"))
        ok("health", client.get(f"/{endpoint_id}{path('health')}"))


def test_rate_limits_are_off_by_default(api: httpx.Client) -> None:
    limit = operation("purge-queue").rate_limit
    assert limit is not None
    for _ in range(limit.requests + 3):
        ok("purge-queue", call(api, "purge-queue"))


def _any_operation_request(name: str) -> tuple[str, str]:
    op = operation(name)
    return op.method, path(name, "some-job" if op.takes_job_id else None)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_operation_needs_a_key(emulator: RunningEmulator, name: str) -> None:
    method, below = _any_operation_request(name)
    url = emulator.endpoint_url("auth") + below
    for headers in ({}, {"authorization": ""}, {"authorization": "Bearer"}):
        answer = httpx.request(method, url, headers=headers, content=b'{"input": {}}')
        assert_error(answer, 401, "no API key")  # says which: none was sent


def test_raw_and_bearer_keys_are_accepted(emulator: RunningEmulator) -> None:
    url = emulator.endpoint_url("auth") + path("health")
    for value in ("some-key", "Bearer some-key", "bearer some-key"):
        ok("health", httpx.get(url, headers={"authorization": value}))


def test_with_an_api_key_only_that_key_is_accepted(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    key = "rpa_RIGHT_KEY_5f3a"
    running = start_emulator(api_key=key)
    url = running.endpoint_url("auth") + path("health")
    for value in (key, f"Bearer {key}", f"bearer {key}"):
        ok("health", httpx.get(url, headers={"authorization": value}))
    for value in ("rpa_WRONG_KEY", f"Bearer {key}x", key[:-1], "Bearer", f"Basic {key}"):
        answer = httpx.get(url, headers={"authorization": value})
        which = "no API key" if value == "Bearer" else "wrong API key"
        message = assert_error(answer, 401, which, key=key)
        assert key not in message
        assert "WRONG" not in message
        assert "Basic" not in message


@pytest.mark.parametrize("name", [op.name for op in OPERATIONS.values() if op.takes_job_id])
def test_unknown_job_answers_404(api: httpx.Client, name: str) -> None:
    assert_error(call(api, name, "no-such-job-u1"), 404, "no-such-job-u1")


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed", b'{"input": {', "JSON"),
    ("trailing-comma", b'{"input": {},}', "JSON"),
    ("nan", b'{"input": {"x": NaN}}', "JSON"),
    ("lone-surrogate", b'{"input": {"x": "\\ud800"}}', "JSON"),
    ("not-utf8", b'{"input": {"x": "\xff"}}', "not valid UTF-8: byte 0xff at offset 17"),
    ("utf8-bom", b'\xef\xbb\xbf{"input": {}}', "JSON"),
    ("empty", b"", "input"),
    ("null", b"null", "input"),
    ("array", b"[]", "object"),
    ("number", b"42", "object"),
    ("string", b'"input"', "object"),
    ("no-input", b'{"inputs": {}}', "input"),
    ("input-null", b'{"input": null}', "input"),
    ("input-string", b'{"input": "text"}', "input"),
    ("input-array", b'{"input": [1, 2]}', "input"),
    ("input-number", b'{"input": 5}', "input"),
    ("duplicate-input", b'{"input": {}, "input": 5}', "input"),
    ("too-deep", b'{"input": {"x": ' + b"[" * 500 + b"]" * 500 + b"}}", "deeper"),
    ("policy-array", b'{"input": {}, "policy": []}', "policy"),
    ("timeout-low", b'{"input": {}, "policy": {"executionTimeout": 4999}}', "executionTimeout"),
    ("ttl-low", b'{"input": {}, "policy": {"ttl": 9999}}', "ttl"),
    ("ttl-high", b'{"input": {}, "policy": {"ttl": 604800001}}', "ttl"),
    ("ttl-huge", b'{"input": {}, "policy": {"ttl": 1e400}}', "JSON"),
    ("ttl-float", b'{"input": {}, "policy": {"ttl": 20000.5}}', "ttl"),
    ("ttl-string", b'{"input": {}, "policy": {"ttl": "20s"}}', "ttl"),
    ("low-priority", b'{"input": {}, "policy": {"lowPriority": "yes"}}', "lowPriority"),
    ("webhook", b'{"input": {}, "webhook": 5}', "webhook"),
    ("s3-config", b'{"input": {}, "s3Config": "bucket"}', "s3Config"),
]


@pytest.mark.parametrize("name", ["run", "runsync"])
@pytest.mark.parametrize(("content", "named"), [case[1:] for case in BAD_BODIES],
                         ids=[case[0] for case in BAD_BODIES])  # fmt: skip
def test_bad_request_bodies_answer_400(
    api: httpx.Client, name: str, content: bytes, named: str
) -> None:
    answer = api.post(path(name), content=content, headers={"content-type": "application/json"})
    assert_error(answer, 400, named)
    assert health(api)["jobs"]["inQueue"] == 0


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_wrong_method_answers_405_with_allow(api: httpx.Client, name: str) -> None:
    op = operation(name)
    below = path(name, "some-job" if op.takes_job_id else None)
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"} - set(op.methods)):
        answer = api.request(method, below)
        assert_error(answer, 405, method, *op.methods)
        assert answer.headers["allow"] == ", ".join(op.methods)


# --- nasty input: never a 500 -----------------------------------------------------------------

_DEEP_OK = b"[" * 100 + b"]" * 100
NASTY: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/v2//run", b'{"input": {}}', {}),
    ("POST", "/v2/EP//run", b'{"input": {}}', {}),
    ("GET", "/v2/EP", b"", {}),
    ("GET", "/v2/EP/", b"", {}),
    ("GET", "/v2/", b"", {}),
    ("GET", "/", b"", {}),
    ("GET", "/v2/EP/health/", b"", {}),
    ("GET", "/v2/EP/health/extra", b"", {}),
    ("GET", "/v2/EP/status/", b"", {}),
    ("GET", "/v2/EP/status/a%2Fb", b"", {}),
    ("GET", "/v2/EP/status/a/b/c", b"", {}),
    ("GET", "/v2/EP/status/%2e%2e", b"", {}),
    ("GET", "/v2/EP/status/%00", b"", {}),
    ("GET", "/v2/%2F/health", b"", {}),
    ("GET", "/v2/EP/status/" + "x" * 8_000, b"", {}),
    ("GET", "/v2/" + "e" * 8_000 + "/health", b"", {}),
    ("GET", "/v2/EP/status/%E2%98%83%F0%9F%98%80", b"", {}),
    ("GET", "/v2/EP/nonsense", b"", {}),
    ("GET", "/v2/EP/health?wait=%FF%FE", b"", {}),
    ("GET", "/v2/EP/stream/x?wait=1e309", b"", {}),
    ("GET", "/v2/EP/stream/x?wait=99999999999999999999999999", b"", {}),
    ("POST", "/v2/EP/runsync?wait=1000&wait=-1", b'{"input": {}}', {}),
    ("POST", "/v2/EP/runsync?wait=%F0%9F%98%80", b'{"input": {}}', {}),
    ("POST", "/v2/EP/run", b'{"input": {"sleep_ms": 1e400}}', {}),
    ("POST", "/v2/EP/run", b'{"input": {"sleep_ms": 100000000000000000000000}}', {}),
    ("POST", "/v2/EP/runsync", b'{"input": {"echo": 100000000000000000000000}}', {}),
    ("POST", "/v2/EP/runsync", b'{"input": {"echo": -1.7976931348623157e308}}', {}),
    ("POST", "/v2/EP/runsync", b'{"input": {"chunks": -1, "fail": 7}}', {}),
    ("POST", "/v2/EP/runsync", '{"input": {"echo": "\\u0000☃😀\u202e"}}'.encode(), {}),
    ("POST", "/v2/EP/runsync", b'{"input": {"echo": ' + _DEEP_OK + b"}}", {}),
    ("POST", "/v2/EP/runsync", b'{"input": {"x": {"y": [null, true, {"z": []}]}}}', {}),
    ("POST", "/v2/EP/run", b'{"input": {}}', {"content-type": "text/plain"}),
    ("POST", "/v2/EP/run", b"input=x", {"content-type": "application/x-www-form-urlencoded"}),
    ("POST", "/v2/EP/run", b"--b\r\n\r\nx\r\n--b--", {"content-type": "multipart/form-data"}),
    ("POST", "/v2/EP/run", '{"input": {}}'.encode("utf-16"), {}),
    ("POST", "/v2/EP/run", b'{"input": {}}', {"content-encoding": "gzip"}),
    ("POST", "/v2/EP/cancel/x", b"x" * 100_000, {}),
    ("POST", "/v2/EP/purge-queue", b"[[[[", {}),
    ("GET", "/v2/EP/health", b"", {"authorization": "Bearer " + "k" * 16_000}),
    ("OPTIONS", "/v2/EP/run", b"", {}),
    ("HEAD", "/v2/EP/health", b"", {}),
]


@pytest.mark.parametrize(
    "case", NASTY, ids=[f"{i}-{case[0]}-{case[1][:30]}" for i, case in enumerate(NASTY)]
)
def test_nasty_input_never_gets_a_500(
    emulator: RunningEmulator,
    endpoint_id: str,
    server_errors: list[logging.LogRecord],
    case: tuple[str, str, bytes, dict[str, str]],
) -> None:
    method, raw_path, content, headers = case
    root = emulator.base_url.removesuffix("/v2")
    url = httpx.URL(root + raw_path.replace("EP", endpoint_id, 1))
    sent = {"authorization": "k", **headers}
    answer = httpx.request(method, url, content=content or None, headers=sent, timeout=15)
    assert answer.status_code < 500, answer.text[:300]
    # Anything but a 2xx is a JSON error (no bodiless redirects either): the emulator's own
    # {"error": ...}, or production's problem body for an oversize request.
    if answer.status_code >= 300 and method != "HEAD":
        if "detail" in answer.json():
            assert_oversize(answer, "64KiB")
        else:
            assert_error(answer, answer.status_code)
    assert_serving(answer)
    assert not server_errors


BROKEN_HTTP: list[tuple[str, bytes, bytes]] = [
    (
        "bad-chunk",
        b"POST /v2/EP/run HTTP/1.1\r\nHost: x\r\nAuthorization: k\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
        b"HTTP/1.1 400",
    ),
    (
        "empty-bearer",
        b"GET /v2/EP/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\n"
        b"Connection: close\r\n\r\n",
        b"HTTP/1.1 401",
    ),
    (
        "latin1-key",
        b"GET /v2/EP/health HTTP/1.1\r\nHost: x\r\nAuthorization: \xff\xfe\r\n"
        b"Connection: close\r\n\r\n",
        b"HTTP/1.1 200",
    ),
    (
        "bad-byte-in-path",
        b"GET /v2/EP/status/\xff HTTP/1.1\r\nHost: x\r\nAuthorization: k\r\n"
        b"Connection: close\r\n\r\n",
        b"HTTP/1.1 400",
    ),
]


@pytest.mark.parametrize(
    ("request_bytes", "reply_starts"),
    [case[1:] for case in BROKEN_HTTP],
    ids=[case[0] for case in BROKEN_HTTP],
)
def test_broken_http_never_gets_a_500(
    emulator: RunningEmulator,
    endpoint_id: str,
    server_errors: list[logging.LogRecord],
    request_bytes: bytes,
    reply_starts: bytes,
) -> None:
    port = urlsplit(emulator.base_url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request_bytes.replace(b"EP", endpoint_id.encode(), 1))
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.startswith(reply_starts), reply[:200]
    with httpx.Client(base_url=emulator.endpoint_url(endpoint_id)) as client:
        ok("health", client.get(path("health"), headers={"authorization": "k"}))
    assert not server_errors


def test_a_body_cut_short_is_dropped_quietly(
    emulator: RunningEmulator, endpoint_id: str, server_errors: list[logging.LogRecord]
) -> None:
    port = urlsplit(emulator.base_url).port
    assert port is not None
    head = (
        f"POST /v2/{endpoint_id}{path('run')} HTTP/1.1\r\nHost: x\r\nAuthorization: k\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode() + b'{"input": {')
    # Nothing to wait for but a failure: watch briefly (bounded) for an escaped exception.
    with httpx.Client(base_url=emulator.endpoint_url(endpoint_id)) as client:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline and not server_errors:
            assert health_of(client)["jobs"]["inQueue"] == 0
    assert not server_errors


def health_of(client: httpx.Client) -> dict[str, Any]:
    return ok("health", client.get(path("health"), headers={"authorization": "k"}))


# --- held requests: disconnects and shutdown --------------------------------------------------


def test_a_held_request_ends_when_its_client_goes(emulator: RunningEmulator) -> None:
    port = urlsplit(emulator.base_url).port
    assert port is not None
    body = json.dumps(job_input(sleep_ms=LONG_MS)).encode()
    head = (
        f"POST /v2/held{path('runsync', wait=60_000)} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: k\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    app = emulator.app
    before = app.held_requests
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode() + body)
        deadline = time.monotonic() + 5
        while app.held_requests == before:
            assert time.monotonic() < deadline, "the runsync was never held"
            time.sleep(0.01)
    deadline = time.monotonic() + 5
    while app.held_requests != before:
        assert time.monotonic() < deadline, "the hold outlived its client"
        time.sleep(0.01)


def test_stopping_answers_held_requests_at_once() -> None:
    answers: list[httpx.Response] = []
    with running_emulator() as running:

        def hold() -> None:
            answers.append(
                httpx.post(
                    running.endpoint_url("held") + path("runsync", wait=60_000),
                    json=job_input(sleep_ms=LONG_MS),
                    headers={"authorization": "k"},
                    timeout=30,
                )
            )

        holder = threading.Thread(target=hold)
        holder.start()
        deadline = time.monotonic() + 5
        while running.app.held_requests == 0:
            assert time.monotonic() < deadline, "the runsync was never held"
            time.sleep(0.01)
        stopping = time.monotonic()
    stop_s = time.monotonic() - stopping
    holder.join(10)
    assert stop_s < 3.0
    assert len(answers) == 1
    assert ok("runsync", answers[0])["status"] in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS)


# --- the job log ------------------------------------------------------------------------------


def test_job_log_records_every_terminal_job(
    start_emulator: Callable[..., RunningEmulator], endpoint_id: str, tmp_path: Path
) -> None:
    log = tmp_path / "jobs.jsonl"
    key = "rpa_LOGGED_KEY_never_written"
    running = start_emulator(job_log=log, api_key=key)
    before_ms = time.time() * 1000
    with httpx.Client(
        base_url=running.endpoint_url(endpoint_id), headers={"authorization": key}, timeout=10
    ) as api:
        jobs = [
            ok("runsync", call(api, "runsync", body=job_input(sleep_ms=20)))["id"],
            submit(api, sleep_ms=30, echo="async"),
            submit(api, sleep_ms=10, fail="broken"),
            submit(api, chunks=3, chunk_interval_ms=10),
        ]
        running_job = submit(api, sleep_ms=LONG_MS)
        poll(api, running_job, has_status(JobStatus.IN_PROGRESS))
        queued = submit(api)
        cancel_all(api, queued, running_job)
        reported = {job: settle(api, job) for job in [*jobs, queued, running_job]}
    after_ms = time.time() * 1000

    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert key not in log.read_text(encoding="utf-8")
    assert sorted(record["id"] for record in records) == sorted(reported)
    for record in records:
        body = reported[record["id"]]
        assert record["status"] == body["status"]
        assert record["delayTime"] == body.get("delayTime")
        assert record["executionTime"] == body.get("executionTime")
        assert before_ms - 50 <= record["submittedAt"] <= after_ms + 50
        if record["startedAt"] is None:  # cancelled while queued
            assert record["endedAt"] is None
            assert record["id"] == queued
            continue
        # Timestamps agree with the reported durations (each rounded to the ms on its own).
        assert abs(record["startedAt"] - record["submittedAt"] - body["delayTime"]) <= 1
        assert abs(record["endedAt"] - record["startedAt"] - body["executionTime"]) <= 1
        assert record["endedAt"] <= after_ms + 50
