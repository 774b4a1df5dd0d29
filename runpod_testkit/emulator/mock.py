"""The emulator inside httpx, through respx: mock mode of the contract suite, with no sockets and
no sleeping.

`MockEndpoint` routes every httpx request under an endpoint URL's base into the same
`EmulatorService` the HTTP app uses, on a `VirtualClock`. When a request would wait (a /runsync
longer than its job, a /stream before the next chunk) the clock jumps straight to the next event,
so a 90-second job completes in microseconds and every run is deterministic under a seed. The
first job also waits for a worker's cold start (1 s by default), so a /runsync of a 90-second job
asks to wait longer than the default 90 s (`?wait=` up to 300000 ms), or it answers IN_PROGRESS:

>>> import httpx
>>> with MockEndpoint("https://api.runpod.ai/v2/abc123") as mock:
...     answer = httpx.post(
...         mock.endpoint_url + "/runsync?wait=120000",
...         json={"input": {"sleep_ms": 90_000, "echo": "hi"}},
...         headers={"Authorization": "Bearer any-key"},
...     ).json()
>>> answer["status"], answer["delayTime"], answer["executionTime"], answer["output"]
('COMPLETED', 1000, 90000, [{'echo': 'hi'}])

(tests/test_emulator_mock.py runs this example.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx

from runpod_testkit.emulator.factory import build_service
from runpod_testkit.emulator.faults import FaultConfig, FaultCounts, load_faults
from runpod_testkit.emulator.model import EmulatorConfig, Job
from runpod_testkit.emulator.service import Hold, Refusal, Reply, too_large
from runpod_testkit.emulator.webhooks import (
    WEBHOOK_RETRY_DELAY_S,
    Receiver,
    RecordingWebhookSender,
)

__all__ = ["DEFAULT_MOCK_ENDPOINT_URL", "MockEndpoint", "VirtualClock", "runpod_mock"]

DEFAULT_MOCK_ENDPOINT_URL = "https://api.runpod.ai/v2/mock-endpoint"
# A fixed epoch start keeps job-log timestamps reproducible across runs.
VIRTUAL_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class VirtualClock:
    """Seconds that move only when told to."""

    def __init__(self, start: float = VIRTUAL_EPOCH) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a virtual clock never goes back")
        self.now += seconds

    def jump_to(self, at: float) -> None:
        self.now = max(self.now, at)


class MockEndpoint:
    """A context manager that answers httpx requests for an endpoint URL from the emulator model.

    Every endpoint id under the same base is served (each its own queue), as the real API does.
    """

    def __init__(
        self,
        endpoint_url: str = DEFAULT_MOCK_ENDPOINT_URL,
        config: EmulatorConfig | None = None,
        *,
        api_key: str | None = None,
        rate_limits: bool = False,
        clock: VirtualClock | None = None,
        faults: FaultConfig | str | None = None,
        webhook_retry_delay_s: float = WEBHOOK_RETRY_DELAY_S,
        webhook_receiver: Receiver | None = None,
    ) -> None:
        """`faults`: a `FaultConfig`, or `--faults` text (JSON or @FILE); it replaces the
        config's. Its draws are seeded by its "seed", else the config's (0 by default)."""
        parts = urlsplit(endpoint_url.rstrip("/"))
        base_path, _, endpoint_id = parts.path.rpartition("/")
        if not parts.scheme or not parts.netloc or not endpoint_id:
            raise ValueError(
                f"endpoint URL must look like https://host/v2/ENDPOINT_ID, got {endpoint_url!r}"
            )
        self.endpoint_url = endpoint_url.rstrip("/")
        self.endpoint_id = endpoint_id
        self.base_url = f"{parts.scheme}://{parts.netloc}{base_path}"
        self.clock = clock or VirtualClock()
        self.webhooks = RecordingWebhookSender(
            self.clock, retry_delay_s=webhook_retry_delay_s, receiver=webhook_receiver
        )
        """Deliveries on the virtual clock: `webhooks.attempts` records each POST."""
        self.terminal_jobs: list[dict[str, Any]] = []
        """The job log: one record per terminal transition, as --job-log writes them."""
        # Seeded by default: mock mode is deterministic run after run (ids, worker ids, faults).
        config = config or EmulatorConfig(seed=0)
        if faults is not None:
            parsed = load_faults(faults) if isinstance(faults, str) else faults
            config = dataclasses.replace(config, faults=parsed)
        self.service = build_service(
            config, self.clock, api_key=api_key, rate_limits=rate_limits, on_terminal=self._log
        )
        self.model = self.service.model
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.route(url__startswith=self.base_url + "/").mock(side_effect=self.handle)

    def transport(self) -> httpx.MockTransport:
        """An httpx transport into this mock, for a client of its own (sync or async), without
        patching httpx globally as entering the context manager does."""
        return httpx.MockTransport(self.router.handler)

    @property
    def faults_injected(self) -> FaultCounts:
        """Every fault injected so far, by kind (`"status.503"`, `"jobs.worker_crash"`)."""
        return self.model.fault_counts

    def _log(self, job: Job) -> None:
        self.terminal_jobs.append(job.log_record())
        if job.webhook is not None:
            self.webhooks.job_ended(job)

    def __enter__(self) -> MockEndpoint:
        self.router.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.router.__exit__(exc_type, exc, traceback)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; waits are served by jumping the virtual clock."""
        rest = request.url.path[len(urlsplit(self.base_url).path) :].lstrip("/")
        endpoint_id, _, op_path = rest.partition("/")
        query = dict(request.url.params.items())
        try:
            call = self.service.preflight(
                request.method, endpoint_id, op_path, query, request.headers.get("authorization")
            )
            try:
                if call.delay_s:
                    self.clock.advance(call.delay_s)
                body = request.read()
                if len(body) > call.max_body_bytes:
                    raise too_large(call)
                result = self.service.execute(call, body)
                if isinstance(result, Hold):
                    self._wait(result)
                    result = result.reply()
                return _response(result)
            finally:
                self.service.release(call)
                self.webhooks.deliver_due()
        except Refusal as refusal:
            return self._refused(refusal.reply, request)

    def _refused(self, reply: Reply, request: httpx.Request) -> httpx.Response:
        """A refusal's reply; an injected fault's after its latency, or no answer at all."""
        if reply.delay_s:
            self.clock.advance(reply.delay_s)  # injected latency: virtual time passes
        if reply.reset:
            # What httpx raises when the server resets the connection without an answer.
            raise httpx.ReadError(
                "[Errno 104] Connection reset by peer (an injected fault)", request=request
            )
        return _response(reply)

    def _wait(self, hold: Hold) -> None:
        model = self.model
        while not hold.ready():
            next_event = model.next_event_time()
            wake = hold.wake_at()
            self.clock.jump_to(wake if next_event is None else min(next_event, wake))
            model.advance()

    def run_until_idle(self, limit_s: float = 7 * 24 * 3600.0) -> None:
        """Jump the clock through every pending event up to `limit_s` from now (tests and
        benchmarks use it to let jobs finish and results expire)."""
        stop = self.clock.now + limit_s
        webhooks = self.webhooks
        while True:
            webhooks.deliver_due()
            next_event = self.model.next_event_time()
            next_delivery = webhooks.next_due()
            if next_delivery is not None and (next_event is None or next_delivery < next_event):
                next_event = next_delivery
            if next_event is None or next_event > stop:
                return
            self.clock.jump_to(next_event)
            self.model.advance()


def _response(reply: Reply) -> httpx.Response:
    headers = {"content-type": "application/json", **(reply.headers or {})}
    return httpx.Response(reply.status, content=reply.encode(), headers=headers)


@pytest.fixture
def runpod_mock() -> Iterator[MockEndpoint]:
    """A `MockEndpoint` at DEFAULT_MOCK_ENDPOINT_URL for the duration of a test."""
    with MockEndpoint() as mock:
        yield mock
