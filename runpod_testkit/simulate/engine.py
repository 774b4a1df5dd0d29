"""One simulated run: arrivals and durations through the emulator's own model on a virtual clock.

Nothing here models production: `runpod_testkit.emulator.model.Model` does (queue, workers,
cold starts, scaler, idle timeout, execution timeout), exactly as the HTTP emulator and mock
mode run it. This module only feeds it jobs at their arrival times, jumps the clock from one
event to the next, and records what a load run records: each job's delayTime, executionTime
and e2e (submission to its terminal state) into a JobStats, a /health sample every
`health_interval_s`, and every worker's start and stop (worker-seconds as production bills
them: from start to stop, each worker rounded up to the second).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runpod_testkit.cost import CostEstimate, EmulatorUsage, estimate_cost
from runpod_testkit.emulator.mock import VIRTUAL_EPOCH, VirtualClock
from runpod_testkit.emulator.model import SCALERS, EmulatorConfig, Job, Model, Worker
from runpod_testkit.operations import POLICY_LIMITS
from runpod_testkit.slo import Slo
from runpod_testkit.stats.recorder import JobStats

__all__ = ["SIMULATED_ENDPOINT_ID", "EndpointSettings", "SimulationResult", "simulate"]

SIMULATED_ENDPOINT_ID = "simulated"
_EXECUTION_TIMEOUT = POLICY_LIMITS["executionTimeout"]


@dataclass(frozen=True)
class EndpointSettings:
    """The endpoint settings a simulation (or one sweep point) runs with."""

    workers_min: int = 0
    workers_max: int = 3
    cold_start_s: float = 1.0
    idle_timeout_s: float = 5.0
    scaler: str = "queue-delay"
    scaler_threshold: float = 4.0
    """Seconds of queue wait (queue-delay) or requests per worker (request-count)."""
    execution_timeout_s: float | None = None
    """None: production's default policy.executionTimeout."""

    def __post_init__(self) -> None:
        if self.scaler not in SCALERS:
            raise ValueError(f"--scaler must be one of {', '.join(SCALERS)}, got {self.scaler!r}")
        if self.scaler == "request-count" and (
            self.scaler_threshold < 1 or self.scaler_threshold != int(self.scaler_threshold)
        ):
            raise ValueError(
                "--scaler-threshold of request-count is a whole number of requests per "
                f"worker (>= 1), got {self.scaler_threshold:g}"
            )
        if not self.cold_start_s >= 0:
            raise ValueError(f"--cold-start-s must be >= 0, got {self.cold_start_s}")
        if self.execution_timeout_s is not None:
            ms = round(self.execution_timeout_s * 1000)
            if not _EXECUTION_TIMEOUT.minimum <= ms <= _EXECUTION_TIMEOUT.maximum:
                raise ValueError(
                    f"--execution-timeout-s must be from {_EXECUTION_TIMEOUT.minimum / 1000:g} "
                    f"to {_EXECUTION_TIMEOUT.maximum / 1000:g}, got {self.execution_timeout_s:g}"
                )
        # The model checks the rest (workers, timeouts) and says which.
        self.emulator_config(seed=0)

    def emulator_config(self, seed: int) -> EmulatorConfig:
        request_count = self.scaler == "request-count"
        return EmulatorConfig(
            workers_min=self.workers_min,
            workers_max=self.workers_max,
            cold_start_ms=round(self.cold_start_s * 1000),
            idle_timeout_s=self.idle_timeout_s,
            queue_delay_s=4.0 if request_count else self.scaler_threshold,
            scaler=self.scaler,
            requests_per_worker=int(self.scaler_threshold) if request_count else 1,
            seed=seed,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "workersMin": self.workers_min,
            "workersMax": self.workers_max,
            "coldStartS": self.cold_start_s,
            "idleTimeoutS": self.idle_timeout_s,
            "scaler": self.scaler,
            "scalerThreshold": self.scaler_threshold,
            "executionTimeoutS": self.execution_timeout_s,
        }


@dataclass
class _WorkerAccount:
    """Every worker's start and stop, as the model reports them."""

    workers: int = 0
    seconds: float = 0.0
    billed: int = 0

    def stopped(self, worker: Worker, at: float) -> None:
        self.add(at - worker.started_at)

    def add(self, seconds: float) -> None:
        self.workers += 1
        self.seconds += seconds
        self.billed += math.ceil(seconds - 1e-9)


class _EndedThisSecond:
    """Ended jobs gathered until the simulated second moves on, then recorded at once
    (`JobStats.record_terminals_of_one_second`: fewer calls per job than `record_terminal`)."""

    def __init__(self, stats: JobStats) -> None:
        self.stats = stats
        self.second = -1
        self.at = 0.0
        self.statuses: list[str] = []
        self.delays: list[int | None] = []
        self.executions: list[int | None] = []
        self.e2es: list[float] = []

    def add(self, job: Job, ended_at: float) -> None:
        second = math.floor(ended_at)
        if second != self.second:
            self.flush()
            self.second, self.at = second, ended_at
        self.statuses.append(job.status)
        self.delays.append(job.delay_ms)
        self.executions.append(job.execution_ms)
        self.e2es.append((ended_at - job.submitted_at) * 1000)

    def flush(self) -> None:
        if self.statuses:
            self.stats.record_terminals_of_one_second(
                self.at, self.statuses, self.delays, self.executions, self.e2es
            )
            self.statuses, self.delays, self.executions, self.e2es = [], [], [], []


@dataclass
class Tally:
    """What a sweep row needs of the ended jobs, and no more (no histograms, no time series:
    a sweep runs many simulations). Percentiles are exact, by the rank rule HDR uses."""

    delay_ms: list[int] = field(default_factory=list)
    e2e_ms: list[int] = field(default_factory=list)
    ended: int = 0
    completed: int = 0
    slo_met: int = 0
    judged: bool = False
    """Whether an SLO was given (attainment is None without one)."""

    _sorted: dict[str, list[int]] = field(default_factory=dict, repr=False)
    """Each metric's values sorted, once (a row reads three percentiles of each)."""

    def percentile(self, metric: str, percent: float) -> int | None:
        """delayTime or e2e: the smallest value with round(percent% of count) values at or
        below it; None without values."""
        recorded = self.delay_ms if metric == "delayTime" else self.e2e_ms
        values = self._sorted.get(metric)
        if values is None or len(values) != len(recorded):
            values = self._sorted[metric] = sorted(recorded)
        if not values:
            return None
        rank = max(1, int(percent * len(values) / 100 + 0.5))
        return values[min(rank, len(values)) - 1]

    @property
    def slo_attainment(self) -> float | None:
        return round(self.slo_met / self.ended, 6) if self.ended and self.judged else None


@dataclass
class SimulationResult:
    settings: EndpointSettings
    stats: JobStats
    """The job statistics a load run writes (empty when the run kept only a `tally`: no
    /health samples either)."""
    tally: Tally | None
    duration_s: float
    """From the first arrival slot (0) to the end: the last job ended and every worker above
    workers-min retired (at least the traffic's duration)."""
    worker_seconds: float
    billed_seconds: int
    workers_started: int
    cold_starts: int
    cost: CostEstimate | None
    """None when the run kept only a `tally` (a sweep row has its own cost columns)."""
    price_per_s: float | None

    @property
    def dollars(self) -> float | None:
        return None if self.price_per_s is None else self.billed_seconds * self.price_per_s


def simulate(
    arrivals: Sequence[float],
    durations: Sequence[float],
    settings: EndpointSettings,
    *,
    duration_s: float,
    seed: int = 0,
    slo: Slo | None = None,
    price_per_s: float | None = None,
    health_interval_s: float = 1.0,
    tally_only: bool = False,
) -> SimulationResult:
    """Run `arrivals` (seconds from 0, sorted) with `durations` (seconds each) through the
    model under `settings`; `duration_s`: the traffic's span (warm workers are billed for at
    least this long). `tally_only`: keep a `Tally` instead of full job statistics (a sweep)."""
    if len(arrivals) != len(durations):
        raise ValueError("one duration per arrival")
    clock = VirtualClock(VIRTUAL_EPOCH)
    origin = clock.now
    stats = JobStats(clock=clock)
    stats.slo = slo if slo else None
    account = _WorkerAccount()
    tally = Tally(judged=bool(slo)) if tally_only else None
    judge = slo if slo else None

    ended_this_second = _EndedThisSecond(stats)

    def ended(job: Job) -> None:
        ended_this_second.add(job, job.ended_at if job.ended_at is not None else clock.now)

    def tallied(job: Job) -> None:
        # Once per job: Job.delay_ms and Job.execution_ms, inline.
        assert tally is not None
        ended_at = job.ended_at
        if ended_at is None:
            ended_at = clock.now
        tally.e2e_ms.append(e2e_ms := round((ended_at - job.submitted_at) * 1000))
        tally.ended += 1
        started_at = job.started_at
        delay_ms = None
        if started_at is not None:
            tally.delay_ms.append(delay_ms := round((started_at - job.queued_at) * 1000))
        if job.status == "COMPLETED":
            tally.completed += 1
            if judge is not None:
                execution_ms = (
                    None
                    if started_at is None or job.ended_at is None
                    else round((job.ended_at - started_at) * 1000)
                )
                if judge.met(delay_ms, execution_ms, e2e_ms, None):
                    tally.slo_met += 1

    # Nothing reads a job after `on_terminal`: the model forgets it then, rather than keep it
    # for its retention period as the emulator does.
    model = Model(
        settings.emulator_config(seed),
        clock,
        on_terminal=tallied if tally_only else ended,
        keep_ended_jobs=False,
    )
    model.on_worker_stopped = account.stopped
    endpoint = model.endpoint(SIMULATED_ENDPOINT_ID)
    execution_timeout_ms = (
        _EXECUTION_TIMEOUT.default
        if settings.execution_timeout_s is None
        else round(settings.execution_timeout_s * 1000)
    )
    # A sweep row needs neither the /health samples nor the cost estimate made from them.
    next_sample = math.inf if tally_only else origin
    submitted = 0
    inputs: dict[int, dict[str, Any]] = {}
    for arrival, job_s in zip(arrivals, durations, strict=True):
        at = origin + arrival
        while next_sample <= at:
            clock.now = next_sample
            stats.record_health(model.health(SIMULATED_ENDPOINT_ID), at=next_sample)
            if submitted:  # counted per health interval: one call, not one per job
                stats.record_submitted(submitted, at=next_sample - health_interval_s)
                submitted = 0
            next_sample += health_interval_s
        clock.now = at
        sleep_ms = round(job_s * 1000)
        job_input = inputs.get(sleep_ms)
        if job_input is None:
            # Shared by every job of that length (the model never changes a job's input), and
            # the model's plan cache then parses each length once.
            job_input = {"sleep_ms": sleep_ms}
            if len(inputs) < 4096:
                inputs[sleep_ms] = job_input
        # What /run does with {"input": job_input, "policy": {"executionTimeout": ...}}, minus
        # the request checks: these values are ours.
        model.submit_simulated(endpoint, job_input, execution_timeout_ms)
        submitted += 1
    if submitted and not tally_only:
        stats.record_submitted(submitted, at=next_sample - health_interval_s)
    # Drain: run events until every job ended and every worker above workers-min retired.
    workers_min = settings.workers_min
    bound = 10_000_000
    while bound and (endpoint.queue or endpoint.in_progress or len(endpoint.workers) > workers_min):
        bound -= 1
        upcoming = model.next_event_time()
        if upcoming is None:
            break
        while next_sample <= upcoming:
            clock.now = next_sample
            stats.record_health(model.health(SIMULATED_ENDPOINT_ID), at=next_sample)
            next_sample += health_interval_s
        clock.jump_to(upcoming)
        model.advance()
    end = max(clock.now, origin + duration_s)
    clock.now = end
    model.advance()
    ended_this_second.flush()
    for worker in list(endpoint.workers.values()):  # warm workers: billed until the end
        account.add(end - worker.started_at)
    cost = None
    if not tally_only:
        stats.record_health(model.health(SIMULATED_ENDPOINT_ID), at=end)
        seconds_in_span = account.seconds
        usage = EmulatorUsage(account.workers, account.seconds, account.billed, seconds_in_span)
        cost = estimate_cost(
            stats.health_samples(),
            completed_jobs=stats.outcomes.get("COMPLETED", 0),
            price_per_s=price_per_s,
            duration_s=end - origin,
            emulator=usage,
        )
    return SimulationResult(
        settings=settings,
        stats=stats,
        tally=tally,
        duration_s=end - origin,
        worker_seconds=account.seconds,
        billed_seconds=account.billed,
        workers_started=account.workers,
        # Warm (workers-min) workers start without one; every worker the scaler starts has one.
        cold_starts=account.workers - workers_min,
        cost=cost,
        price_per_s=price_per_s,
    )
