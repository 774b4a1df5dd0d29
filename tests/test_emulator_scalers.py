"""The emulator's two scalers (issue 15): queue-delay and production's request-count, in the
model on a virtual clock, and as `runpod-testkit emulator --scaler/--scaler-threshold`."""

from __future__ import annotations

import argparse
import math

import pytest

from runpod_testkit.cli import build_parser
from runpod_testkit.emulator.mock import VirtualClock
from runpod_testkit.emulator.model import EmulatorConfig, Model, WorkerState

EP = "endpoint-a"


def _model(**config: object) -> tuple[Model, VirtualClock]:
    clock = VirtualClock()
    return Model(EmulatorConfig(seed=1, **config), clock), clock  # type: ignore[arg-type]


@pytest.mark.parametrize(("jobs", "per_worker"), [(1, 1), (5, 1), (5, 2), (7, 3), (30, 4)])
def test_request_count_starts_ceil_requests_over_threshold_workers(
    jobs: int, per_worker: int
) -> None:
    model, _ = _model(
        workers_max=10, cold_start_ms=1000, scaler="request-count", requests_per_worker=per_worker
    )
    for _ in range(jobs):
        model.submit(EP, {"input": {"sleep_ms": 5000}})
    workers = model.endpoints[EP].workers
    assert len(workers) == min(10, math.ceil(jobs / per_worker))
    assert all(w.state is WorkerState.INITIALIZING for w in workers.values())


def test_request_count_counts_running_jobs_too() -> None:
    model, clock = _model(
        workers_max=10, cold_start_ms=0, scaler="request-count", requests_per_worker=2
    )
    for _ in range(2):  # one worker for both: one runs, one waits
        model.submit(EP, {"input": {"sleep_ms": 10_000}})
    assert len(model.endpoints[EP].workers) == 1
    clock.advance(1.0)
    model.submit(EP, {"input": {"sleep_ms": 10_000}})  # 1 running + 2 queued: ceil(3/2) = 2
    assert len(model.endpoints[EP].workers) == 2


def test_queue_delay_waits_for_the_threshold_before_adding_a_worker() -> None:
    model, clock = _model(workers_max=5, cold_start_ms=0, queue_delay_s=2.0)
    for _ in range(3):
        model.submit(EP, {"input": {"sleep_ms": 60_000}})
    assert len(model.endpoints[EP].workers) == 1  # from zero at once, then only when overdue
    clock.advance(1.999)
    model.advance()
    assert len(model.endpoints[EP].workers) == 1
    clock.advance(0.001)
    model.advance()
    # Each of the two waiting jobs has now waited 2 s: each starts a worker.
    assert len(model.endpoints[EP].workers) == 3


def test_unknown_scaler_is_refused() -> None:
    with pytest.raises(ValueError, match="scaler must be one of"):
        EmulatorConfig(scaler="fastest")
    with pytest.raises(ValueError, match="requests_per_worker"):
        EmulatorConfig(scaler="request-count", requests_per_worker=0)


def test_emulator_cli_takes_the_simulate_option_names() -> None:
    args = build_parser().parse_args(
        ["emulator", "--scaler", "request-count", "--scaler-threshold", "3"]
    )
    assert isinstance(args, argparse.Namespace)
    assert (args.scaler, args.scaler_threshold) == ("request-count", 3.0)
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["emulator", "--scaler", "fastest"])
    assert stopped.value.code == 2
