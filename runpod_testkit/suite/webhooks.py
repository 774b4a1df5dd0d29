"""The contract suite's webhook receiver, in every mode.

- mock: a `WebhookReceiver` that is never started; the mock's sender hands it each POST on the
  virtual clock, and waiting jumps that clock to the next due attempt.
- emulator: a `WebhookReceiver` on a free loopback port (the suite's emulator retries
  `EMULATOR_WEBHOOK_RETRY_DELAY_S` apart, so the retry check takes about a second).
- live: `--webhook-url PUBLIC_URL --webhook-listen HOST:PORT`: the receiver listens on HOST:PORT,
  where the user's tunnel forwards PUBLIC_URL. Without them the webhook checks are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from runpod_testkit.emulator.mock import MockEndpoint
from runpod_testkit.emulator.webhooks import WEBHOOK_RETRY_DELAY_S
from runpod_testkit.suite.target import EMULATOR_WEBHOOK_RETRY_DELAY_S, SuiteTarget
from runpod_testkit.webhook_receiver import Delivery, WebhookReceiver, parse_listen_address

__all__ = ["SuiteWebhooks"]

_MOCK_PUBLIC_URL = "https://webhooks.contract-suite.invalid"
_SKIP_REASON = (
    "live mode: the webhook checks need --webhook-url PUBLIC_URL and --webhook-listen HOST:PORT "
    "(a tunnel that forwards PUBLIC_URL to HOST:PORT)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runpod")
    group.addoption(
        "--webhook-url",
        metavar="PUBLIC_URL",
        help="live mode: a public URL the endpoint can POST webhooks to (forwarded to "
        "--webhook-listen); enables the webhook checks",
    )
    group.addoption(
        "--webhook-listen",
        metavar="HOST:PORT",
        help="live mode: where the suite's webhook receiver listens (the tunnel's target)",
    )


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("--webhook-url", None)
    listen = config.getoption("--webhook-listen", None)
    if bool(url) != bool(listen):
        raise pytest.UsageError("--webhook-url and --webhook-listen go together: give both")
    if listen:
        try:
            parse_listen_address(listen)
        except ValueError as exc:
            raise pytest.UsageError(f"--webhook-listen: {exc}") from None
    if url and not url.startswith(("http://", "https://")):
        raise pytest.UsageError(f"--webhook-url must be an http(s) URL, got {url!r}")


@dataclass
class SuiteWebhooks:
    receiver: WebhookReceiver
    retry_delay_s: float
    """The spacing the target's retries should have."""
    target: SuiteTarget

    def url_for(self, name: str) -> str:
        return self.receiver.url_for(name)

    def deliveries(self, url: str) -> list[Delivery]:
        return self.receiver.deliveries(url)

    def wait_for(self, predicate: Callable[[], object], timeout_s: float) -> bool:
        """Until `predicate()` holds or `timeout_s` passes on the target's clock."""
        mock = self.target.mock
        if mock is None:
            return self.receiver.wait_for(predicate, timeout_s)
        deadline = mock.clock() + timeout_s
        while True:
            mock.webhooks.deliver_due()
            if predicate():
                return True
            due = mock.webhooks.next_due()
            if due is None or due > deadline:
                mock.clock.jump_to(deadline)
                mock.model.advance()
                return bool(predicate())
            mock.clock.jump_to(due)
            mock.model.advance()

    def settle_s(self) -> float:
        """How long to watch for a delivery that should not come (a retry after a 200)."""
        return self.retry_delay_s * 1.5 + (5.0 if self.target.mode == "live" else 0.5)


def _mock_receiver(mock: MockEndpoint, receiver: WebhookReceiver) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        return httpx.Response(receiver.receive(request.url.path, request.content, headers))

    mock.webhooks.receiver = answer


@pytest.fixture(scope="session")
def webhooks(pytestconfig: pytest.Config, target: SuiteTarget) -> Iterator[SuiteWebhooks]:
    """The suite's receiver for the target, or skip when a live run has none."""
    if target.mock is not None:
        receiver = WebhookReceiver(public_url=_MOCK_PUBLIC_URL, clock=target.mock.clock)
        _mock_receiver(target.mock, receiver)
        yield SuiteWebhooks(receiver, target.mock.webhooks.retry_delay_s, target)
        return
    if target.mode == "emulator":
        with WebhookReceiver() as receiver:
            yield SuiteWebhooks(receiver, EMULATOR_WEBHOOK_RETRY_DELAY_S, target)
        return
    url = pytestconfig.getoption("--webhook-url", None)
    listen = pytestconfig.getoption("--webhook-listen", None)
    if not url or not listen:
        pytest.skip(_SKIP_REASON)
    host, port = parse_listen_address(listen)
    with WebhookReceiver(host, port, public_url=url) as receiver:
        yield SuiteWebhooks(receiver, WEBHOOK_RETRY_DELAY_S, target)
