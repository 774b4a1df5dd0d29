"""What keeps a load run safe on a paid endpoint: the refusal breaker, retries, client pacing.

- `RefusalBreaker`: N consecutive connection errors or 401/403 answers (one process's requests)
  mean the endpoint is down or refuses the key; the run stops (exit status 2) instead of
  sending thousands more. A success (2xx) resets the count; other answers leave it.
- `retry_decision` and `Backoff`: which answers are retried and after how long. 429 is retried
  for every operation (production refused it before doing anything, so even a /run is safe to
  resend). A 5xx or a connection lost after the request went out is retried for the reads and
  /cancel (idempotent), never for /run and /runsync: the job may exist already, so resending
  could run (and bill) it twice. Such a submission counts as "unknown" instead. A connection
  that was refused outright carried nothing and is retried for every operation.
- `Pacer`: keeps each operation's request rate under production's documented per-endpoint limit
  (the operations table), so a run measures the endpoint rather than its rate limiter.

None of this imports Locust or gevent: sleeping and the clock are passed in.
"""

from __future__ import annotations

import email.utils
import enum
import ipaddress
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runpod_testkit.operations import Operation, RateLimit
from runpod_testkit.stats.names import CONNECTION_ERROR, REFUSED, RETRIED, SERVER_ERROR, THROTTLED
from runpod_testkit.stats.recorder import JobStats

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REFUSAL_LIMIT",
    "PACING_HEADROOM",
    "Backoff",
    "Pacer",
    "RefusalBreaker",
    "Retry",
    "Safeguards",
    "is_loopback_url",
    "parse_retry_after",
    "retry_decision",
]

DEFAULT_REFUSAL_LIMIT = 50
DEFAULT_MAX_RETRIES = 5
PACING_HEADROOM = 0.9
"""Pace to 90% of a documented limit: room for clock skew and the run's own /cancel calls."""
REFUSAL_STATUSES = frozenset({401, 403})
SUBMISSIONS = frozenset({"run", "runsync"})
"""Operations that create a job: never resent unless the endpoint surely did not take them."""


# --------------------------------------------------------------------------- breaker


class RefusalBreaker:
    """Counts consecutive refusals (no connection, 401, 403) and trips once at `limit`
    (0: never). `on_trip(reason)` is called once, with a reason that never holds the key."""

    def __init__(self, limit: int, on_trip: Callable[[str], None]) -> None:
        self.limit = limit
        self.on_trip = on_trip
        self.consecutive = 0
        self.reason: str | None = None
        """Set when tripped."""

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def observe(self, status_code: int, error: BaseException | None = None) -> None:
        """Count one answer (status 0: no HTTP answer, `error` says why)."""
        if 200 <= status_code < 300:
            self.consecutive = 0
            return
        if status_code != 0 and status_code not in REFUSAL_STATUSES:
            return  # 4xx, 429, 5xx: the endpoint is there and took the key
        self.consecutive += 1
        if self.limit and self.consecutive >= self.limit and self.reason is None:
            self.reason = _refusal_reason(self.consecutive, status_code, error)
            self.on_trip(self.reason)


def _refusal_reason(count: int, status_code: int, error: BaseException | None) -> str:
    if status_code == 0:
        kind = type(error).__name__ if error is not None else "no response"
        return (
            f"{count} consecutive requests got no answer from the endpoint ({kind}); "
            "is it up, and is --host right?"
        )
    return (
        f"{count} consecutive requests were refused with HTTP {status_code}; "
        "check RUNPOD_API_KEY and the endpoint in --host"
    )


# --------------------------------------------------------------------------- retries


class Retry(enum.Enum):
    NO = "no"
    """Done: a usable answer, or one that retrying would not change (400, 404, ...)."""
    YES = "yes"
    UNKNOWN_OUTCOME = "unknown"
    """A submission that may have created a job: do not resend it."""


def retry_decision(op: Operation, status_code: int, error: BaseException | None) -> Retry:
    if status_code == 429 or isinstance(error, ConnectionRefusedError):
        return Retry.YES  # refused before anything was done
    if status_code == 0 or status_code >= 500:
        return Retry.UNKNOWN_OUTCOME if op.name in SUBMISSIONS else Retry.YES
    return Retry.NO


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or
    unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter; a Retry-After is waited in full (plus a little
    jitter, so that many users told the same time do not come back at once)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    base_s: float = 0.1
    cap_s: float = 10.0

    def delay_s(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first)."""
        if retry_after_s is not None:
            return retry_after_s + rng.uniform(0, self.base_s)
        return rng.uniform(0, min(self.cap_s, self.base_s * 2**retry))


# --------------------------------------------------------------------------- pacing


class _Gcra:
    """One rate as a token bucket in its GCRA form (a theoretical arrival time): `reserve()`
    takes the next free slot and says how long to wait for it, so a caller sleeps once."""

    __slots__ = ("_clock", "_tat", "interval_s", "tolerance_s")

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float]) -> None:
        self.interval_s = 1.0 / rate_per_s
        self.tolerance_s = max(0.0, burst - 1) * self.interval_s
        self._clock = clock
        self._tat = 0.0

    def reserve(self) -> float:
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self.interval_s
        return max(0.0, tat - self.tolerance_s - now)


class Pacer:
    """Holds requests back so that each rate-limit group stays under its documented limit.

    Each process paces its share of a limit (L requests per window W, divided by `processes`:
    every Locust worker paces its own share) as a token bucket with a burst of B = 5% of the
    share (at least 1) refilled at (0.9 x share - B) / W per second. Any span of W seconds then
    holds at most 0.9 x share requests: under the limit, with room for clock skew."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        processes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(limits)
        self.clock = clock
        self.processes = 0
        self._buckets: dict[str, _Gcra] = {}
        self.set_processes(processes)

    def set_processes(self, processes: int) -> None:
        """Share the limits among this many processes (from the next request on)."""
        processes = max(1, processes)
        if processes == self.processes:
            return
        self.processes = processes
        self._buckets = {}
        for group, limit in self.limits.items():
            share = limit.requests / processes
            burst = max(1.0, 0.05 * share)
            # A share too small for any burst (a tiny limit, many processes) gets a slow rate.
            per_window = max(PACING_HEADROOM * share - burst, 0.1 * share)
            self._buckets[group] = _Gcra(per_window / limit.window_s, burst, self.clock)

    def rate_per_s(self, op: Operation) -> float | None:
        bucket = self._buckets.get(op.rate_limit_group)
        return None if bucket is None else 1.0 / bucket.interval_s

    def reserve(self, op: Operation) -> float:
        """Seconds this request must wait for its slot (0: send it now)."""
        bucket = self._buckets.get(op.rate_limit_group)
        return 0.0 if bucket is None else bucket.reserve()


# --------------------------------------------------------------------------- one process's guard


@dataclass
class Safeguards:
    """One Locust process's breaker, retry policy and pacer, and the counts they keep in its
    JobStats. Every caller of the process shares it."""

    stats: JobStats
    breaker: RefusalBreaker | None = None
    backoff: Backoff = field(default_factory=Backoff)
    pacer: Pacer | None = None
    retry_budget_s: float = 30.0
    """How long a call without a job deadline (/cancel, /health) keeps retrying."""
    rng: random.Random = field(default_factory=random.Random)

    @property
    def stopped(self) -> bool:
        """The breaker tripped: no more retries."""
        return self.breaker is not None and self.breaker.tripped

    def pace(self, op: Operation) -> float:
        """Seconds to hold this request back (0 when not paced); counted when above 0."""
        if self.pacer is None:
            return 0.0
        wait = self.pacer.reserve(op)
        if wait > 0:
            self.stats.record_paced(wait)
        return wait

    def observe(self, status_code: int, error: BaseException | None) -> None:
        """Count one answer and feed it to the breaker."""
        kind = _REQUEST_KIND.get(status_code)
        if kind is None and status_code >= 500:
            kind = SERVER_ERROR
        if kind is not None:
            self.stats.record_request(kind)
        if self.breaker is not None:
            self.breaker.observe(status_code, error)

    def retry_delay_s(
        self,
        op: Operation,
        status_code: int,
        error: BaseException | None,
        *,
        retry: int,
        retry_after: str | None,
        time_left_s: float,
    ) -> float | None:
        """Seconds to wait before sending this request again, or None not to resend it."""
        if self.stopped or retry >= self.backoff.max_retries:
            return None
        if retry_decision(op, status_code, error) is not Retry.YES:
            return None
        delay = self.backoff.delay_s(retry, parse_retry_after(retry_after), self.rng)
        if delay >= time_left_s:
            return None  # the answer would come too late to be of use
        self.stats.record_request(RETRIED)
        return delay


_REQUEST_KIND = {0: CONNECTION_ERROR, 401: REFUSED, 403: REFUSED, 429: THROTTLED}


def is_loopback_url(url: str) -> bool:
    """Whether `url`'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
