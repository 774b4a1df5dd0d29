"""What the contract suite points at: the emulator model through respx (mock, the default), the
emulator over real HTTP on loopback (`--emulator`), or a live endpoint (`--endpoint-url` /
`--endpoint-id` with RUNPOD_API_KEY). The same checks run against all three."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from runpod_testkit.client import AuthScheme, RunpodClient
from runpod_testkit.config import Target
from runpod_testkit.emulator.faults import FaultConfig, FaultCounts
from runpod_testkit.emulator.mock import MockEndpoint
from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.emulator.server import running_emulator
from runpod_testkit.preflight import preflight

__all__ = ["EMULATOR_WEBHOOK_RETRY_DELAY_S", "SUITE_API_KEY", "Mode", "SuiteTarget", "open_target"]

Mode = Literal["mock", "emulator", "live"]

# The key the suite gives its own emulator; a private target accepts this one only, so that
# the auth checks can see a wrong key refused.
SUITE_API_KEY = "contract-suite-key"

# A faster emulator than the CLI default, so --emulator runs in seconds of real time; the mock
# keeps production-like defaults since its clock jumps.
_EMULATOR_CONFIG = EmulatorConfig(workers_max=4, cold_start_ms=300, idle_timeout_s=2.0, seed=7)
# With real worker processes (--worker) the cold start is the process's own; one is kept warm
# and extra ones linger, so that checks do not wait for a start-up each.
_WORKER_PROCESS_CONFIG = EmulatorConfig(
    workers_min=1, workers_max=4, cold_start_ms=0, idle_timeout_s=30.0, seed=7
)
EMULATOR_WEBHOOK_RETRY_DELAY_S = 1.0
"""The suite's emulator retries webhooks this far apart (production: 10 s), so the retry check
takes two seconds of real time, and a busy machine's scheduling stays inside its 20%."""


@dataclass
class SuiteTarget:
    mode: Mode
    endpoint_url: str
    api_key: str
    job_timeout_s: float
    auth_scheme: AuthScheme = "bearer"
    mock: MockEndpoint | None = None
    fault_counts: FaultCounts | None = None
    """The faults the suite's own emulator injected so far (None for a live endpoint)."""
    _clients: list[RunpodClient] = field(default_factory=list)

    @property
    def private(self) -> bool:
        """True for the suite's own emulator: checks may assume nobody else uses it."""
        return self.mode != "live"

    @property
    def poll_interval_s(self) -> float:
        return {"mock": 0.25, "emulator": 0.05, "live": 1.0}[self.mode]

    @property
    def describe(self) -> str:
        where = {"mock": "emulator model via respx", "emulator": "emulator over HTTP"}
        return f"{self.mode} mode ({where.get(self.mode, 'live endpoint')}), {self.endpoint_url}"

    def now(self) -> float:
        """Seconds on the target's clock: the mock's virtual clock, else the monotonic clock."""
        return self.mock.clock() if self.mock is not None else time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass on the target's clock (free in mock mode: the clock jumps)."""
        if seconds <= 0:
            return
        if self.mock is not None:
            self.mock.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def client(self, endpoint_url: str | None = None, **options: Any) -> RunpodClient:
        """A client for the target (or another endpoint id on it); closed at the session's end."""
        url = endpoint_url or self.endpoint_url
        options.setdefault("auth_scheme", self.auth_scheme)
        if self.mock is not None:
            options.setdefault("transport", self.mock.transport())
            options.setdefault("sleep", self.mock.clock.advance)
            options.setdefault("clock", self.mock.clock)
        client = RunpodClient(url, self.api_key, **options)
        self._clients.append(client)
        return client

    def fresh_endpoint_url(self, label: str) -> str:
        """An endpoint of its own for a check that counts queue or health changes: a new id on
        the suite's emulator (each id its own queue), or the one live endpoint."""
        if not self.private:
            return self.endpoint_url
        base = self.endpoint_url.rsplit("/", 1)[0]
        return f"{base}/{label}-{uuid.uuid4().hex[:8]}"

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()


@contextlib.contextmanager
def open_target(
    mode: Mode,
    live: Target | None,
    *,
    job_timeout_s: float,
    worker: str | None = None,
    faults: FaultConfig | None = None,
) -> Iterator[SuiteTarget]:
    """Start what the mode needs (nothing for live) and yield the target; stop it afterwards.
    `worker`: the emulator's workers are real processes of this command line. `faults` are
    injected into the suite's own emulator (mock or emulator mode).

    Live and emulator targets first pass the preflight (one /health with the key), so that no
    check runs, and no job is submitted, against an endpoint that refuses the key or is not
    there: `PreflightError` says why, in one line."""
    if mode == "mock":
        # Not entered: the suite's clients take the mock's transport, so httpx is not patched for
        # the rest of the session (tests that share the process keep their own routes).
        mock = MockEndpoint(api_key=SUITE_API_KEY, faults=faults)
        yield SuiteTarget(
            "mock",
            mock.endpoint_url,
            SUITE_API_KEY,
            job_timeout_s,
            mock=mock,
            fault_counts=mock.faults_injected,
        )
    elif mode == "emulator":
        base = _EMULATOR_CONFIG if worker is None else _WORKER_PROCESS_CONFIG
        config = dataclasses.replace(base, faults=faults)
        with running_emulator(
            config,
            api_key=SUITE_API_KEY,
            worker=worker,
            webhook_retry_delay_s=EMULATOR_WEBHOOK_RETRY_DELAY_S,
        ) as emulator:
            url = emulator.endpoint_url("contract")
            preflight(url, SUITE_API_KEY)  # its own emulator: the same path as a live run
            yield SuiteTarget(
                "emulator",
                url,
                SUITE_API_KEY,
                job_timeout_s,
                fault_counts=emulator.app.faults_injected,
            )
    else:
        assert live is not None
        assert live.api_key is not None
        # The docs show both `Authorization: Bearer KEY` (every SDK) and the raw key (the cURL
        # samples): use Bearer unless the endpoint refuses it and takes the raw form.
        ready = preflight(live.endpoint_url, live.api_key, auth_schemes=("bearer", "raw"))
        yield SuiteTarget(
            "live", live.endpoint_url, live.api_key, job_timeout_s, auth_scheme=ready.auth_scheme
        )
