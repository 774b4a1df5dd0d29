"""Self-tests of runpod_testkit.loadtest.failsafe: the refusal breaker, which answers are sent
again and after how long, and client-side pacing (on a fake clock: nothing sleeps)."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.failsafe import (
    PACING_HEADROOM,
    Backoff,
    Pacer,
    RefusalBreaker,
    Retry,
    Safeguards,
    is_loopback_url,
    parse_retry_after,
    retry_decision,
)
from runpod_testkit.operations import OPERATIONS, RateLimit

RUN, RUNSYNC, STATUS = OPERATIONS["run"], OPERATIONS["runsync"], OPERATIONS["status"]
STREAM, CANCEL, HEALTH = OPERATIONS["stream"], OPERATIONS["cancel"], OPERATIONS["health"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- breaker


def breaker(limit: int) -> tuple[RefusalBreaker, list[str]]:
    trips: list[str] = []
    return RefusalBreaker(limit, trips.append), trips


def test_the_breaker_trips_once_after_limit_consecutive_refusals() -> None:
    guard, trips = breaker(3)
    guard.observe(401)
    guard.observe(403)
    assert not guard.tripped
    guard.observe(401)
    assert guard.tripped
    for _ in range(5):
        guard.observe(401)
    assert trips == [
        "3 consecutive requests were refused with HTTP 401; "
        "check RUNPOD_API_KEY and the endpoint in --host"
    ]


def test_connection_errors_count_and_name_their_kind() -> None:
    guard, trips = breaker(2)
    guard.observe(0, ConnectionRefusedError(111, "refused"))
    guard.observe(0, ConnectionRefusedError(111, "refused"))
    assert trips == [
        "2 consecutive requests got no answer from the endpoint (ConnectionRefusedError); "
        "is it up, and is --host right?"
    ]


def test_a_success_resets_the_count_and_other_answers_leave_it() -> None:
    guard, trips = breaker(3)
    guard.observe(401)
    guard.observe(0)
    guard.observe(200)  # a success: counting starts again
    guard.observe(401)
    for status in (404, 429, 503, 400):
        guard.observe(status)  # the endpoint is there and took the key: neither way
    guard.observe(401)
    assert guard.consecutive == 2
    assert not trips
    guard.observe(0)
    assert len(trips) == 1


def test_a_limit_of_zero_never_trips() -> None:
    guard, trips = breaker(0)
    for _ in range(1000):
        guard.observe(401)
    assert not trips
    assert not guard.tripped


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("op", [RUN, RUNSYNC, STATUS, STREAM, CANCEL, HEALTH], ids=lambda o: o.name)
def test_429_and_a_refused_connection_are_retried_for_every_operation(op: object) -> None:
    assert retry_decision(op, 429, None) is Retry.YES  # type: ignore[arg-type]
    refused = ConnectionRefusedError(111, "refused")
    assert retry_decision(op, 0, refused) is Retry.YES  # type: ignore[arg-type]


@pytest.mark.parametrize("op", [STATUS, STREAM, CANCEL, HEALTH], ids=lambda o: o.name)
def test_reads_and_cancel_are_retried_after_a_5xx_or_a_lost_connection(op: object) -> None:
    for status, error in ((500, None), (503, None), (0, ConnectionResetError()), (0, None)):
        assert retry_decision(op, status, error) is Retry.YES  # type: ignore[arg-type]


@pytest.mark.parametrize("op", [RUN, RUNSYNC], ids=lambda o: o.name)
def test_a_submission_is_never_resent_after_a_5xx_or_a_lost_connection(op: object) -> None:
    for status, error in ((500, None), (503, None), (0, ConnectionResetError()), (0, None)):
        assert retry_decision(op, status, error) is Retry.UNKNOWN_OUTCOME  # type: ignore[arg-type]


def test_other_answers_are_not_retried() -> None:
    for op in (RUN, STATUS, CANCEL):
        for status in (200, 400, 401, 403, 404, 405, 413):
            assert retry_decision(op, status, None) is Retry.NO


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    when = datetime(2030, 1, 1, 0, 0, 10, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=when.timestamp() - 10) == (
        pytest.approx(10.0)
    )


def test_backoff_grows_with_full_jitter_under_a_cap() -> None:
    backoff = Backoff(max_retries=8, base_s=0.1, cap_s=1.0)
    rng = random.Random(7)
    for retry in range(8):
        delays = [backoff.delay_s(retry, None, rng) for _ in range(200)]
        ceiling = min(1.0, 0.1 * 2**retry)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread over the whole range


def test_backoff_waits_at_least_retry_after() -> None:
    backoff = Backoff(base_s=0.1)
    rng = random.Random(1)
    delays = [backoff.delay_s(0, 7.0, rng) for _ in range(100)]
    assert all(7.0 <= d <= 7.1 for d in delays)
    assert len(set(delays)) > 50  # jittered: users told the same time do not come back at once


def test_the_guard_counts_answers_and_bounds_retries_by_attempts_and_deadline() -> None:
    stats = JobStats()
    guard = Safeguards(stats, backoff=Backoff(max_retries=2, base_s=0.1))
    for status in (429, 503, 0, 401, 200, 404):
        guard.observe(status, None)
    assert stats.request_counts() == {
        "throttled": 1,
        "serverError": 1,
        "connectionError": 1,
        "refused": 1,
        "retried": 0,
    }

    def delay(
        retry: int, time_left_s: float = 60.0, retry_after: str | None = None
    ) -> float | None:
        return guard.retry_delay_s(
            STATUS, 503, None, retry=retry, retry_after=retry_after, time_left_s=time_left_s
        )

    assert delay(0) is not None
    assert delay(1) is not None
    assert delay(2) is None  # max_retries spent
    assert delay(0, retry_after="5", time_left_s=4.0) is None  # the answer would come too late
    assert delay(0, retry_after="5", time_left_s=6.0) == pytest.approx(5.05, abs=0.05)
    assert stats.request_counts()["retried"] == 3
    assert guard.retry_delay_s(RUN, 503, None, retry=0, retry_after=None, time_left_s=60) is None
    guard.breaker = RefusalBreaker(1, lambda _reason: None)
    guard.observe(401, None)
    assert guard.stopped
    assert delay(0) is None  # a run that is stopping sends nothing again


# --------------------------------------------------------------------------- pacing


def sent_per_window(pacer: Pacer, clock: FakeClock, op: object, seconds: float) -> list[float]:
    """Send as fast as the pacer allows for `seconds`; the send times."""
    sends: list[float] = []
    start = clock.now
    while clock.now < start + seconds:
        clock.now += pacer.reserve(op)  # type: ignore[arg-type]  # the caller sleeps this long
        sends.append(clock.now)
    return sends


def max_in_any_window(sends: list[float], window_s: float) -> int:
    best, first = 0, 0
    for last, t in enumerate(sends):
        while t - sends[first] >= window_s:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.mark.parametrize("processes", [1, 2, 4])
def test_pacing_keeps_every_window_under_the_documented_limit(processes: int) -> None:
    clock = FakeClock()
    limits = {"run": RateLimit(1000, 10.0, 200), "status": RateLimit(2000, 10.0, 400)}
    pacer = Pacer(limits, processes=processes, clock=clock)
    for op, limit in ((RUN, limits["run"]), (STATUS, limits["status"])):
        sends = sent_per_window(pacer, clock, op, 35.0)
        share = limit.requests / processes
        busiest = max_in_any_window(sends, limit.window_s)
        assert busiest <= PACING_HEADROOM * share + 1
        assert busiest >= 0.85 * share  # and it does not hold back much more than it must
    # /stream shares /status's budget (one rate-limit group); /health has no limit.
    assert pacer.rate_per_s(STREAM) == pacer.rate_per_s(STATUS)
    assert pacer.rate_per_s(HEALTH) is None
    assert all(pacer.reserve(HEALTH) == 0 for _ in range(10_000))


def test_pacing_lets_a_short_burst_through_then_spaces_requests() -> None:
    clock = FakeClock()
    pacer = Pacer({"run": RateLimit(1000, 10.0, 200)}, clock=clock)
    waits = [pacer.reserve(RUN) for _ in range(60)]
    assert waits[:50] == [0.0] * 50  # 5% of the window's share at once
    assert 0 < waits[50] < waits[59]


def test_pacing_a_tiny_limit_still_stays_under_it() -> None:
    clock = FakeClock()
    pacer = Pacer({"purge-queue": RateLimit(2, 10.0, None)}, clock=clock)
    sends = sent_per_window(pacer, clock, OPERATIONS["purge-queue"], 60.0)
    assert max_in_any_window(sends, 10.0) <= 2


def test_a_new_process_count_applies_to_the_next_request() -> None:
    clock = FakeClock()
    pacer = Pacer({"run": RateLimit(1000, 10.0, 200)}, clock=clock)
    one = pacer.rate_per_s(RUN)
    pacer.set_processes(4)
    assert pacer.rate_per_s(RUN) == pytest.approx(one / 4, rel=0.01)  # type: ignore[operator]


def test_pacing_is_counted_in_the_statistics() -> None:
    clock = FakeClock()
    stats = JobStats()
    guard = Safeguards(stats, pacer=Pacer({"run": RateLimit(20, 10.0, None)}, clock=clock))
    waits = [guard.pace(RUN) for _ in range(3)]
    assert waits[0] == 0
    assert waits[1] > 0
    summary = stats.pacing_summary()
    assert summary["held"] == 2
    assert summary["waitS"] == pytest.approx(sum(waits), abs=0.002)  # whole milliseconds


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/v2/x", True),
        ("http://127.8.9.10/v2/x", True),
        ("http://localhost:1/v2/x", True),
        ("http://[::1]:8000/v2/x", True),
        ("https://api.runpod.ai/v2/x", False),
        ("http://10.0.0.1/v2/x", False),
    ],
)
def test_what_counts_as_loopback(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
