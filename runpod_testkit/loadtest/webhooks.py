"""WebhookUser: submits with `"webhook": URL` and takes the job's end from the delivery.

Each Locust process runs its own `WebhookReceiver` (started with its first WebhookUser). A job's
end is the envelope's arrival: e2e runs from submission to the POST's arrival, delayTime and
executionTime come from the envelope, and no /status request is sent, so a run spends none of
the /status rate limit. Deliveries are matched to jobs by the envelope's `id`; one that arrives
before the /run answer has been read is kept until the user asks for it.

`webhookDelay` (job statistics): the POST's arrival minus the job's estimated end, which is the
/run send time plus delayTime plus executionTime (the server counts from receipt, so the estimate
is high by the one-way latency of /run: negligible on loopback).

Targets: the embedded emulator or any loopback host needs no option (a free loopback port per
process). A remote endpoint needs `--webhook-url PUBLIC_URL --webhook-listen HOST:PORT`, a tunnel
that forwards PUBLIC_URL to HOST:PORT; with `--processes` or workers, HOST:PORT is the first
process's and each further worker listens on PORT + its index behind PUBLIC_URL's path
`/w{index}` (the tunnel must route those).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
from gevent.event import AsyncResult
from locust import events
from locust.env import Environment
from locust.exception import StopTest

from runpod_testkit.loadtest.arrivals import Ticket
from runpod_testkit.loadtest.tracker import metric_ms
from runpod_testkit.loadtest.users import RUN, JobUser
from runpod_testkit.stats.names import CLIENT_TIMEOUT
from runpod_testkit.webhook_receiver import Delivery, WebhookReceiver, parse_listen_address

__all__ = ["WEBHOOK_DELAY_METRIC", "WebhookUser", "process_receiver"]

WEBHOOK_DELAY_METRIC = "webhookDelay"
_EARLY_LIMIT = 100_000
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("runpod-testkit webhooks (WebhookUser)")
    group.add_argument(
        "--webhook-url",
        default=None,
        metavar="PUBLIC_URL",
        env_var="LOCUST_WEBHOOK_URL",
        help="WebhookUser against a remote endpoint: the public URL of this run's receiver "
        "[env LOCUST_WEBHOOK_URL]",
    )
    group.add_argument(
        "--webhook-listen",
        default=None,
        metavar="HOST:PORT",
        env_var="LOCUST_WEBHOOK_LISTEN",
        help="where the receiver listens (the tunnel forwards --webhook-url there) "
        "[env LOCUST_WEBHOOK_LISTEN]",
    )


class _ProcessReceiver:
    """This process's receiver and the jobs waiting on it."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.waiting: dict[str, AsyncResult] = {}
        self.early: dict[str, Delivery] = {}
        receiver.on_delivery = self.arrived
        self.url = receiver.url_for("jobs")

    def arrived(self, delivery: Delivery) -> None:
        try:
            job_id = orjson.loads(delivery.body).get("id")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if not isinstance(job_id, str):
            return
        result = self.waiting.pop(job_id, None)
        if result is not None:
            result.set(delivery)
        elif len(self.early) < _EARLY_LIMIT:
            self.early.setdefault(job_id, delivery)  # a retry never replaces the first

    def wait(self, job_id: str, timeout_s: float) -> Delivery | None:
        delivery = self.early.pop(job_id, None)
        if delivery is not None:
            return delivery
        result = self.waiting[job_id] = AsyncResult()
        try:
            got: Delivery | None = result.get(timeout=max(0.0, timeout_s))
            return got
        except Exception:  # gevent.Timeout: no delivery in time
            return None
        finally:
            self.waiting.pop(job_id, None)


_process: _ProcessReceiver | None = None


def process_receiver(environment: Environment, host: str) -> _ProcessReceiver:
    """This process's receiver, started on first use for the target `host`."""
    global _process  # noqa: PLW0603 - one receiver per Locust process
    if _process is not None:
        return _process
    options = environment.parsed_options
    public_url = getattr(options, "webhook_url", None)
    listen = getattr(options, "webhook_listen", None)
    index = getattr(environment.runner, "worker_index", 0) or 0
    if public_url and listen:
        listen_host, port = parse_listen_address(listen)
        receiver = WebhookReceiver(
            listen_host,
            port + index if port else 0,
            public_url=public_url.rstrip("/") + (f"/w{index}" if index else ""),
        )
    elif urlsplit(host).hostname in _LOOPBACK:
        receiver = WebhookReceiver("127.0.0.1", 0)
    else:
        raise StopTest(
            "WebhookUser against a remote endpoint needs --webhook-url PUBLIC_URL and "
            "--webhook-listen HOST:PORT (a tunnel that forwards PUBLIC_URL there)"
        )
    _process = _ProcessReceiver(receiver.start())
    return _process


def _stop_receiver(**_kwargs: Any) -> None:
    global _process  # noqa: PLW0603 - one receiver per Locust process
    if _process is not None:
        _process.receiver.stop()
        _process = None


_hooks: Any = events  # Locust's event hooks are untyped
_hooks.init_command_line_parser.add_listener(_add_options)
_hooks.quit.add_listener(_stop_receiver)


class WebhookUser(JobUser):
    """POST /run with a webhook; the job ends when its envelope arrives (no /status polls)."""

    weight = 2
    default_input: ClassVar[Mapping[str, Any]] = {"sleep_ms": 500}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.hooks = process_receiver(environment, self.host or "")
        inputs = self.load.settings.probe_inputs or (dict(self.default_input),)
        self._bodies = [
            orjson.dumps({"input": job_input, "webhook": self.hooks.url}) for job_input in inputs
        ]

    def perform(self, ticket: Ticket | None) -> None:
        job = self.submit(RUN, ticket)
        if job is None or job.id is None:
            return
        timeout_s = job.started_at + self.load.settings.job_timeout_s - time.time()
        delivery = self.hooks.wait(job.id, timeout_s)
        if delivery is None:
            self.give_up(job, CLIENT_TIMEOUT)
            return
        try:
            envelope: Mapping[str, Any] = orjson.loads(delivery.body)
        except orjson.JSONDecodeError:
            self.give_up(job, CLIENT_TIMEOUT)
            return
        delay = metric_ms(envelope.get("delayTime"))
        execution = metric_ms(envelope.get("executionTime"))
        if delay is not None and execution is not None:
            estimated_end = job.sent_at + (delay + execution) / 1000
            self.load.stats.record(
                WEBHOOK_DELAY_METRIC, max(0.0, (delivery.arrived_at - estimated_end) * 1000)
            )
        self.end(job, envelope, delivery.arrived_at)
