"""pytest plugin (registered as an entry point): fixtures for users' own tests.

- `runpod_mock`: the emulator model behind an httpx mock transport, on a virtual clock.
- `runpod_endpoint`: the emulator served over real HTTP on loopback, with the official `runpod`
  SDK pointed at it; yields a `runpod.Endpoint` (`runpod` is imported only when it is used).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runpod_testkit.emulator.mock import runpod_mock
from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.emulator.server import running_emulator

__all__ = ["SDK_FIXTURE_API_KEY", "SDK_FIXTURE_CONFIG", "runpod_endpoint", "runpod_mock"]

SDK_FIXTURE_API_KEY = "rpa_RUNPOD_TESTKIT_EMULATOR_KEY"
"""Not a real key: the emulator of `runpod_endpoint` accepts only this one."""

SDK_FIXTURE_CONFIG = EmulatorConfig(
    workers_min=0, workers_max=1, cold_start_ms=20, idle_timeout_s=60.0, queue_delay_s=60.0
)
"""One worker with a 20 ms cold start: fast, and a long job holds the queue."""


@pytest.fixture
def runpod_endpoint() -> Iterator[Any]:
    """A `runpod.Endpoint` served by an emulator on 127.0.0.1 for the duration of a test.

    `runpod.endpoint_url_base` and `runpod.api_key` point at the emulator and are restored
    afterwards; the emulator stops when the test ends. Rate limits stay off (the SDK retries a
    429 for 30 s).
    """
    try:
        import runpod
    except ImportError:  # pragma: no cover - depends on the installed extras
        pytest.fail(
            "the runpod_endpoint fixture needs the runpod SDK: pip install 'runpod-testkit[probe]'"
        )
    saved = (runpod.endpoint_url_base, runpod.api_key)
    with running_emulator(SDK_FIXTURE_CONFIG, api_key=SDK_FIXTURE_API_KEY) as emulator:
        runpod.endpoint_url_base = emulator.base_url
        runpod.api_key = SDK_FIXTURE_API_KEY
        try:
            yield runpod.Endpoint(f"ep-{uuid.uuid4().hex[:12]}")
        finally:
            runpod.endpoint_url_base, runpod.api_key = saved
