"""Bounded waiting for the tests that watch a separate process (Locust, an emulator, a browser)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

__all__ = ["wait_until"]


def wait_until(
    predicate: Callable[[], bool], timeout_s: float, what: str, *, interval_s: float = 0.1
) -> None:
    """Return once `predicate()` is true; fail the test after `timeout_s` naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
