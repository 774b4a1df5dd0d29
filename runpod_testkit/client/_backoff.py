"""Which answers are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from datetime import timezone

_MAX_BACKOFF_EXPONENT = 30

READS = frozenset({"status", "status-sync", "stream", "health"})
"""Idempotent operations: retried after a 5xx or a dropped connection as well as a 429."""
RETRIED_READ_STATUSES = frozenset({500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date.

    Returns None for a missing or unusable value; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


@dataclass(frozen=True)
class Backoff:
    """How 429 answers are retried.

    A Retry-After header is honoured exactly; if it asks for more than `max_backoff_s`, or any
    wait would take the total past `max_total_s`, the 429 is returned instead. Without the header
    the wait is jittered exponential: `base_delay_s * 2**n` capped at `max_backoff_s`, drawn from
    the upper half of that. `Backoff(max_retries=0)` turns retrying off.
    """

    max_retries: int = 5
    max_backoff_s: float = 30.0
    max_total_s: float = 60.0
    base_delay_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_retries", "max_backoff_s", "max_total_s", "base_delay_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Backoff.{name} must be a finite number >= 0, got {value!r}")

    def delay(self, retry_index: int, retry_after_s: float | None, slept_s: float) -> float | None:
        """Seconds to wait before retry number `retry_index` (0-based), or None to give up."""
        if retry_index >= self.max_retries:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_backoff_s:
                return None
            delay = retry_after_s
        else:
            exponent = min(retry_index, _MAX_BACKOFF_EXPONENT)
            ceiling = min(self.max_backoff_s, self.base_delay_s * 2**exponent)
            delay = ceiling / 2 + random.uniform(0.0, ceiling / 2)
        return None if slept_s + delay > self.max_total_s else delay
