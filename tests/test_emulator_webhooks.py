"""Webhooks over real HTTP on loopback: the emulator POSTs each ended job's envelope to a
`WebhookReceiver`, retries a failed delivery twice, and never lets a receiver change a job or the
server. Mock mode: the same rule on the virtual clock. Waits are bounded conditions (a delivery
arrived; the emulator has no delivery pending), never sleeps."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runpod_testkit.emulator.mock import MockEndpoint
from runpod_testkit.emulator.model import EmulatorConfig, Model
from runpod_testkit.emulator.server import RunningEmulator, running_emulator
from runpod_testkit.emulator.webhooks import MAX_ATTEMPTS, AsyncWebhookSender
from runpod_testkit.operations import JobStatus
from runpod_testkit.schemas import ContractValidator
from runpod_testkit.webhook_receiver import WebhookReceiver

VALIDATOR = ContractValidator()
RETRY_DELAY_S = 1.0
"""Long enough that a busy machine's scheduling (a tenth of a second seen) stays inside 20%."""
WAIT_S = 15.0
KEY = "webhook-test-key"
ENVELOPE_KEYS = {"delayTime", "executionTime", "id", "input", "output", "status", "webhook"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(
        EmulatorConfig(workers_max=4, cold_start_ms=0, seed=3),
        api_key=KEY,
        webhook_retry_delay_s=RETRY_DELAY_S,
        webhook_timeout_s=0.5,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def api(emulator: RunningEmulator, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    endpoint = emulator.endpoint_url(re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name)[:60])
    with httpx.Client(
        base_url=endpoint, headers={"authorization": f"Bearer {KEY}"}, timeout=10
    ) as client:
        yield client


def submit(api: httpx.Client, webhook: Any, operation: str = "run", **job_input: Any) -> Any:
    response = api.post(f"/{operation}", json={"input": job_input, "webhook": webhook})
    assert response.status_code == 200, response.text
    return response.json()


def settled(emulator: RunningEmulator) -> None:
    """Until the emulator has no delivery pending (sent, or given up after three tries)."""
    deadline = time.monotonic() + WAIT_S
    while emulator.app.webhooks.pending:
        assert time.monotonic() < deadline, "webhook deliveries still pending"
        time.sleep(0.02)


def finished(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's /status body once it is terminal."""
    deadline = time.monotonic() + WAIT_S
    while (body := status_of(api, job_id))["status"] not in JobStatus.TERMINAL:
        assert time.monotonic() < deadline, f"job {job_id} did not end"
        time.sleep(0.01)
    return body


def status_of(api: httpx.Client, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/status/{job_id}").json()
    return body


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port nobody listens on (bound, never listening, so no one else takes it
    during the test): a connection there is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


# --- the envelope -------------------------------------------------------------------------------


def test_completed_job_posts_its_envelope_once(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("completed")
    job = submit(api, url, sleep_ms=50, echo="hi")
    assert receiver.wait_for(lambda: receiver.deliveries(url), WAIT_S)
    settled(emulator)
    (delivery,) = receiver.deliveries(url)
    envelope = delivery.json()
    assert set(envelope) == ENVELOPE_KEYS
    assert list(envelope) == sorted(envelope), "production's keys come in alphabetical order"
    assert envelope["id"] == job["id"]
    assert envelope["status"] == JobStatus.COMPLETED
    assert envelope["webhook"] == url
    assert envelope["input"] == {"sleep_ms": 50, "echo": "hi"}
    assert delivery.headers["content-type"] == "application/json"
    status = status_of(api, job["id"])
    for key in ("delayTime", "executionTime", "id", "output", "status"):
        assert envelope[key] == status[key], key
    assert envelope["executionTime"] >= 50
    result = VALIDATOR.check("webhook.envelope", envelope)
    assert result.ok, str(result)
    assert result.drift == [], str(result)


def test_failed_job_is_delivered_with_its_error(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("failed")
    job = submit(api, url, fail="boom")
    assert receiver.wait_for(lambda: receiver.deliveries(url), WAIT_S)
    settled(emulator)
    (delivery,) = receiver.deliveries(url)
    envelope = delivery.json()
    assert envelope["status"] == JobStatus.FAILED
    assert envelope["error"] == "boom"
    assert "output" not in envelope
    assert envelope["id"] == job["id"]
    assert VALIDATOR.check("webhook.envelope", envelope).ok
    assert status_of(api, job["id"])["error"] == "boom"


def test_runsync_with_a_webhook_delivers_too(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("runsync")
    answer = submit(api, url, operation="runsync", echo=1)
    assert answer["status"] == JobStatus.COMPLETED
    assert receiver.wait_for(lambda: receiver.deliveries(url), WAIT_S)
    settled(emulator)
    (delivery,) = receiver.deliveries(url)
    envelope = delivery.json()
    assert envelope["id"] == answer["id"]
    assert envelope["output"] == answer["output"]


def test_timed_out_job_is_delivered_and_cancelled_is_not(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    timed_out, cancelled = receiver.url_for("timed-out"), receiver.url_for("cancelled")
    response = api.post(
        "/run",
        json={
            "input": {"sleep_ms": 60_000},
            "webhook": timed_out,
            "policy": {"executionTimeout": 5_000},
        },
    )
    job = response.json()
    long = submit(api, cancelled, sleep_ms=60_000)
    assert api.post(f"/cancel/{long['id']}").json()["status"] == JobStatus.CANCELLED
    # The 5 s execution timeout is the shortest production allows.
    assert receiver.wait_for(lambda: receiver.deliveries(timed_out), WAIT_S)
    settled(emulator)
    (delivery,) = receiver.deliveries(timed_out)
    assert delivery.json()["status"] == JobStatus.TIMED_OUT
    assert delivery.json()["id"] == job["id"]
    assert receiver.deliveries(cancelled) == []


# --- the retry rule ---------------------------------------------------------------------------


def test_a_receiver_that_always_refuses_gets_exactly_three_attempts_spaced_by_the_delay(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("always-refuses")
    receiver.refuse(url, 1_000)
    job = submit(api, url, echo=1)
    assert receiver.wait_for(lambda: len(receiver.deliveries(url)) >= MAX_ATTEMPTS, WAIT_S)
    settled(emulator)
    deliveries = receiver.deliveries(url)
    assert len(deliveries) == MAX_ATTEMPTS == 3
    assert all(not delivery.accepted for delivery in deliveries)
    gaps = [b.arrived_mono - a.arrived_mono for a, b in itertools.pairwise(deliveries)]
    for gap in gaps:
        assert abs(gap - RETRY_DELAY_S) <= 0.2 * RETRY_DELAY_S, gaps
    assert {delivery.body for delivery in deliveries} == {deliveries[0].body}
    assert status_of(api, job["id"])["status"] == JobStatus.COMPLETED


def test_a_receiver_that_accepts_gets_exactly_one_attempt(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("accepts")
    job = submit(api, url, echo=1)
    assert receiver.wait_for(lambda: receiver.deliveries(url), WAIT_S)
    settled(emulator)
    attempts = [a for a in emulator.app.webhooks.attempts if a.job_id == job["id"]]
    assert [a.attempt for a in attempts] == [1]
    assert len(receiver.deliveries(url)) == 1


def test_a_receiver_that_refuses_twice_gets_three_calls_and_the_third_succeeds(
    api: httpx.Client, emulator: RunningEmulator, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("refuses-twice")
    receiver.refuse(url, 2)
    submit(api, url, echo=1)
    assert receiver.wait_for(lambda: len(receiver.deliveries(url)) >= 3, WAIT_S)
    settled(emulator)
    assert [d.answered for d in receiver.deliveries(url)] == [503, 503, 200]


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    release = threading.Event()
    arrivals: list[float] = []

    with WebhookReceiver(
        on_delivery=lambda _d: (arrivals.append(time.monotonic()), release.wait(5))
    ) as slow:
        url = slow.url_for("slow")
        job = submit(api, url, echo=1)
        try:
            assert slow.wait_for(lambda: len(arrivals) >= MAX_ATTEMPTS, WAIT_S)
            settled(emulator)
        finally:
            release.set()
    attempts = [a for a in emulator.app.webhooks.attempts if a.job_id == job["id"]]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.status_code is None and a.error and "Timeout" in a.error for a in attempts)


# --- deliveries never change the job or the server ----------------------------------------


def test_an_unreachable_receiver_changes_neither_the_job_nor_the_server(
    api: httpx.Client, emulator: RunningEmulator, refused_port: int
) -> None:
    url = f"http://127.0.0.1:{refused_port}/nobody"
    job = submit(api, url, sleep_ms=20, echo="kept")
    unhooked = submit(api, None, sleep_ms=20, echo="kept")
    finished(api, job["id"])
    settled(emulator)
    attempts = [a for a in emulator.app.webhooks.attempts if a.job_id == job["id"]]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.status_code is None for a in attempts)
    hooked_status, plain_status = status_of(api, job["id"]), status_of(api, unhooked["id"])
    assert hooked_status["status"] == plain_status["status"] == JobStatus.COMPLETED
    assert hooked_status["output"] == plain_status["output"]
    assert api.get("/health").status_code == 200


def test_a_hanging_receiver_does_not_slow_the_request_path(
    api: httpx.Client, emulator: RunningEmulator
) -> None:
    release = threading.Event()
    with WebhookReceiver(on_delivery=lambda _d: release.wait(5)) as hanging:
        try:
            for index in range(20):
                submit(api, hanging.url_for(f"hang-{index}"), echo=index)
            durations = []
            job = submit(api, None, echo=1)
            assert hanging.wait_for(hanging.deliveries, WAIT_S)
            for _ in range(50):
                started = time.monotonic()
                assert api.get(f"/status/{job['id']}").status_code == 200
                durations.append(time.monotonic() - started)
            assert emulator.app.webhooks.pending >= 1
            # Loopback /status takes about a millisecond; a blocked loop would take the
            # receiver's whole hang.
            assert statistics.median(durations) < 0.1
        finally:
            release.set()
    settled(emulator)


# --- malformed webhook values -----------------------------------------------------------------


@pytest.mark.parametrize(
    "webhook",
    [
        "not a url",
        "",
        "ftp://example.test/hook",
        "/relative/path",
        "http://",
        "http://host:99999/",
        "http://host:0/",
        "https://exa mple.test/",
        "http://example.test/\n",
        "https://example.test/" + "x" * 2048,
        123,
        ["http://example.test/"],
        {"url": "http://example.test/"},
        True,
    ],
)
def test_a_malformed_webhook_is_refused_with_400(api: httpx.Client, webhook: Any) -> None:
    response = api.post("/run", json={"input": {}, "webhook": webhook})
    assert response.status_code == 400, response.text
    assert "webhook" in response.json()["error"]
    response = api.post("/runsync", json={"input": {}, "webhook": webhook})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "webhook",
    [None, "http://127.0.0.1:9/x", "https://example.test/hook?token=a#frag", "http://[::1]:1/"],
)
def test_well_formed_webhooks_are_accepted(
    api: httpx.Client, emulator: RunningEmulator, webhook: Any
) -> None:
    # Jobs that stay queued forever (low priority, no worker) are never delivered anywhere.
    body = {"input": {}, "webhook": webhook, "policy": {"lowPriority": True}}
    response = api.post("/run", json=body)
    assert response.status_code == 200, response.text
    assert api.post(f"/cancel/{response.json()['id']}").status_code == 200


# --- mock mode: the virtual clock -------------------------------------------------------------


def test_mock_mode_records_attempts_and_retries_on_the_virtual_clock() -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    with MockEndpoint(webhook_receiver=refuse) as mock:
        client = httpx.Client(transport=mock.transport(), headers={"authorization": "k"})
        url = "https://hooks.example.test/mock"
        job = client.post(
            mock.endpoint_url + "/runsync", json={"input": {"echo": 1}, "webhook": url}
        ).json()
        mock.run_until_idle(60)
        attempts = mock.webhooks.attempts
        assert [a.attempt for a in attempts] == [1, 2, 3]
        ended_at = mock.terminal_jobs[0]["endedAt"] / 1000
        assert [a.at - ended_at for a in attempts] == pytest.approx([0, 10, 20], abs=0.002)
        assert len(calls) == 3
        assert all(call.url == url for call in calls)
        envelope = httpx.Response(200, content=calls[0].content).json()
        assert envelope["id"] == job["id"]
        assert envelope["status"] == JobStatus.COMPLETED
        assert mock.webhooks.pending == 0


def test_mock_mode_delivers_once_to_an_accepting_receiver() -> None:
    with MockEndpoint() as mock:
        client = httpx.Client(transport=mock.transport(), headers={"authorization": "k"})
        client.post(
            mock.endpoint_url + "/run",
            json={"input": {"fail": "no"}, "webhook": "https://hooks.example.test/x"},
        )
        mock.run_until_idle(60)
        (attempt,) = mock.webhooks.attempts
        assert attempt.delivered
        assert attempt.status_code == 200


def test_a_job_that_ends_outside_the_loop_is_handed_to_it(receiver: WebhookReceiver) -> None:
    """A model advanced from another thread (a worker runtime, a test) still delivers."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        clock = [1_000.0]
        sender = AsyncWebhookSender(lambda: clock[0], retry_delay_s=RETRY_DELAY_S)
        asyncio.run_coroutine_threadsafe(_warm(sender), loop).result(10)
        model = Model(EmulatorConfig(cold_start_ms=0), lambda: clock[0], sender.job_ended)
        url = receiver.url_for("outside-the-loop")
        job = model.submit("ep", {"input": {"sleep_ms": 100}, "webhook": url})
        clock[0] += 1.0
        model.advance()  # on this thread: no running loop here
        assert receiver.wait_for(lambda: receiver.deliveries(url), WAIT_S)
        assert receiver.deliveries(url)[0].json()["id"] == job.id
        asyncio.run_coroutine_threadsafe(sender.aclose(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _warm(sender: AsyncWebhookSender) -> None:
    sender.warm_up()
