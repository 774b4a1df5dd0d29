"""The respx adapter (`MockEndpoint`) and, through it, the service rules of issue 2 on a virtual
clock: /runsync and /stream holds, drain semantics, cancel/retry/purge, policies and retention,
the job log as ground truth, determinism, httpx sync and async clients, the pytest fixture.

Every answer is checked against its schema (`ContractValidator`). No test sleeps: a held request
jumps the mock's virtual clock, and tests move it with `mock.clock.advance`.
"""

from __future__ import annotations

import asyncio
import doctest
import re
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
import respx

from runpod_testkit.emulator.mock import DEFAULT_MOCK_ENDPOINT_URL, MockEndpoint
from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.operations import (
    OPERATIONS,
    RETENTION_ASYNC_S,
    RETENTION_SYNC_S,
    JobStatus,
)
from runpod_testkit.schemas import ContractValidator

# Loopback on the discard port: should routing ever fail, nothing leaves the machine.
ENDPOINT_URL = "http://127.0.0.1:9/v2/mock-test"
API_KEY = "rpa_MOCKTESTKEY_not_a_secret"
AUTH = {"authorization": f"Bearer {API_KEY}"}
_UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
# Production's suffixes (captured 2026-09): -u1, -u2, -e1, -e2.
RUN_ID = re.compile(rf"{_UUID4}-[ue][12]")
SYNC_ID = re.compile(rf"sync-{_UUID4}-[ue][12]")
SEEDED = EmulatorConfig(workers_min=1, workers_max=3, seed=1)


@pytest.fixture(scope="module")
def validator() -> ContractValidator:
    return ContractValidator()


class MockApi:
    """An httpx client on a MockEndpoint: URLs from the operations table, every answer checked
    against the schema the table names for its status code."""

    def __init__(
        self, mock: MockEndpoint, client: httpx.Client, validator: ContractValidator
    ) -> None:
        self.mock = mock
        self.client = client
        self.validator = validator

    @property
    def now(self) -> float:
        return self.mock.clock.now

    def call(
        self,
        name: str,
        job_id: str | None = None,
        *,
        method: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        op = OPERATIONS[name]
        url = op.url(endpoint_url or self.mock.endpoint_url, job_id)
        response = self.client.request(method or op.method, url, **kwargs)
        result = self.validator.check_response(name, response.status_code, response.json())
        assert result.ok, str(result)
        return response

    def ok(self, name: str, job_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.call(name, job_id, **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def run(self, sync: bool = False, policy: dict[str, Any] | None = None, **probe: Any) -> str:
        body: dict[str, Any] = {"input": probe}
        if policy is not None:
            body["policy"] = policy
        job_id: str = self.ok("runsync" if sync else "run", json=body)["id"]
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        return self.ok("status", job_id)

    def error(self, expected_status: int, name: str, job_id: str | None = None, **kw: Any) -> str:
        response = self.call(name, job_id, **kw)
        assert response.status_code == expected_status, response.text
        message: str = response.json()["error"]
        return message


@pytest.fixture
def mock() -> Iterator[MockEndpoint]:
    with MockEndpoint(ENDPOINT_URL, SEEDED) as endpoint:
        yield endpoint


@pytest.fixture
def mock_api(mock: MockEndpoint, validator: ContractValidator) -> Iterator[MockApi]:
    with httpx.Client(headers=AUTH) as client:
        yield MockApi(mock, client, validator)


@contextmanager
def mock_api_on(validator: ContractValidator, **config: Any) -> Iterator[MockApi]:
    """A MockApi on its own MockEndpoint with this configuration."""
    with (
        MockEndpoint(ENDPOINT_URL, EmulatorConfig(**config)) as mock,
        httpx.Client(headers=AUTH) as client,
    ):
        yield MockApi(mock, client, validator)


def single_worker(validator: ContractValidator, **config: Any) -> AbstractContextManager[MockApi]:
    settings = {"workers_min": 1, "workers_max": 1, "queue_delay_s": 3600.0, "seed": 4} | config
    return mock_api_on(validator, **settings)


@pytest.fixture
def one_worker(validator: ContractValidator) -> Iterator[MockApi]:
    """One warm worker and no scaling: a long job holds the queue."""
    with single_worker(validator) as api:
        yield api


# --- lifecycle through /run, /status and /runsync -----------------------------------------------


def test_run_then_status_follows_the_job(mock_api: MockApi) -> None:
    accepted = mock_api.ok("run", json={"input": {"sleep_ms": 2500, "echo": "hi"}})
    job_id = accepted["id"]

    assert accepted == {"id": job_id, "status": JobStatus.IN_QUEUE}
    assert RUN_ID.fullmatch(job_id)
    assert mock_api.status(job_id) == {
        "delayTime": 0,
        "id": job_id,
        "status": JobStatus.IN_PROGRESS,
    }
    mock_api.mock.clock.advance(2.5)
    done = mock_api.status(job_id)
    assert done["status"] == JobStatus.COMPLETED
    assert (done["delayTime"], done["executionTime"]) == (0, 2500)
    assert done["output"] == [{"echo": "hi"}]
    assert done["workerId"] in mock_api.mock.model.endpoint(mock_api.mock.endpoint_id).workers


def test_runsync_of_a_90_second_job_completes_on_the_virtual_clock(mock_api: MockApi) -> None:
    start = mock_api.now

    body = mock_api.ok("runsync", json={"input": {"sleep_ms": 90_000}})

    assert SYNC_ID.fullmatch(body["id"])
    assert body["status"] == JobStatus.COMPLETED
    assert body["executionTime"] == 90_000
    assert mock_api.now - start == 90.0  # the clock jumped; nothing slept


def test_runsync_shorter_than_the_job_returns_the_job_to_poll(mock_api: MockApi) -> None:
    start = mock_api.now

    body = mock_api.ok("runsync", params={"wait": 1000}, json={"input": {"sleep_ms": 5000}})

    assert body == {"delayTime": 0, "id": body["id"], "status": JobStatus.IN_PROGRESS}
    assert mock_api.now - start == 1.0
    done = mock_api.ok("status-sync", body["id"])  # the legacy hold waits for the end
    assert done["status"] == JobStatus.COMPLETED
    assert mock_api.now - start == 5.0
    assert mock_api.status(body["id"]) == done


def test_runsync_during_a_cold_start_returns_the_queued_job(validator: ContractValidator) -> None:
    config = EmulatorConfig(workers_min=0, cold_start_ms=3000, seed=2)
    with MockEndpoint(ENDPOINT_URL, config) as mock, httpx.Client(headers=AUTH) as client:
        api = MockApi(mock, client, validator)

        body = api.ok("runsync", params={"wait": 1000}, json={"input": {}})

        assert body == {"id": body["id"], "status": JobStatus.IN_QUEUE}
        done = api.ok("runsync", params={"wait": 5000}, json={"input": {}})
        assert done["status"] == JobStatus.COMPLETED
        assert done["delayTime"] == 2000  # submitted 1 s into the 3 s cold start


@pytest.mark.parametrize("wait", ["999", "300001", "soon"])
def test_runsync_wait_out_of_range_is_refused(mock_api: MockApi, wait: str) -> None:
    message = mock_api.error(400, "runsync", params={"wait": wait}, json={"input": {}})

    assert "'wait'" in message
    assert list(mock_api.mock.model.jobs()) == []


# --- /stream ------------------------------------------------------------------------------------


def test_stream_hands_out_each_chunk_once_on_the_probe_timeline(mock_api: MockApi) -> None:
    job_id = mock_api.run(sleep_ms=250, chunks=4, chunk_interval_ms=125)
    start = mock_api.now
    seen: list[tuple[float, Any]] = []

    while True:
        body = mock_api.ok("stream", job_id)
        assert body["id"] == job_id
        seen += [(mock_api.now - start, chunk["output"]) for chunk in body["stream"]]
        if body["status"] == JobStatus.COMPLETED:
            break
        assert body["status"] == JobStatus.IN_PROGRESS
        assert len(seen) < 4

    # First chunk at sleep_ms, then one every chunk_interval_ms (binary-exact seconds here).
    assert seen == [(0.25 + 0.125 * index, {"index": index}) for index in range(4)]
    drained = mock_api.ok("stream", job_id)
    assert (drained["status"], drained["stream"]) == (JobStatus.COMPLETED, [])
    assert mock_api.status(job_id)["output"] == [{"index": i} for i in range(4)]


@pytest.mark.timeout(10)  # the failure this guards against was an endless /stream hold
def test_stream_finds_each_chunk_at_its_time_off_binary_boundaries(mock_api: MockApi) -> None:
    mock_api.mock.clock.advance(0.1)
    job_id = mock_api.run(sleep_ms=100, chunks=3, chunk_interval_ms=100)
    start = mock_api.now

    bodies = [mock_api.ok("stream", job_id) for _ in range(3)]

    assert [[c["output"]["index"] for c in body["stream"]] for body in bodies] == [[0], [1], [2]]
    assert bodies[-1]["status"] == JobStatus.COMPLETED
    assert round(mock_api.now - start, 6) == 0.3


def test_stream_returns_everything_new_since_the_last_call(mock_api: MockApi) -> None:
    job_id = mock_api.run(chunks=10, chunk_interval_ms=100)
    mock_api.mock.clock.advance(0.25)  # chunks at 0, 0.1 and 0.2 are out

    first = mock_api.ok("stream", job_id)
    again = mock_api.ok("stream", job_id, params={"wait": 0})

    assert [c["output"]["index"] for c in first["stream"]] == [0, 1, 2]
    assert again == {"id": job_id, "status": JobStatus.IN_PROGRESS, "stream": []}


def test_stream_hold_ends_at_its_wait(mock_api: MockApi) -> None:
    job_id = mock_api.run(sleep_ms=10_000, chunks=2)
    start = mock_api.now

    body = mock_api.ok("stream", job_id, params={"wait": 2000})

    assert body == {"id": job_id, "status": JobStatus.IN_PROGRESS, "stream": []}
    assert mock_api.now - start == 2.0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_stream_of_a_job_without_chunks_yields_its_echo(mock_api: MockApi, method: str) -> None:
    job_id = mock_api.run(sleep_ms=500, echo=[1, 2])

    body = mock_api.ok("stream", job_id, method=method)

    assert body["stream"] == [{"output": {"echo": [1, 2]}}]
    assert body["status"] == JobStatus.COMPLETED
    assert mock_api.ok("stream", job_id, method=method)["stream"] == []


def test_cancel_mid_stream_freezes_the_chunks(mock_api: MockApi) -> None:
    job_id = mock_api.run(chunks=10, chunk_interval_ms=1000)
    assert len(mock_api.ok("stream", job_id)["stream"]) == 1
    assert len(mock_api.ok("stream", job_id)["stream"]) == 1

    assert mock_api.ok("cancel", job_id)["status"] == JobStatus.CANCELLED
    mock_api.mock.clock.advance(60)

    assert mock_api.ok("stream", job_id) == {
        "id": job_id,
        "status": JobStatus.CANCELLED,
        "stream": [],
    }
    assert mock_api.status(job_id)["executionTime"] == 1000


# --- cancel, retry, purge, health ---------------------------------------------------------------


def test_cancel_a_queued_job(one_worker: MockApi) -> None:
    blocker = one_worker.run(sleep_ms=10_000)
    queued = one_worker.run()

    assert one_worker.ok("cancel", queued) == {"id": queued, "status": JobStatus.CANCELLED}

    assert one_worker.status(queued) == {"id": queued, "status": JobStatus.CANCELLED}
    one_worker.mock.clock.advance(10)
    assert one_worker.status(blocker)["status"] == JobStatus.COMPLETED
    assert one_worker.status(queued) == {"id": queued, "status": JobStatus.CANCELLED}


def test_cancel_a_running_job(one_worker: MockApi) -> None:
    job_id = one_worker.run(sleep_ms=10_000)
    one_worker.mock.clock.advance(3)

    # Production answers the cancel of a running job with its timings (captured 2026-09).
    assert one_worker.ok("cancel", job_id) == {
        "delayTime": 0,
        "executionTime": 3000,
        "id": job_id,
        "status": JobStatus.CANCELLED,
    }

    body = one_worker.status(job_id)
    assert (body["status"], body["executionTime"]) == (JobStatus.CANCELLED, 3000)
    assert one_worker.ok("health")["workers"]["idle"] == 1


def test_cancel_a_terminal_job_leaves_it_as_it_is(mock_api: MockApi) -> None:
    job_id = mock_api.run()
    before = mock_api.status(job_id)

    assert mock_api.ok("cancel", job_id) == {"id": job_id, "status": JobStatus.COMPLETED}
    assert mock_api.status(job_id) == before


@pytest.mark.parametrize(
    ("probe", "policy", "ended"),
    [
        ({"sleep_ms": 100, "fail": "flaky"}, None, JobStatus.FAILED),
        ({"sleep_ms": 60_000}, {"executionTimeout": 5000}, JobStatus.TIMED_OUT),
    ],
)
def test_retry_requeues_a_failed_or_timed_out_job(
    one_worker: MockApi, probe: dict[str, Any], policy: dict[str, Any] | None, ended: str
) -> None:
    job_id = one_worker.run(policy=policy, **probe)
    one_worker.mock.clock.advance(10)
    assert one_worker.status(job_id)["status"] == ended
    one_worker.run(sleep_ms=1000)  # keeps the worker busy: the retried job waits in the queue

    assert one_worker.ok("retry", job_id) == {"id": job_id, "status": JobStatus.IN_QUEUE}

    assert one_worker.status(job_id) == {"id": job_id, "status": JobStatus.IN_QUEUE}
    health = one_worker.ok("health")["jobs"]
    assert (health["retried"], health["inQueue"]) == (1, 1)
    one_worker.mock.clock.advance(120)
    assert one_worker.status(job_id)["status"] == ended


def test_retry_refuses_jobs_that_did_not_fail(one_worker: MockApi) -> None:
    completed = one_worker.run()
    one_worker.mock.clock.advance(1)
    running = one_worker.run(sleep_ms=60_000)
    queued = one_worker.run()
    cancelled = one_worker.run()
    one_worker.ok("cancel", cancelled)

    for job_id, status in [
        (completed, JobStatus.COMPLETED),
        (cancelled, JobStatus.CANCELLED),
        (running, JobStatus.IN_PROGRESS),
        (queued, JobStatus.IN_QUEUE),
    ]:
        message = one_worker.error(400, "retry", job_id)
        assert status in message
        assert "FAILED or TIMED_OUT" in message
        assert one_worker.status(job_id)["status"] == status
    assert one_worker.ok("health")["jobs"]["retried"] == 0


def test_purge_queue_removes_only_queued_jobs(one_worker: MockApi) -> None:
    running = one_worker.run(sleep_ms=4000)
    queued = [one_worker.run() for _ in range(3)]

    assert one_worker.ok("purge-queue") == {"removed": 3, "status": "completed"}

    assert all(one_worker.status(j)["status"] == JobStatus.CANCELLED for j in queued)
    assert one_worker.status(running)["status"] == JobStatus.IN_PROGRESS
    one_worker.mock.clock.advance(4)
    assert one_worker.status(running)["status"] == JobStatus.COMPLETED
    assert one_worker.ok("purge-queue") == {"removed": 0, "status": "completed"}


def test_health_counts_jobs_and_workers(one_worker: MockApi) -> None:
    one_worker.run(fail="x")
    one_worker.run()
    one_worker.run(sleep_ms=60_000)
    one_worker.run()

    assert one_worker.ok("health") == {
        "jobs": {"completed": 1, "failed": 1, "inProgress": 1, "inQueue": 1, "retried": 0},
        "workers": {
            "idle": 0,
            "initializing": 0,
            "ready": 0,
            "running": 1,
            "throttled": 0,
            "unhealthy": 0,
        },
    }


def test_each_endpoint_id_under_the_base_has_its_own_queue(mock_api: MockApi) -> None:
    other_url = mock_api.mock.base_url + "/another-endpoint"
    job_id = mock_api.ok("run", json={"input": {"sleep_ms": 1000}}, endpoint_url=other_url)["id"]

    assert mock_api.ok("health", endpoint_url=other_url)["jobs"]["inProgress"] == 1
    assert mock_api.ok("health")["jobs"]["inProgress"] == 0
    assert "not found" in mock_api.error(404, "status", job_id)


# --- policies, probe input, request errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        ({"executionTimeout": 4999}, "policy.executionTimeout"),
        ({"executionTimeout": "600000"}, "policy.executionTimeout"),
        ({"ttl": 9999}, "policy.ttl"),
        ({"ttl": 7 * 24 * 3600 * 1000 + 1}, "policy.ttl"),
        ({"lowPriority": 1}, "policy.lowPriority"),
        ("fast", "'policy'"),
    ],
)
@pytest.mark.parametrize("operation", ["run", "runsync"])
def test_bad_policy_values_are_refused_naming_the_key(
    mock_api: MockApi, operation: str, policy: Any, key: str
) -> None:
    message = mock_api.error(400, operation, json={"input": {}, "policy": policy})

    assert key in message
    assert mock_api.ok("health")["jobs"] == {
        "completed": 0,
        "failed": 0,
        "inProgress": 0,
        "inQueue": 0,
        "retried": 0,
    }
    assert mock_api.ok("runsync", json={"input": {}})["status"] == JobStatus.COMPLETED


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"{not json", "not valid JSON"),
        (b"{}", "'input'"),
        (b'{"input": [1]}', "'input'"),
        (b'{"input": {"x": "\xff"}}', "not valid UTF-8: byte 0xff at offset 17"),
    ],
)
def test_malformed_bodies_are_refused(mock_api: MockApi, content: bytes, named: str) -> None:
    message = mock_api.error(400, "run", content=content)

    assert named in message


def test_integers_past_64_bits_come_back_exact(mock_api: MockApi) -> None:
    big = [123456789012345678901234567890, -(2**63) - 1]
    content = b'{"input": {"echo": [%s]}}' % ", ".join(map(str, big)).encode()
    body = mock_api.ok("runsync", content=content)

    assert body["output"] == [{"echo": big}]


def test_probe_input_errors_fail_the_job_naming_the_key(mock_api: MockApi) -> None:
    body = mock_api.ok("runsync", json={"input": {"sleep_ms": "soon"}})

    assert body["status"] == JobStatus.FAILED
    assert "'sleep_ms'" in body["error"]


def test_policy_execution_timeout_times_the_job_out_exactly(mock_api: MockApi) -> None:
    start = mock_api.now

    body = mock_api.ok(
        "runsync", json={"input": {"sleep_ms": 60_000}, "policy": {"executionTimeout": 5000}}
    )

    assert (body["status"], body["executionTime"]) == (JobStatus.TIMED_OUT, 5000)
    assert mock_api.now - start == 5.0


# --- retention and ttl --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sync", "retention_s"), [(False, RETENTION_ASYNC_S), (True, RETENTION_SYNC_S)]
)
def test_results_expire_after_the_retention_period(
    mock_api: MockApi, sync: bool, retention_s: float
) -> None:
    job_id = mock_api.run(sync=sync)
    mock_api.mock.clock.advance(retention_s - 0.001)
    assert mock_api.status(job_id)["status"] == JobStatus.COMPLETED

    mock_api.mock.clock.advance(0.001)

    message = mock_api.error(404, "status", job_id)
    assert job_id in message
    assert mock_api.error(404, "stream", job_id)
    assert list(mock_api.mock.model.jobs()) == []


def test_retention_is_configurable(validator: ContractValidator) -> None:
    with single_worker(validator, retention_async_s=5.0, retention_sync_s=2.0) as api:
        run, runsync = api.run(), api.run(sync=True)
        api.mock.clock.advance(2)
        assert api.error(404, "status", runsync)
        assert api.status(run)["status"] == JobStatus.COMPLETED
        api.mock.clock.advance(3)
        assert api.error(404, "status", run)


def test_status_ttl_deletes_the_job_sooner(mock_api: MockApi) -> None:
    job_id = mock_api.run()

    assert mock_api.ok("status", job_id, params={"ttl": 1000})["status"] == JobStatus.COMPLETED
    mock_api.mock.clock.advance(0.999)
    assert mock_api.status(job_id)["status"] == JobStatus.COMPLETED
    mock_api.mock.clock.advance(0.001)
    assert mock_api.error(404, "status", job_id)


def test_policy_ttl_removes_a_running_job(mock_api: MockApi) -> None:
    job_id = mock_api.run(sleep_ms=60_000, policy={"ttl": 10_000})
    mock_api.mock.clock.advance(10)

    assert mock_api.error(404, "status", job_id)
    (record,) = mock_api.mock.terminal_jobs
    assert (record["id"], record["status"]) == (job_id, JobStatus.TIMED_OUT)


# --- the job log, determinism -------------------------------------------------------------------


def mixed_workload(api: MockApi) -> dict[str, dict[str, Any]]:
    """Run, runsync, failures, timeouts, cancels and a retry; return every job's final body."""
    ids = [
        api.run(sleep_ms=3000, echo="a"),
        api.run(sync=True, sleep_ms=250),
        api.run(fail="bad", sleep_ms=500),
        api.run(sleep_ms=60_000, policy={"executionTimeout": 5000}),
        api.run(chunks=3, chunk_interval_ms=200),
        api.run(sleep_ms=30_000),
        api.run(sleep_ms=1000),
        api.run(policy={"lowPriority": True}),
    ]
    api.ok("cancel", ids[5])
    api.ok("stream", ids[4])
    api.mock.clock.advance(6)
    api.ok("retry", ids[2])
    ids += [api.run(sync=True, sleep_ms=100_000, fail="late") for _ in range(2)]
    api.mock.clock.advance(120)
    return {job_id: api.status(job_id) for job_id in ids}


def test_the_job_log_matches_what_clients_saw(validator: ContractValidator) -> None:
    with mock_api_on(validator, workers_max=2, retention_sync_s=3600, seed=3) as api:
        seen = mixed_workload(api)
        terminal_jobs = api.mock.terminal_jobs

    last_record = {record["id"]: record for record in terminal_jobs}
    assert set(last_record) == set(seen)
    assert {body["status"] for body in seen.values()} == JobStatus.TERMINAL
    for job_id, body in seen.items():
        record = last_record[job_id]
        assert record["status"] == body["status"]
        assert record["delayTime"] == body.get("delayTime")
        assert record["executionTime"] == body.get("executionTime")
        assert record["workerId"] == body.get("workerId")
        assert record["endpointId"] == api.mock.endpoint_id
        assert record["sync"] == job_id.startswith("sync-")
    assert len(terminal_jobs) == len(seen) + 1  # the retried job ended twice


def test_same_seed_gives_the_same_ids_answers_and_job_log(validator: ContractValidator) -> None:
    def session(seed: int) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        with mock_api_on(validator, workers_max=2, retention_sync_s=3600, seed=seed) as api:
            return mixed_workload(api), api.mock.terminal_jobs

    first, again, other = session(11), session(11), session(12)

    assert first == again
    assert set(first[0]) != set(other[0])


# --- auth, methods, sizes -----------------------------------------------------------------------


def test_auth_takes_the_key_raw_or_as_bearer(validator: ContractValidator) -> None:
    with MockEndpoint(ENDPOINT_URL, SEEDED, api_key=API_KEY) as mock, httpx.Client() as client:
        api = MockApi(mock, client, validator)
        for headers in [{}, {"authorization": "Bearer wrong-key-42"}, {"authorization": ""}]:
            message = api.error(401, "health", headers=headers)
            assert "wrong-key-42" not in message
            assert API_KEY not in message
        assert api.ok("health", headers={"authorization": API_KEY})
        assert api.ok("health", headers=AUTH)
    assert API_KEY not in repr(mock.service)


@pytest.mark.parametrize("method", ["GET", "TRACE"])
def test_a_wrong_method_gets_405_naming_the_allowed_ones(mock_api: MockApi, method: str) -> None:
    response = mock_api.call("run", method=method)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "POST" in response.json()["error"]


def test_payload_limits_per_operation(mock_api: MockApi) -> None:
    eleven_mib = {"input": {"blob": "x" * (11 * 1024 * 1024)}}

    # Production answers an oversize /run with 400 and this problem body (captured 2026-09).
    oversize = mock_api.call("run", json=eleven_mib)
    assert oversize.status_code == 400
    assert oversize.json() == {
        "status": 400,
        "title": "Bad Request",
        "detail": "bad request: body: exceeded max body size of 10MiB",
    }
    assert mock_api.ok("runsync", json=eleven_mib)["status"] == JobStatus.COMPLETED
    twenty_one_mib = {"input": {"blob": "x" * (21 * 1024 * 1024)}}
    too_big = mock_api.call("runsync", json=twenty_one_mib)
    assert (too_big.status_code, too_big.json()["detail"]) == (
        400,
        "bad request: body: exceeded max body size of 20MiB",
    )


# --- the respx adapter itself -------------------------------------------------------------------


def test_async_client_is_served(mock: MockEndpoint, validator: ContractValidator) -> None:
    async def session() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(headers=AUTH) as client:
            run = await client.post(
                OPERATIONS["run"].url(mock.endpoint_url), json={"input": {"chunks": 2}}
            )
            job_id = run.json()["id"]
            stream = await client.get(OPERATIONS["stream"].url(mock.endpoint_url, job_id))
            runsync = await client.post(
                OPERATIONS["runsync"].url(mock.endpoint_url), json={"input": {"sleep_ms": 90_000}}
            )
            status = await client.get(OPERATIONS["status"].url(mock.endpoint_url, job_id))
            for name, response in [("run", run), ("stream", stream), ("runsync", runsync)]:
                assert validator.check_response(name, response.status_code, response.json()).ok
            return [run.json(), stream.json(), runsync.json(), status.json()]

    start = mock.clock.now
    run, stream, runsync, status = asyncio.run(session())

    assert run["status"] == JobStatus.IN_QUEUE
    assert [c["output"] for c in stream["stream"]] == [{"index": 0}, {"index": 1}]
    assert (runsync["status"], runsync["executionTime"]) == (JobStatus.COMPLETED, 90_000)
    assert mock.clock.now - start == 90.0
    assert status["status"] == JobStatus.COMPLETED


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1/mock-test/run",
        "http://127.0.0.1:9/v2x/mock-test/run",
        "http://127.0.0.1:9/v2",
        "http://127.0.0.2:9/v2/mock-test/run",
        "https://127.0.0.1:9/v2/mock-test/run",
        "http://127.0.0.1:10/v2/mock-test/run",
    ],
)
def test_requests_outside_the_base_url_are_not_swallowed(mock: MockEndpoint, url: str) -> None:
    with httpx.Client(headers=AUTH) as client, pytest.raises(respx.models.AllMockedAssertionError):
        client.post(url, json={"input": {}})

    assert mock.model.endpoints == {}
    assert mock.router.calls.call_count == 0


def test_another_respx_router_keeps_its_own_routes(mock_api: MockApi) -> None:
    with respx.mock(assert_all_called=True) as other:
        other.get("http://127.0.0.1:9/elsewhere").respond(json={"from": "other"})

        assert mock_api.client.get("http://127.0.0.1:9/elsewhere").json() == {"from": "other"}
        assert mock_api.ok("health")["jobs"]["completed"] == 0


def test_nothing_is_routed_after_the_context_exits(validator: ContractValidator) -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v2/closed"  # nothing listens there any more
    with MockEndpoint(url, SEEDED) as mock, httpx.Client(headers=AUTH, timeout=5) as client:
        assert MockApi(mock, client, validator).ok("health")["jobs"]["inQueue"] == 0

    with httpx.Client(headers=AUTH, timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.get(OPERATIONS["health"].url(url))


@pytest.mark.parametrize(
    "url", ["", "not a url", "https://api.runpod.ai", "https://api.runpod.ai/", "/v2/abc"]
)
def test_a_bad_endpoint_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="ENDPOINT_ID"):
        MockEndpoint(url)


def test_run_until_idle_finishes_and_expires_everything(mock_api: MockApi) -> None:
    for _ in range(5):
        mock_api.run(sleep_ms=120_000)

    mock_api.mock.run_until_idle()

    assert list(mock_api.mock.model.jobs()) == []
    assert [r["status"] for r in mock_api.mock.terminal_jobs] == [JobStatus.COMPLETED] * 5


def test_runpod_mock_fixture_comes_from_the_plugin(
    request: pytest.FixtureRequest, runpod_mock: MockEndpoint
) -> None:
    assert request.config.pluginmanager.has_plugin("runpod_testkit")
    assert "runpod_mock" not in globals()  # not this module's: the entry point provides it
    assert runpod_mock.endpoint_url == DEFAULT_MOCK_ENDPOINT_URL

    response = httpx.post(
        OPERATIONS["runsync"].url(runpod_mock.endpoint_url),
        json={"input": {"echo": "fixture"}},
        headers=AUTH,
    )

    assert response.status_code == 200
    assert response.json()["output"] == [{"echo": "fixture"}]


def test_the_module_docstring_example_is_true() -> None:
    """The example a reader copies first: a /runsync of a 90-second job, waited for."""
    from runpod_testkit.emulator import mock

    result = doctest.testmod(mock, verbose=False, report=True)
    assert result.attempted >= 3
    assert result.failed == 0


def test_the_job_log_has_no_run_times_for_a_job_that_never_ran() -> None:
    """Purged jobs end CANCELLED without running: `startedAt`, `endedAt`, `delayTime` and
    `executionTime` are null (README, --job-log); a job that ran has them all."""
    config = EmulatorConfig(workers_min=0, workers_max=1, cold_start_ms=100, seed=0)
    mock = MockEndpoint(config=config)
    with mock, httpx.Client(base_url=mock.endpoint_url, headers={"authorization": "key"}) as api:
        running = api.post("/run", json={"input": {"sleep_ms": 1_000}}).json()["id"]
        queued = [api.post("/run", json={"input": {}}).json()["id"] for _ in range(2)]
        mock.clock.advance(0.5)  # the worker is up and holds the first job
        assert api.get(f"/status/{running}").json()["status"] == JobStatus.IN_PROGRESS
        assert api.post("/purge-queue").json()["removed"] == 2
        mock.clock.advance(1.0)
        assert api.get(f"/status/{running}").json()["status"] == JobStatus.COMPLETED
    records = {record["id"]: record for record in mock.terminal_jobs}
    assert set(records) == {running, *queued}
    for job_id in queued:
        record = records[job_id]
        assert record["status"] == JobStatus.CANCELLED
        assert isinstance(record["submittedAt"], int)
        never_ran = ("startedAt", "endedAt", "delayTime", "executionTime", "workerId")
        assert {name: record[name] for name in never_ran} == dict.fromkeys(never_ran)
    ran = records[running]
    assert ran["endedAt"] - ran["startedAt"] == ran["executionTime"] == 1_000
    assert ran["startedAt"] - ran["submittedAt"] == ran["delayTime"] == 100
