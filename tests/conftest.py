"""Shared fixtures of the self-tests: emulators on loopback and an httpx client for an endpoint.

`emulator` is module-scoped (one server per test module); `endpoint_id` is new for every test,
so each test gets its own queue, workers and counters on that shared server. Its configuration
(`FAST_CONFIG`) gives an endpoint at most one worker with a 20 ms cold start, so a long job holds
the queue: jobs submitted after it stay IN_QUEUE until it ends or is cancelled.
`start_emulator(...)` starts another one for a single test with other settings.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.emulator.server import RunningEmulator, running_emulator

# GitHub Actions gives every step a run-summary file: the load runs and checks these tests start
# must not append to it (the tests of that summary give their own file).
os.environ.pop("GITHUB_STEP_SUMMARY", None)


@pytest.fixture(scope="session", autouse=True)
def _subprocess_sessions_skip_unused_plugins() -> Iterator[None]:
    """These tests start `pytest contract` and `runpod-testkit check` (pytest in-process) by the
    dozen; Schemathesis's and Hypothesis's pytest plugins, in the test extra for test_openapi.py
    and never used by the contract suite, cost 4 s of CPU at each of those starts. Set once this
    process's own plugins are loaded (not at import: xdist's workers would inherit it from the
    controller and start without Hypothesis's plugin)."""
    unused = "-p no:schemathesis -p no:hypothesispytest"
    before = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{before or ''} {unused}".strip()
    yield
    if before is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = before


FAST_CONFIG = EmulatorConfig(
    workers_min=0,
    workers_max=1,
    cold_start_ms=20,
    idle_timeout_s=60.0,
    queue_delay_s=60.0,
    seed=2026,
)
_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(EmulatorConfig))
TEST_API_KEY = "rpa_TESTKEY_0123456789abcdef"
"""Not a real key; an emulator started without api_key accepts any non-empty key."""


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """An emulator with FAST_CONFIG on a free loopback port, shared by a test module."""
    with running_emulator(FAST_CONFIG) as running:
        yield running


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """Start an emulator for this test only: EmulatorConfig fields change FAST_CONFIG, other
    keywords (api_key, rate_limits, job_log, clock) go to `running_emulator`."""
    with ExitStack() as stack:

        def start(**settings: Any) -> RunningEmulator:
            changes = {
                name: settings.pop(name) for name in list(settings) if name in _CONFIG_FIELDS
            }
            config = dataclasses.replace(FAST_CONFIG, **changes)
            return stack.enter_context(running_emulator(config, **settings))

        yield start


@pytest.fixture
def api_key() -> str:
    return TEST_API_KEY


@pytest.fixture
def endpoint_id() -> str:
    """A fresh endpoint id: its own queue and workers on the shared emulator."""
    return f"ep-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def api(emulator: RunningEmulator, endpoint_id: str, api_key: str) -> Iterator[httpx.Client]:
    """An httpx client for `endpoint_id` on `emulator`: base URL = the endpoint URL, so requests
    name only the operation (`api.post("/run", ...)`); sends the key as `Bearer`."""
    with httpx.Client(
        base_url=emulator.endpoint_url(endpoint_id),
        headers={"authorization": f"Bearer {api_key}"},
        timeout=15.0,
    ) as client:
        yield client


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn logs at ERROR while the test runs (an exception escaping the app is one)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
