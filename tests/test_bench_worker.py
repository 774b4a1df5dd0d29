"""The span arithmetic of benchmarks/bench_worker.py (benchmarks/worker_spans.py): which job-take
brought which job, and how a job's pickup and execution split between the runpod SDK's loop and
the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.worker_spans import (
    ClientTimes,
    open_take_since,
    percentile,
    split_job,
    take_cycles,
    worker_spans,
)


def event(what: str, t: float, job: str | None = None, status: int | None = None) -> dict[str, Any]:
    return {"what": what, "t": t, "job": job, "status": status}


# One worker process: an empty long poll (204), then job a (taken while idle), then job b.
TRACE = [
    event("take-sent", 0.0),
    event("take-answered", 20.0, status=204),
    event("take-sent", 20.0),
    event("take-answered", 25.002, status=200),
    event("handler-start", 25.050, "a"),
    event("handler-end", 25.550, "a"),
    event("done-sent", 25.551, "a"),
    event("done-answered", 25.553, "a", 200),
    event("take-sent", 26.003),
    event("take-answered", 26.004, status=200),
    event("handler-start", 26.100, "b"),
    event("handler-end", 26.100, "b"),
    event("done-sent", 26.101, "b"),
    event("done-answered", 26.1025, "b", 200),
    event("take-sent", 27.005),
    event("take-answered", 27.006, status=200),
    event("handler-start", 27.010, "c"),  # still running: left out
]


def test_each_job_gets_the_take_that_brought_it_and_partial_jobs_are_left_out() -> None:
    spans = worker_spans(TRACE)

    assert sorted(spans) == ["a", "b"]
    assert (spans["a"].take_sent, spans["a"].take_answered) == (20.0, 25.002)
    assert (spans["b"].take_sent, spans["b"].take_answered) == (26.003, 26.004)
    assert (spans["a"].done_sent, spans["a"].done_answered) == (25.551, 25.553)


def test_a_job_submitted_to_an_idle_worker_owes_the_sdk_nothing() -> None:
    span = worker_spans(TRACE)["a"]
    split = split_job(ClientTimes(25.0, 25.001, delay_ms=0, execution_ms=552), span)

    assert split.sdk_pickup_wait_ms == 0
    assert split.emulator_pickup_ms == pytest.approx(2.0)  # /run sent -> job in the SDK's hands
    assert split.run_round_trip_ms == pytest.approx(1.0)
    assert split.sdk_span_ms == pytest.approx(549.0)
    assert split.sdk_queue_wait_ms == pytest.approx(48.0)
    assert split.handler_ms == pytest.approx(500.0)
    assert split.emulator_execution_ms == pytest.approx(3.0)  # 552 - 549
    assert split.done_round_trip_ms == pytest.approx(2.0)


def test_a_job_submitted_while_the_sdk_sleeps_waits_for_its_next_take() -> None:
    span = worker_spans(TRACE)["b"]
    split = split_job(ClientTimes(25.6, 25.601, delay_ms=404, execution_ms=98), span)

    assert split.sdk_pickup_wait_ms == pytest.approx(403.0)  # /run sent -> take sent
    assert split.emulator_pickup_ms == pytest.approx(1.0)  # take sent -> take answered
    assert split.emulator_execution_ms == pytest.approx(1.0)  # 98 - 97


def test_open_take_is_the_last_take_sent_and_not_yet_answered() -> None:
    assert open_take_since(TRACE[:3]) == 20.0
    assert open_take_since(TRACE[:4]) is None
    assert open_take_since(TRACE[:9]) == 26.003  # done events do not close a take
    assert open_take_since([]) is None


def test_take_cycles_and_nearest_rank_percentiles() -> None:
    assert take_cycles(TRACE) == pytest.approx([1.002, 1.002])
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0
