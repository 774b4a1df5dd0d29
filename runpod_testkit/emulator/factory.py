"""The one place that wires an emulator together: both transports (the ASGI app and the respx
adapter) get their model, rate limiter, fault injector and service from `build_service`."""

from __future__ import annotations

from collections.abc import Callable, Collection

from runpod_testkit.emulator.faults import OperationFaultInjector
from runpod_testkit.emulator.model import Clock, EmulatorConfig, Job, Model, WorkerRuntime
from runpod_testkit.emulator.service import EmulatorService, RateLimiter, production_rate_limits

__all__ = ["JOB_FAULTS_NEED_SIMULATION", "build_service", "check_faults_for_runtime"]

JOB_FAULTS_NEED_SIMULATION = (
    "--faults: the job faults (worker_crash, worker_unhealthy, ...) act on simulated workers, "
    "not on --worker processes (a real handler crashes and stalls by itself); keep only the "
    "operation faults"
)


def check_faults_for_runtime(config: EmulatorConfig) -> None:
    """Real worker processes take operation faults only: ValueError otherwise."""
    if config.faults is not None and config.faults.jobs.active:
        raise ValueError(JOB_FAULTS_NEED_SIMULATION)


def build_service(
    config: EmulatorConfig | None,
    clock: Clock,
    *,
    api_key: str | None = None,
    rate_limits: bool = False,
    on_terminal: Callable[[Job], None] | None = None,
    on_change: Callable[[Job], None] | None = None,
    endpoint_ids: Collection[str] | None = None,
    runtime: WorkerRuntime | None = None,
) -> EmulatorService:
    """A service over a new model on `clock`; `service.model` is the model. `config.faults`
    (when set) gives the operation faults to the service and the job faults to the model,
    which keeps the count of both (`model.fault_counts`)."""
    if runtime is not None and config is not None:
        check_faults_for_runtime(config)
    model = Model(config, clock, on_terminal=on_terminal, on_change=on_change, runtime=runtime)
    limiter = RateLimiter(production_rate_limits()) if rate_limits else None
    faults = model.config.faults
    injector = (
        OperationFaultInjector(faults, model.fault_counts, model.config.seed)
        if faults is not None and faults.operations
        else None
    )
    return EmulatorService(
        model, api_key=api_key, rate_limiter=limiter, faults=injector, endpoint_ids=endpoint_ids
    )
