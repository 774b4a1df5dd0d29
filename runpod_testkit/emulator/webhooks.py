"""Webhook delivery: when a job submitted with `"webhook": URL` ends, POST its envelope there.

Production's rule (docs/webhooks.md): "Your webhook should return a 200 status code. If the call
fails, Runpod retries up to 2 more times with a 10-second delay." So each delivery is at most
three attempts, `retry_delay_s` apart; an attempt fails on a non-2xx answer, a timeout or a
connection error. The envelope is the job object with the request's `input` and `webhook` added
(as a user captured it, docs/webhooks.md#shape), keys in production's (alphabetical) order.

Which endings are delivered: COMPLETED, FAILED and TIMED_OUT (the job ended on its own, and a
client that waits for its webhook would otherwise wait forever); not CANCELLED (the client asked
for it and /cancel answered). Production's behaviour for the last two is undocumented.

Two senders share `envelope()` and the retry rule:
- `AsyncWebhookSender` (the HTTP app): one asyncio task per delivery on the server's loop, an
  `httpx.AsyncClient` with a timeout, at most `max_concurrent` attempts in flight. Nothing here
  runs on the request path but `job_ended()`, which encodes the envelope and starts a task.
- `RecordingWebhookSender` (mock mode): attempts are due on the virtual clock and made by
  `deliver_due()` through a receiver callable, each recorded with its virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from runpod_testkit.emulator.jsonbody import dumps
from runpod_testkit.emulator.model import Clock, Job
from runpod_testkit.operations import JobStatus

__all__ = [
    "DELIVERED_STATUSES",
    "MAX_ATTEMPTS",
    "WEBHOOK_RETRY_DELAY_S",
    "WEBHOOK_TIMEOUT_S",
    "AsyncWebhookSender",
    "RecordingWebhookSender",
    "WebhookAttempt",
    "envelope",
]

MAX_ATTEMPTS = 3
"""The first POST and "up to 2 more times" (docs/webhooks.md#retries)."""
WEBHOOK_RETRY_DELAY_S = 10.0
"""Production's "10-second delay" between attempts (--webhook-retry-delay-s)."""
WEBHOOK_TIMEOUT_S = 10.0
"""How long one attempt waits for the receiver's answer (undocumented in production)."""
DELIVERED_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMED_OUT})
_USER_AGENT = "runpod-testkit-emulator"
_HEADERS = {"content-type": "application/json", "user-agent": _USER_AGENT}

logger = logging.getLogger(__name__)


def envelope(job: Job) -> dict[str, Any]:
    """What production POSTs to a job's webhook: the job object (as /status answers it, without
    `workerId`, which the captured envelope lacks) plus `input` and `webhook`."""
    body = job.body()
    body.pop("workerId", None)
    body["input"] = job.input
    body["webhook"] = job.webhook
    return dict(sorted(body.items()))


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One POST to a webhook, as the sender saw it."""

    job_id: str
    url: str
    attempt: int
    """1 for the first POST, up to MAX_ATTEMPTS."""
    at: float
    """When it was sent, on the emulator's clock (epoch seconds; virtual in mock mode)."""
    status_code: int | None
    """The receiver's answer, or None when there was none (timeout, refused connection)."""
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _should_deliver(job: Job) -> bool:
    return job.webhook is not None and job.status in DELIVERED_STATUSES


class AsyncWebhookSender:
    """Deliveries on the running asyncio loop (the HTTP app's). `job_ended` is the model's
    `on_terminal` hook (or part of it); `aclose` drops what is pending at shutdown."""

    def __init__(
        self,
        clock: Clock,
        *,
        retry_delay_s: float = WEBHOOK_RETRY_DELAY_S,
        timeout_s: float = WEBHOOK_TIMEOUT_S,
        max_concurrent: int = 64,
        keep_attempts: int = 10_000,
    ) -> None:
        self.clock = clock
        self.retry_delay_s = retry_delay_s
        self.timeout_s = timeout_s
        self.max_concurrent = max_concurrent
        self.attempts: list[WebhookAttempt] = []
        """The latest `keep_attempts` attempts, oldest first (tests and benchmarks read it)."""
        self._keep_attempts = keep_attempts
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._creating: asyncio.Future[httpx.AsyncClient] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The serving loop (set by `warm_up`), for jobs that end outside it."""

    @property
    def pending(self) -> int:
        """Deliveries not finished yet (sending, or waiting for a retry)."""
        return len(self._tasks)

    def job_ended(self, job: Job) -> None:
        if not _should_deliver(job):
            return
        # Encoded now: the job may move on (a /retry clears its output) before the POST is sent.
        body = dumps(envelope(job))
        assert job.webhook is not None
        url = job.webhook
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # The model advanced outside the loop (a test, another thread): hand it over.
            if self._loop is None or self._loop.is_closed():
                logger.warning("webhook for job %s dropped: the emulator is not serving", job.id)
                return
            self._loop.call_soon_threadsafe(self._start, job.id, url, body)
            return
        self._start(job.id, url, body)

    def _start(self, job_id: str, url: str, body: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(job_id, url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, job_id: str, url: str, body: bytes) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(self.retry_delay_s)
            result = await self._post(job_id, url, body, attempt)
            self._record(result)
            if result.delivered:
                return

    async def _post(self, job_id: str, url: str, body: bytes, attempt: int) -> WebhookAttempt:
        client, slots = await self._ensure_client()
        async with slots:
            sent_at = self.clock()
            try:
                response = await client.post(url, content=body, headers=_HEADERS)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return WebhookAttempt(job_id, url, attempt, sent_at, None, reason)
            except Exception as exc:  # never let a delivery take the server down
                logger.warning("webhook delivery to %s failed: %r", url, exc)
                return WebhookAttempt(job_id, url, attempt, sent_at, None, repr(exc))
        return WebhookAttempt(job_id, url, attempt, sent_at, response.status_code)

    def _record(self, attempt: WebhookAttempt) -> None:
        self.attempts.append(attempt)
        if len(self.attempts) > 2 * self._keep_attempts:
            del self.attempts[: -self._keep_attempts]

    def warm_up(self) -> None:
        """Start building the HTTP client in a thread now (called as the server starts), so
        that the first delivery does not wait for it."""
        self._loop = asyncio.get_running_loop()
        if self._creating is None and self._client is None:
            self._creating = self._loop.run_in_executor(None, self._new_client)

    async def _ensure_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        if self._client is None or self._slots is None:
            # Building a client loads the TLS trust store (tens of ms, far more on a busy
            # machine), which would stall every request on the loop: built once, in a thread.
            self.warm_up()
            assert self._creating is not None
            client = await self._creating
            if self._client is None:
                self._client = client
                self._slots = asyncio.Semaphore(self.max_concurrent)
        assert self._client is not None
        assert self._slots is not None
        return self._client, self._slots

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.timeout_s,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment must not see job outputs
            limits=httpx.Limits(
                max_connections=self.max_concurrent,
                max_keepalive_connections=self.max_concurrent,
            ),
        )

    async def aclose(self) -> None:
        """Cancel pending deliveries (a stopping emulator does not wait out 20 s of retries)
        and close the client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is None and self._creating is not None and self._creating.done():
            with contextlib.suppress(Exception):
                self._client = self._creating.result()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None


Receiver = Callable[[httpx.Request], httpx.Response]
"""Mock mode's stand-in for the webhook's server: answers one POST."""


def _accept(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


class RecordingWebhookSender:
    """Mock mode: attempts are due on the virtual clock (the first at the job's end, retries
    `retry_delay_s` apart) and made in time order by `deliver_due()`, through `receiver`
    (default: a 200 for every POST). Every attempt lands in `attempts` with its virtual time."""

    def __init__(
        self,
        clock: Clock,
        *,
        retry_delay_s: float = WEBHOOK_RETRY_DELAY_S,
        receiver: Receiver | None = None,
    ) -> None:
        self.clock = clock
        self.retry_delay_s = retry_delay_s
        self.receiver: Receiver = receiver or _accept
        self.attempts: list[WebhookAttempt] = []
        self._due: list[tuple[float, int, str, str, bytes, int]] = []
        """(due at, sequence, job id, url, body, attempt number)."""
        self._sequence = 0

    @property
    def pending(self) -> int:
        return len(self._due)

    def job_ended(self, job: Job) -> None:
        if not _should_deliver(job):
            return
        assert job.webhook is not None
        self._schedule(self.clock(), job.id, job.webhook, dumps(envelope(job)), 1)

    def _schedule(self, at: float, job_id: str, url: str, body: bytes, attempt: int) -> None:
        self._sequence += 1
        heapq.heappush(self._due, (at, self._sequence, job_id, url, body, attempt))

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def deliver_due(self) -> int:
        """Make every attempt due by now (outside the model's hooks: a receiver may call the
        endpoint again). Returns how many were made."""
        made = 0
        now = self.clock()
        while self._due and self._due[0][0] <= now:
            at, _, job_id, url, body, attempt = heapq.heappop(self._due)
            request = httpx.Request("POST", url, content=body, headers=_HEADERS)
            try:
                status: int | None = self.receiver(request).status_code
                reason = None
            except httpx.HTTPError as exc:  # the receiver's way to say "no answer"
                status, reason = None, f"{type(exc).__name__}: {exc}"
            result = WebhookAttempt(job_id, url, attempt, at, status, reason)
            self.attempts.append(result)
            made += 1
            if not result.delivered and attempt < MAX_ATTEMPTS:
                self._schedule(at + self.retry_delay_s, job_id, url, body, attempt + 1)
        return made
