"""The httpx clients, offline: respx routes (and one loopback server for real-socket logging)."""

from __future__ import annotations

import asyncio
import email.utils
import http.server
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import respx

from runpod_testkit.client import (
    DEFAULT_TIMEOUT_S,
    ApiError,
    ApiResponse,
    AsyncRunpodClient,
    Backoff,
    JobTimeoutError,
    RequestTimeout,
    RunpodClient,
    TransportError,
    parse_retry_after,
)
from runpod_testkit.config import ConfigError
from runpod_testkit.operations import OPERATIONS, QueryParamError

ENDPOINT = "http://127.0.0.1:8000/v2/abc123"
CANARY = "rpa_CANARY_7f3c9e1d2b4a58e6"
EXAMPLES = Path(__file__).parent / "data" / "examples"
JOB = "job-1"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


class FakeTime:
    """A clock that only moves when the client sleeps: polling and backoff never really wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ENDPOINT, assert_all_called=False) as mock_router:
        yield mock_router


@pytest.fixture
def client(router: respx.MockRouter, fake_time: FakeTime) -> Iterator[RunpodClient]:
    with RunpodClient(ENDPOINT, CANARY, sleep=fake_time.sleep, clock=fake_time.clock) as c:
        yield c


def make_async_client(fake_time: FakeTime, **options: Any) -> AsyncRunpodClient:
    return AsyncRunpodClient(
        ENDPOINT, CANARY, sleep=fake_time.async_sleep, clock=fake_time.clock, **options
    )


class Documented(NamedTuple):
    """The documented request of one operation, and how the client is asked to send it."""

    name: str
    call: Callable[[RunpodClient], ApiResponse]
    method: str
    path: str
    query: dict[str, str]


# docs/operations/, spelled out here as an oracle that
# does not depend on the operations table.
DOCUMENTED_CALLS = [
    Documented("run", lambda c: c.run({"prompt": "hi"}), "POST", "/run", {}),
    Documented("runsync", lambda c: c.runsync({"prompt": "hi"}, wait_ms=120_000), "POST",
               "/runsync", {"wait": "120000"}),
    Documented("status", lambda c: c.status(JOB, ttl_ms=6000), "GET", f"/status/{JOB}",
               {"ttl": "6000"}),
    Documented("status-sync", lambda c: c.status_sync(JOB, wait_ms=2000), "GET",
               f"/status-sync/{JOB}", {"wait": "2000"}),
    Documented("stream", lambda c: c.stream(JOB, wait_ms=1000), "GET", f"/stream/{JOB}",
               {"wait": "1000"}),
    Documented("cancel", lambda c: c.cancel(JOB), "POST", f"/cancel/{JOB}", {}),
    Documented("retry", lambda c: c.retry(JOB), "POST", f"/retry/{JOB}", {}),
    Documented("purge-queue", lambda c: c.purge_queue(), "POST", "/purge-queue", {}),
    Documented("health", lambda c: c.health(), "GET", "/health", {}),
]  # fmt: skip
CallSync = Callable[[RunpodClient], ApiResponse]


def test_every_operation_of_the_table_is_covered() -> None:
    assert {case.name for case in DOCUMENTED_CALLS} == set(OPERATIONS)


@pytest.mark.parametrize("case", DOCUMENTED_CALLS, ids=[case.name for case in DOCUMENTED_CALLS])
def test_each_operation_sends_the_documented_request(
    router: respx.MockRouter, client: RunpodClient, case: Documented
) -> None:
    route = router.route(method=case.method, path=case.path).respond(200, json={"ok": 1})
    result = case.call(client)
    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url).startswith(f"{ENDPOINT}{case.path}")
    assert dict(request.url.params) == case.query
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert request.headers["Accept"] == "application/json"
    assert result.operation == case.name
    assert result.method == case.method
    assert result.status_code == 200
    assert result.json == {"ok": 1}
    if case.name in ("run", "runsync"):
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == {"input": {"prompt": "hi"}}
    else:
        assert request.content == b""


def test_raw_auth_scheme_sends_the_bare_key(router: respx.MockRouter) -> None:
    route = router.get("/health").respond(200, json={})
    with RunpodClient(ENDPOINT, CANARY, auth_scheme="raw") as raw_client:
        raw_client.health()
    assert route.calls.last.request.headers["Authorization"] == CANARY


def test_unknown_auth_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match=r"auth_scheme must be 'bearer'.*or 'raw'"):
        RunpodClient(ENDPOINT, CANARY, auth_scheme="basic")  # type: ignore[arg-type]


@pytest.mark.parametrize("operation_name", ["status", "status-sync", "stream"])
def test_job_reads_can_be_sent_as_post(
    router: respx.MockRouter, client: RunpodClient, operation_name: str
) -> None:
    route = router.post(f"/{operation_name}/{JOB}").respond(200, json={"status": "IN_QUEUE"})
    method_for: dict[str, Callable[..., ApiResponse]] = {
        "status": client.status,
        "status-sync": client.status_sync,
        "stream": client.stream,
    }
    result = method_for[operation_name](JOB, method="post")
    assert route.call_count == 1
    assert result.method == "POST"


def test_a_method_the_table_does_not_list_is_refused_unless_unvalidated(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    route = router.post("/health").respond(405)
    with pytest.raises(ValueError, match=r"'health' accepts GET, not POST.*validate=False"):
        client.request("health", method="POST")
    assert route.call_count == 0
    assert client.request("health", method="POST", validate=False).status_code == 405


def test_no_key_and_custom_headers_for_negative_tests(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    route = router.get("/health").respond(401)
    assert client.health(authenticate=False).status_code == 401
    assert "Authorization" not in route.calls.last.request.headers
    client.health(headers={"Authorization": "Bearer wrong-key", "X-Trace": "t1"})
    sent = route.calls.last.request.headers
    assert sent["Authorization"] == "Bearer wrong-key"
    assert sent["X-Trace"] == "t1"
    keyless = RunpodClient(ENDPOINT)
    keyless.health()
    keyless.close()
    assert "Authorization" not in route.calls.last.request.headers


def test_job_id_is_one_quoted_path_segment(router: respx.MockRouter, client: RunpodClient) -> None:
    route = router.get(path__startswith="/status/").respond(404)
    client.status("a/b?c")
    assert route.calls.last.request.url.raw_path == b"/v2/abc123/status/a%2Fb%3Fc"


def test_missing_job_id_is_refused(client: RunpodClient) -> None:
    with pytest.raises(ValueError, match="'cancel' needs a job id"):
        client.cancel("")


# --------------------------------------------------------------------------- query checks


@pytest.mark.parametrize(
    ("call", "expected_message"),
    [
        (lambda c: c.runsync({}, wait_ms=999), r"'wait' must be from 1000 to 300000"),
        (lambda c: c.runsync({}, wait_ms=300_001), r"'wait' must be from 1000 to 300000"),
        (lambda c: c.status(JOB, ttl_ms=0), r"'ttl' must be from 1000"),
        (lambda c: c.status_sync(JOB, wait_ms=90_001), r"'wait' must be from 1000 to 90000"),
        (lambda c: c.stream(JOB, wait_ms=-1), r"'wait' must be from 0 to 60000"),
        (
            lambda c: c.request("status", job_id=JOB, params={"wait": 5}),
            r"'status' takes no query parameter 'wait' \(it takes: ttl\)",
        ),
        (
            lambda c: c.request("health", params={"x": "1"}),
            r"takes no query parameter 'x' \(it takes: none\)",
        ),
        (
            lambda c: c.request("runsync", params={"wait": "soon"}),
            r"'wait' must be an integer number of milliseconds",
        ),
    ],
)
def test_query_parameters_are_checked_before_sending(
    router: respx.MockRouter, client: RunpodClient, call: CallSync, expected_message: str
) -> None:
    route = router.route().respond(200)
    with pytest.raises(ValueError, match=expected_message) as caught:
        call(client)
    assert route.call_count == 0
    if "must be" in expected_message:
        assert isinstance(caught.value, QueryParamError)


def test_unvalidated_query_is_sent_as_is(router: respx.MockRouter, client: RunpodClient) -> None:
    route = router.post("/runsync").respond(400, json={"error": "bad wait"})
    result = client.request("runsync", params={"wait": 0}, body={"input": {}}, validate=False)
    assert route.calls.last.request.url.params["wait"] == "0"
    assert result.status_code == 400


def test_policy_is_checked_for_typed_submissions(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    route = router.post("/run").respond(200, json={"id": JOB, "status": "IN_QUEUE"})
    with pytest.raises(ValueError, match=r"policy\['ttl'\] must be .* from 10000"):
        client.run({}, policy={"ttl": 5})
    with pytest.raises(ValueError, match=r"policy\['executionTimeout'\]"):
        client.run({}, policy={"executionTimeout": True})
    assert route.call_count == 0
    client.run(body={"input": {}, "policy": {"ttl": 5}})
    assert json.loads(route.calls.last.request.content)["policy"] == {"ttl": 5}


# --------------------------------------------------------------------------- timeouts


def sent_read_timeout(route: respx.Route) -> float:
    timeout: dict[str, float] = route.calls.last.request.extensions["timeout"]
    return timeout["read"]


def test_held_requests_get_a_timeout_beyond_their_wait(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    runsync = router.post("/runsync").respond(200, json={})
    client.runsync({}, wait_ms=120_000)
    assert sent_read_timeout(runsync) == pytest.approx(120 + DEFAULT_TIMEOUT_S)
    client.runsync({})  # no ?wait: the server holds for the documented default, 90 s
    assert "wait" not in runsync.calls.last.request.url.params
    assert sent_read_timeout(runsync) == pytest.approx(90 + DEFAULT_TIMEOUT_S)
    client.runsync({}, wait_ms=1000, timeout=2.5)
    assert sent_read_timeout(runsync) == pytest.approx(1 + 2.5)
    status = router.get(f"/status/{JOB}").respond(200, json={})
    client.status(JOB)
    assert sent_read_timeout(status) == pytest.approx(DEFAULT_TIMEOUT_S)


@pytest.mark.parametrize("bad_timeout", [0, -1.0, float("nan"), float("inf")])
def test_timeout_must_be_positive(bad_timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        RunpodClient(ENDPOINT, CANARY, timeout=bad_timeout)


def test_timeout_becomes_a_clear_error(router: respx.MockRouter, client: RunpodClient) -> None:
    router.post("/run").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(RequestTimeout) as caught:
        client.run({}, timeout=3)
    message = str(caught.value)
    assert message.startswith(f"run: POST {ENDPOINT}/run got no response within 3 s")
    assert "ReadTimeout" in message
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.operation == "run"
    assert caught.value.timeout_s == 3


def test_connection_failure_becomes_a_transport_error(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    router.get("/health").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(TransportError, match=r"health: GET .*/health failed: ConnectError"):
        client.health()


# --------------------------------------------------------------------------- results


def test_completed_job_accessors(router: respx.MockRouter, client: RunpodClient) -> None:
    body = example("status.completed")
    router.get(f"/status/{body['id']}").respond(200, json=body, headers={"X-Served-By": "t"})
    result = client.status(body["id"])
    assert result.ok
    assert result.is_json
    assert result.json == body
    assert result.job_id == body["id"]
    assert result.status == "COMPLETED"
    assert result.is_terminal
    assert result.delay_time_ms == 31618
    assert result.execution_time_ms == 1437
    assert result.output == body["output"]
    assert result.error is None
    assert result.headers["X-Served-By"] == "t"
    assert isinstance(result.response, httpx.Response)
    assert result.elapsed_ms >= 0
    assert result.attempts == 1
    assert result.raise_for_status() is result


def test_failed_job_and_worker_id_accessors(router: respx.MockRouter, client: RunpodClient) -> None:
    failed = example("status.failed")
    router.get(f"/status/{failed['id']}").respond(200, json=failed)
    result = client.status(failed["id"])
    assert (result.status, result.error, result.is_terminal) == ("FAILED", failed["error"], True)
    sync = example("runsync.completed.worker-id")
    router.post("/runsync").respond(200, json=sync)
    assert client.runsync({}).worker_id == sync["workerId"]


def test_stream_accessors(router: respx.MockRouter, client: RunpodClient) -> None:
    chunks = example("stream.chunks")
    route = router.get(f"/stream/{JOB}")
    route.respond(200, json={"status": "IN_PROGRESS", "stream": chunks})
    result = client.stream(JOB)
    assert result.stream_chunks == chunks
    assert result.stream_outputs == [chunks[0]["output"]]
    route.respond(200, json=chunks)  # the documentation's bare list
    assert client.stream(JOB).stream_chunks == chunks
    route.respond(200, json=example("stream.envelope.completed-drained"))
    drained = client.stream(JOB)
    assert (drained.status, drained.stream_chunks, drained.stream_outputs) == ("COMPLETED", [], [])


@pytest.mark.parametrize("status_code", [400, 401, 404, 429, 500, 503])
def test_error_statuses_are_returned_not_raised(
    router: respx.MockRouter, client: RunpodClient, status_code: int
) -> None:
    router.get(f"/status/{JOB}").respond(status_code, json={"error": "nope"})
    result = client.status(JOB, retry_429=False)
    assert result.status_code == status_code
    assert not result.ok
    assert result.json == {"error": "nope"}
    assert result.job_id is None
    with pytest.raises(ApiError) as caught:
        result.raise_for_status()
    assert caught.value.status_code == status_code
    assert caught.value.response is result
    assert f"status: GET {ENDPOINT}/status/{JOB} answered {status_code}" in str(caught.value)
    assert "nope" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"Internal Server Error", "text/plain"),
        (b"", "application/json"),
        (b'{"id": "job-1", "status": ', "application/json"),
        (b"\xff\xfe\x00garbage", "application/octet-stream"),
        (b"NaN", "application/json"),
    ],
)
def test_bodies_that_are_not_json(
    router: respx.MockRouter, client: RunpodClient, content: bytes, content_type: str
) -> None:
    router.post("/run").respond(500, content=content, headers={"Content-Type": content_type})
    result = client.run({})
    assert result.status_code == 500
    assert not result.is_json
    assert result.json is None
    assert result.content == content
    assert (result.job_id, result.status, result.output, result.stream_chunks) == (
        None,
        None,
        None,
        None,
    )
    assert result.stream_outputs == []
    assert "ApiResponse(operation='run', status_code=500" in repr(result)


@pytest.mark.parametrize(
    "body",
    [
        {"id": 5, "status": ["COMPLETED"], "delayTime": "12", "executionTime": True},
        {"id": None, "status": None, "delayTime": 1.5, "stream": {"output": 1}},
        ["COMPLETED"],
        "COMPLETED",
        None,
        7,
    ],
)
def test_accessors_do_not_crash_on_wrong_types(
    router: respx.MockRouter, client: RunpodClient, body: Any
) -> None:
    router.get(f"/status/{JOB}").respond(200, content=json.dumps(body).encode())
    result = client.status(JOB)
    assert result.is_json
    assert result.json == body
    assert result.job_id is None
    assert result.status is None
    assert not result.is_terminal
    assert result.delay_time_ms is None
    assert result.execution_time_ms is None
    assert result.worker_id is None
    assert result.stream_outputs == []


# --------------------------------------------------------------------------- submissions


def test_submission_bodies(router: respx.MockRouter, client: RunpodClient) -> None:
    route = router.post("/run").respond(200, json={"id": JOB, "status": "IN_QUEUE"})

    def sent() -> Any:
        return json.loads(route.calls.last.request.content)

    client.run()
    assert sent() == {"input": {}}
    client.run(
        {"sleep_ms": 5},
        webhook="https://example.invalid/hook",
        policy={"ttl": 60_000, "executionTimeout": 5_000, "lowPriority": True},
        s3_config={"bucketName": "b"},
    )
    assert sent() == {
        "input": {"sleep_ms": 5},
        "webhook": "https://example.invalid/hook",
        "policy": {"ttl": 60_000, "executionTimeout": 5_000, "lowPriority": True},
        "s3Config": {"bucketName": "b"},
    }
    client.run(body={"input": [1, 2]})
    assert sent() == {"input": [1, 2]}
    client.run(body=[])
    assert sent() == []
    client.run(content=b'{"input": {')
    assert route.calls.last.request.content == b'{"input": {'
    assert route.calls.last.request.headers["Content-Type"] == "application/json"
    client.run(content="{}", headers={"Content-Type": "text/plain"})
    assert route.calls.last.request.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    "arguments",
    [
        {"input": {}, "body": {"input": {}}},
        {"body": {"input": {}}, "webhook": "https://x.invalid"},
        {"content": b"{}", "input": {}},
        {"content": b"{}", "body": {}},
        {"content": b"{}", "policy": {}},
    ],
)
def test_conflicting_submission_arguments_are_refused(
    client: RunpodClient, arguments: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"not both|do not combine"):
        client.run(**arguments)


def test_request_refuses_body_and_content_together(client: RunpodClient) -> None:
    with pytest.raises(ValueError, match="either body="):
        client.request("run", body={}, content=b"{}")


# --------------------------------------------------------------------------- 429


def test_429_with_retry_after_seconds_then_200(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.post("/run")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json={"id": JOB, "status": "IN_QUEUE"}),
    ]
    result = client.run({})
    assert result.status_code == 200
    assert result.job_id == JOB
    assert fake_time.sleeps == [3.0, 0.0]
    assert result.attempts == 3
    assert result.retry_wait_s == 3.0
    assert route.call_count == 3


def test_429_with_retry_after_http_date(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    past = email.utils.formatdate(0, usegmt=True)
    router.get("/health").side_effect = [
        httpx.Response(429, headers={"Retry-After": past}),
        httpx.Response(200, json={}),
    ]
    assert client.health().status_code == 200
    assert fake_time.sleeps == [0.0]


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    router: respx.MockRouter, fake_time: FakeTime
) -> None:
    router.get(f"/status/{JOB}").side_effect = [httpx.Response(429)] * 4 + [
        httpx.Response(200, json={"status": "IN_QUEUE"})
    ]
    backoff = Backoff(max_retries=5, base_delay_s=1.0, max_backoff_s=5.0, max_total_s=100)
    with RunpodClient(ENDPOINT, CANARY, backoff=backoff, sleep=fake_time.sleep) as c:
        assert c.status(JOB).status_code == 200
    ceilings = [1.0, 2.0, 4.0, 5.0]  # base * 2**n, capped at max_backoff_s
    assert len(fake_time.sleeps) == len(ceilings)
    for slept, ceiling in zip(fake_time.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


def test_429_exhaustion_returns_the_last_429(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.post("/runsync").respond(429, headers={"Retry-After": "1"}, json={"e": 1})
    result = client.runsync({})
    assert result.status_code == 429
    assert route.call_count == 1 + Backoff().max_retries
    assert fake_time.sleeps == [1.0] * Backoff().max_retries
    assert result.attempts == 6
    with pytest.raises(ApiError, match="answered 429 Too Many Requests after 6 attempts"):
        result.raise_for_status()


@pytest.mark.parametrize(
    ("backoff", "retry_after", "expected_sleeps"),
    [
        (Backoff(max_backoff_s=30, max_total_s=30), "20", [20.0]),  # a 2nd wait would pass 30 s
        (Backoff(max_backoff_s=10), "11", []),  # the server asks for more than we may wait
        (Backoff(max_retries=0), "1", []),  # retrying turned off
    ],
)
def test_429_retry_time_is_bounded(
    router: respx.MockRouter,
    fake_time: FakeTime,
    backoff: Backoff,
    retry_after: str,
    expected_sleeps: list[float],
) -> None:
    route = router.get("/health").respond(429, headers={"Retry-After": retry_after})
    with RunpodClient(ENDPOINT, CANARY, backoff=backoff, sleep=fake_time.sleep) as c:
        assert c.health().status_code == 429
    assert fake_time.sleeps == expected_sleeps
    assert route.call_count == len(expected_sleeps) + 1


def test_retry_429_false_returns_at_once(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.post(f"/cancel/{JOB}").respond(429, headers={"Retry-After": "1"})
    assert client.cancel(JOB, retry_429=False).status_code == 429
    assert route.call_count == 1
    assert fake_time.sleeps == []


def test_other_errors_are_not_retried(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.post("/run").respond(503, headers={"Retry-After": "1"})
    assert client.run({}).status_code == 503
    assert route.call_count == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
        ("Thu, 01 Jan 1970 00:00:10 GMT", 5.0),
        ("Thu, 01 Jan 1970 00:00:01 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=5.0) == expected


def test_backoff_refuses_negative_settings() -> None:
    with pytest.raises(ValueError, match=r"Backoff\.max_total_s must be a finite number >= 0"):
        Backoff(max_total_s=-1)


# --------------------------------------------------------------------------- helpers


def job(status: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": JOB, "status": status, **fields})


def stream_answer(status: str, *outputs: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": status, "stream": [{"output": o} for o in outputs]})


def test_wait_for_terminal_polls_until_a_terminal_status(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.get(f"/status/{JOB}")
    route.side_effect = [
        job("IN_QUEUE"),
        job("RUNNING"),  # unknown states are not terminal
        job("IN_PROGRESS"),
        job("COMPLETED", output={"echo": 1}, delayTime=3, executionTime=4),
    ]
    result = client.wait_for_terminal(JOB, timeout_s=10, poll_interval_s=0.5)
    assert result.status == "COMPLETED"
    assert result.output == {"echo": 1}
    assert route.call_count == 4
    assert fake_time.sleeps == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("terminal", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_wait_for_terminal_stops_on_every_terminal_state(
    router: respx.MockRouter, client: RunpodClient, terminal: str
) -> None:
    router.get(f"/status/{JOB}").side_effect = [job("IN_PROGRESS"), job(terminal)]
    assert client.wait_for_terminal(JOB, timeout_s=5).status == terminal


def test_wait_for_terminal_times_out_naming_job_and_state(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.get(f"/status/{JOB}").mock(return_value=job("IN_PROGRESS"))
    with pytest.raises(JobTimeoutError) as caught:
        client.wait_for_terminal(JOB, timeout_s=2.0, poll_interval_s=0.5)
    error = caught.value
    assert f"job '{JOB}' is still IN_PROGRESS after 2 s" in str(error)
    assert (error.job_id, error.last_status, error.polls) == (JOB, "IN_PROGRESS", 5)
    assert isinstance(error, TimeoutError)
    assert route.call_count == 5
    assert sum(fake_time.sleeps) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("answer", "expected_message"),
    [
        (httpx.Response(404, json={"error": "job not found"}), "answered 404"),
        (httpx.Response(200, json={"id": JOB}), "no job status"),
        (httpx.Response(200, content=b"<html>"), "no job status"),
    ],
)
def test_wait_for_terminal_raises_on_an_unusable_answer(
    router: respx.MockRouter, client: RunpodClient, answer: httpx.Response, expected_message: str
) -> None:
    router.get(f"/status/{JOB}").mock(return_value=answer)
    with pytest.raises(ApiError, match=expected_message):
        client.wait_for_terminal(JOB, timeout_s=5)


def test_stream_until_drained_follows_the_drain_protocol(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    route = router.get(f"/stream/{JOB}")
    route.side_effect = [
        stream_answer("IN_QUEUE"),
        stream_answer("IN_PROGRESS", {"index": 0}),
        stream_answer("IN_PROGRESS"),
        stream_answer("IN_PROGRESS", {"index": 1}, {"index": 2}),
        stream_answer("COMPLETED", {"index": 3}),  # terminal, but not yet drained
        stream_answer("COMPLETED"),
    ]
    drain = client.stream_until_drained(JOB, timeout_s=10, poll_interval_s=0.25)
    chunks = list(drain)
    assert [chunk["output"] for chunk in chunks] == [{"index": i} for i in range(4)]
    assert drain.final is not None
    assert drain.final.status == "COMPLETED"
    assert drain.polls == route.call_count == 6
    assert fake_time.sleeps == [0.25, 0.25]  # only after the two empty polls
    assert list(drain) == []


def test_stream_until_drained_ends_on_failed_or_cancelled(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    router.get(f"/stream/{JOB}").side_effect = [
        stream_answer("IN_PROGRESS", "a"),
        stream_answer("CANCELLED"),
    ]
    drain = client.stream_until_drained(JOB, timeout_s=5)
    assert [chunk["output"] for chunk in drain] == ["a"]
    assert drain.final is not None
    assert drain.final.status == "CANCELLED"


def test_stream_until_drained_times_out(
    router: respx.MockRouter, client: RunpodClient, fake_time: FakeTime
) -> None:
    router.get(f"/stream/{JOB}").mock(return_value=stream_answer("IN_PROGRESS"))
    drain = client.stream_until_drained(JOB, timeout_s=1.0, poll_interval_s=0.25)
    with pytest.raises(JobTimeoutError, match=f"job '{JOB}' is still IN_PROGRESS after 1 s"):
        list(drain)
    assert drain.polls == 5
    assert drain.final is None


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"status": "COMPLETED"}),
        httpx.Response(200, json=[{"output": 1}]),
        httpx.Response(500, text="Internal Server Error"),
    ],
)
def test_stream_until_drained_raises_on_an_unusable_answer(
    router: respx.MockRouter, client: RunpodClient, answer: httpx.Response
) -> None:
    router.get(f"/stream/{JOB}").mock(return_value=answer)
    with pytest.raises(ApiError, match=f"job '{JOB}'"):
        list(client.stream_until_drained(JOB, timeout_s=5))


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_helpers_refuse_bad_durations(client: RunpodClient, bad: float) -> None:
    with pytest.raises(ValueError, match="timeout_s must be"):
        client.wait_for_terminal(JOB, timeout_s=bad)
    with pytest.raises(ValueError, match="poll_interval_s must be"):
        client.stream_until_drained(JOB, poll_interval_s=bad)


# --------------------------------------------------------------------------- async


def test_async_client_sends_every_operation(router: respx.MockRouter, fake_time: FakeTime) -> None:
    for case in DOCUMENTED_CALLS:
        router.route(method=case.method, path=case.path).respond(200, json={"status": "x"})

    async def main() -> list[ApiResponse]:
        async with make_async_client(fake_time, auth_scheme="raw") as c:
            return [
                await c.run({"prompt": "hi"}),
                await c.runsync({"prompt": "hi"}, wait_ms=120_000),
                await c.status(JOB, ttl_ms=6000),
                await c.status_sync(JOB, wait_ms=2000),
                await c.stream(JOB, wait_ms=1000, method="POST"),
                await c.cancel(JOB),
                await c.retry(JOB),
                await c.purge_queue(),
                await c.health(),
            ]

    router.post(f"/stream/{JOB}").respond(200, json={"status": "x"})
    results = asyncio.run(main())
    assert [r.operation for r in results] == [case.name for case in DOCUMENTED_CALLS]
    assert all(r.status_code == 200 for r in results)
    assert results[4].method == "POST"
    sent = [call.request for call in router.calls]
    assert all(request.headers["Authorization"] == CANARY for request in sent)
    assert [dict(request.url.params) for request in sent] == [
        case.query for case in DOCUMENTED_CALLS
    ]
    with pytest.raises(ValueError, match="'wait' must be from 1000"):
        asyncio.run(make_async_client(fake_time).runsync({}, wait_ms=1))


def test_async_429_backoff_uses_the_injected_sleep(
    router: respx.MockRouter, fake_time: FakeTime
) -> None:
    router.post("/run").side_effect = [
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, json={"id": JOB, "status": "IN_QUEUE"}),
    ]

    async def main() -> ApiResponse:
        async with make_async_client(fake_time) as c:
            return await c.run({})

    result = asyncio.run(main())
    assert (result.status_code, result.attempts) == (200, 2)
    assert fake_time.sleeps == [2.0]


def test_async_timeout_becomes_a_clear_error(router: respx.MockRouter, fake_time: FakeTime) -> None:
    router.get("/health").mock(side_effect=httpx.ConnectTimeout("slow"))

    async def main() -> None:
        async with make_async_client(fake_time) as c:
            await c.health()

    with pytest.raises(RequestTimeout, match=r"health: GET .* got no response within 10 s"):
        asyncio.run(main())


def test_async_helpers(router: respx.MockRouter, fake_time: FakeTime) -> None:
    router.get(f"/status/{JOB}").side_effect = [job("IN_QUEUE"), job("COMPLETED", output=1)]
    router.get(f"/stream/{JOB}").side_effect = [
        stream_answer("IN_PROGRESS"),
        stream_answer("IN_PROGRESS", 1, 2),
        stream_answer("COMPLETED"),
    ]

    async def main() -> tuple[ApiResponse, list[Any], str | None]:
        async with make_async_client(fake_time) as c:
            final = await c.wait_for_terminal(JOB, timeout_s=5, poll_interval_s=1)
            drain = c.stream_until_drained(JOB, timeout_s=5, poll_interval_s=0.5)
            chunks = [chunk async for chunk in drain]
            return final, chunks, drain.final.status if drain.final else None

    final, chunks, stream_status = asyncio.run(main())
    assert (final.status, final.output) == ("COMPLETED", 1)
    assert [chunk["output"] for chunk in chunks] == [1, 2]
    assert stream_status == "COMPLETED"
    assert fake_time.sleeps == [1, 0.5]


def test_async_wait_for_terminal_times_out(router: respx.MockRouter, fake_time: FakeTime) -> None:
    router.get(f"/status/{JOB}").mock(return_value=job("IN_QUEUE"))
    router.get(f"/stream/{JOB}").mock(return_value=stream_answer("IN_QUEUE"))

    async def wait() -> None:
        async with make_async_client(fake_time) as c:
            await c.wait_for_terminal(JOB, timeout_s=1, poll_interval_s=0.5)

    async def drain() -> None:
        async with make_async_client(fake_time) as c:
            async for _chunk in c.stream_until_drained(JOB, timeout_s=1, poll_interval_s=0.5):
                pass

    with pytest.raises(JobTimeoutError, match="still IN_QUEUE after 1 s"):
        asyncio.run(wait())
    with pytest.raises(JobTimeoutError, match=r"still IN_QUEUE after 1 s \(3 stream call"):
        asyncio.run(drain())


# --------------------------------------------------------------------------- lifecycle


def test_context_managers_close_their_own_http_clients(fake_time: FakeTime) -> None:
    with RunpodClient(ENDPOINT, CANARY) as sync_client:
        inner = sync_client._http
        assert not inner.is_closed
    assert inner.is_closed

    async def main() -> httpx.AsyncClient:
        async with make_async_client(fake_time) as async_client:
            return async_client._http

    assert asyncio.run(main()).is_closed


def test_a_borrowed_http_client_is_left_open(router: respx.MockRouter) -> None:
    router.get("/health").respond(200, json={})
    with httpx.Client() as borrowed:
        with RunpodClient(ENDPOINT, CANARY, http_client=borrowed) as c:
            assert c.health().ok
        assert not borrowed.is_closed
        with pytest.raises(ValueError, match="either transport= or http_client="):
            RunpodClient(
                ENDPOINT,
                http_client=borrowed,
                transport=httpx.MockTransport(lambda request: httpx.Response(200)),
            )


def test_a_transport_can_be_injected() -> None:
    mock_router = respx.MockRouter(base_url=ENDPOINT)
    mock_router.get("/health").respond(200, json={"jobs": {}, "workers": {}})
    transport = httpx.MockTransport(mock_router.handler)
    with RunpodClient(ENDPOINT, CANARY, transport=transport) as c:
        assert c.health().json == {"jobs": {}, "workers": {}}
    assert mock_router.calls.call_count == 1


def test_from_env_builds_a_configured_client(router: respx.MockRouter) -> None:
    route = router.get("/health").respond(200, json={})
    env = {"RUNPOD_ENDPOINT_URL": ENDPOINT + "/", "RUNPOD_API_KEY": CANARY}
    with RunpodClient.from_env(env=env, timeout=3.0) as c:
        assert (c.endpoint_url, c.endpoint_id, c.timeout_s) == (ENDPOINT, "abc123", 3.0)
        c.health()
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {CANARY}"
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        AsyncRunpodClient.from_env(env={"ENDPOINT_ID": "abc"})
    keyless = AsyncRunpodClient.from_env(env={"ENDPOINT_ID": "abc"}, require_api_key=False)
    assert keyless.endpoint_url == "https://api.runpod.ai/v2/abc"
    assert not keyless.has_api_key
    asyncio.run(keyless.aclose())


def test_bad_endpoint_url_is_refused_by_the_constructor() -> None:
    with pytest.raises(ConfigError, match="endpoint_url looks like the URL of the operation"):
        RunpodClient("http://127.0.0.1:8000/v2/abc/run", CANARY)


# --------------------------------------------------------------------------- the key stays secret


def test_key_is_redacted_from_reprs_errors_and_echoing_servers(
    router: respx.MockRouter, client: RunpodClient
) -> None:
    echo = {"error": f"bad key {CANARY}", "id": CANARY}
    router.get("/health").respond(401, json=echo)
    router.post("/run").mock(side_effect=httpx.ConnectError(f"refused {CANARY}"))
    router.get(f"/status/{JOB}").mock(side_effect=httpx.ReadTimeout(f"slow {CANARY}"))
    result = client.health()
    with pytest.raises(ApiError) as api_error:
        result.raise_for_status()
    with pytest.raises(TransportError) as transport_error:
        client.run({})
    with pytest.raises(RequestTimeout) as timeout_error:
        client.status(JOB)
    texts = [
        repr(client),
        str(client),
        repr(result),
        str(api_error.value),
        repr(api_error.value),
        str(transport_error.value),
        str(timeout_error.value),
        repr(result.headers),
        repr(result.response.request.headers),
    ]
    assert "api_key='***'" in repr(client)
    assert all(CANARY not in text for text in texts), texts
    assert "***" in str(api_error.value)


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    """A loopback endpoint that records the Authorization header it receives."""

    received: list[str | None]

    def do_GET(self) -> None:
        self.received.append(self.headers.get("Authorization"))
        body = b'{"jobs": {}, "workers": {}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return


@pytest.fixture
def loopback_endpoint() -> Iterator[tuple[str, list[str | None]]]:
    """A real HTTP server on 127.0.0.1: its endpoint URL and the Authorization headers seen."""
    received: list[str | None] = []
    handler = type("Handler", (_RecordingHandler,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/abc123", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_key_never_reaches_logs_over_a_real_socket(
    loopback_endpoint: tuple[str, list[str | None]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, received = loopback_endpoint
    caplog.set_level(logging.DEBUG)
    with RunpodClient(url, CANARY) as c:
        assert c.health().ok
    with (
        RunpodClient("http://127.0.0.1:1/v2/abc123", CANARY) as refused,
        pytest.raises(TransportError),
    ):
        refused.health()
    assert received == [f"Bearer {CANARY}"]  # the key was really in play
    logger_names = {record.name.split(".")[0] for record in caplog.records}
    assert {"httpx", "httpcore", "runpod_testkit"} <= logger_names
    assert CANARY not in caplog.text
    assert all(CANARY not in record.getMessage() for record in caplog.records)
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err


def test_proxy_variables_do_not_divert_loopback_requests(
    loopback_endpoint: tuple[str, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = loopback_endpoint
    # Port 9 (discard) on loopback refuses connections: a proxied request would fail.
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    with RunpodClient(url, CANARY) as sync_client:
        assert sync_client.health().ok

    async def main() -> bool:
        async with AsyncRunpodClient(url, CANARY) as async_client:
            return (await async_client.health()).ok

    assert asyncio.run(main())
    assert len(received) == 2
