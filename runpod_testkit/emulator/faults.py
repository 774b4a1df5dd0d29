"""Fault injection: what `--faults JSON|@FILE` asks the emulator to get wrong, and how often.

    {"seed": 7,
     "operations": {"status": {"503": 0.1, "retry_after_s": 1,
                               "latency_ms": {"p50": 20, "p99": 400}},
                    "run": {"429": 0.05},
                    "*": {"reset": 0.01}},
     "jobs": {"worker_crash": 0.01, "worker_unhealthy": 0.0, "worker_throttled": 0.0,
              "cold_start_spike": {"probability": 0.1, "extra_ms": 10000},
              "output_lost": 0.0}}

Operation faults are drawn per request (after auth and routing, before the rate limiter and the
handler): one draw picks at most one of 429 (with `Retry-After`), 500, 502, 503 or a reset
connection, so their probabilities add up to at most 1; a latency draw is added on top. `"*"`
gives every operation's defaults, and a named operation's keys override them. Job faults are
drawn by the model (see `JobFaults`). Every draw comes from a `random.Random` seeded with
`"seed"` (else the emulator's `--seed`), so a mock-mode run is the same run after run.

`FaultConfig.parse()` validates strictly: an unknown key or a probability outside 0..1 raises
`FaultConfigError` naming the key.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runpod_testkit.operations import OPERATIONS

__all__ = [
    "FAULT_STATUSES",
    "ColdStartSpike",
    "FaultConfig",
    "FaultConfigError",
    "FaultCounts",
    "InjectedFault",
    "JobFaults",
    "Latency",
    "OperationFaultInjector",
    "OperationFaults",
    "WorkerFault",
    "load_faults",
]

FAULT_STATUSES = (429, 500, 502, 503)
"""The HTTP statuses an operation fault can answer with, in the order they are drawn."""
RESET = "reset"
ANY_OPERATION = "*"
_Z99 = 2.3263478740408408
"""The standard normal's 99th percentile: a lognormal's p99 is p50 * exp(sigma * _Z99)."""
_DEFAULT_WORKER_FAULT_MS = 10_000
_OPERATION_KEYS = frozenset({*map(str, FAULT_STATUSES), RESET, "retry_after_s", "latency_ms"})
_JOB_KEYS = frozenset(
    {"worker_crash", "worker_unhealthy", "worker_throttled", "cold_start_spike", "output_lost"}
)


class FaultConfigError(ValueError):
    """A faults document that cannot be used; the message names the key and what is wrong."""


# --------------------------------------------------------------------------- value checks


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise FaultConfigError(f"{where} must be a JSON object, got {_kind(value)}")
    return value


def _refuse_unknown(value: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise FaultConfigError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )


def _number(value: Any, where: str, *, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultConfigError(f"{where} must be a number, got {_kind(value)}")
    if value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
        raise FaultConfigError(f"{where} must be {span}, got {value!r}")
    return float(value)


def _probability(value: Any, where: str) -> float:
    return _number(value, where, low=0.0, high=1.0)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "an array" if isinstance(value, list) else "an object"


# --------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class Latency:
    """Added latency in milliseconds, drawn per request (with `probability`, default 1):

    - a number or `{"fixed": MS}`: always MS;
    - `{"min": A, "max": B}`: uniform from A to B;
    - `{"p50": M, "p99": N}`: lognormal with median M and 99th percentile N (a long tail, as
      network latency has; N >= M).
    """

    kind: str
    a: float
    b: float = 0.0
    probability: float = 1.0

    @classmethod
    def parse(cls, value: Any, where: str) -> Latency:
        if not isinstance(value, dict):
            return cls("fixed", _number(value, where))
        _refuse_unknown(
            value, frozenset({"fixed", "min", "max", "p50", "p99", "probability"}), where
        )
        probability = _probability(value.get("probability", 1.0), f"{where}.probability")
        keys = set(value) - {"probability"}
        if keys == {"fixed"}:
            return cls("fixed", _number(value["fixed"], f"{where}.fixed"), 0.0, probability)
        if keys == {"min", "max"}:
            low = _number(value["min"], f"{where}.min")
            high = _number(value["max"], f"{where}.max", low=low)
            return cls("uniform", low, high, probability)
        if keys == {"p50", "p99"}:
            p50 = _number(value["p50"], f"{where}.p50")
            if p50 <= 0:
                raise FaultConfigError(f"{where}.p50 must be above 0, got {value['p50']!r}")
            p99 = _number(value["p99"], f"{where}.p99", low=p50)
            return cls("lognormal", p50, p99, probability)
        raise FaultConfigError(
            f'{where} must be a number of ms, {{"fixed": MS}}, {{"min": MS, "max": MS}} '
            f'or {{"p50": MS, "p99": MS}} (plus an optional probability)'
        )

    def draw_ms(self, rng: random.Random) -> float:
        """Milliseconds to add (0 when this request is not delayed)."""
        if self.probability < 1.0 and rng.random() >= self.probability:
            return 0.0
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        sigma = math.log(self.b / self.a) / _Z99
        return rng.lognormvariate(math.log(self.a), sigma)


# --------------------------------------------------------------------------- operation faults


@dataclass(frozen=True)
class OperationFaults:
    """The faults of one operation: answer probabilities, Retry-After of a 429, latency."""

    statuses: tuple[tuple[int, float], ...] = ()
    """(status, probability) for each of FAULT_STATUSES that can happen."""
    reset: float = 0.0
    retry_after_s: int = 1
    latency: Latency | None = None

    @classmethod
    def parse(
        cls, value: Any, where: str, defaults: Mapping[str, Any] | None = None
    ) -> OperationFaults:
        value = _object(value, where)
        _refuse_unknown(value, _OPERATION_KEYS, where)
        merged = {**(defaults or {}), **value}
        statuses: list[tuple[int, float]] = []
        for status in FAULT_STATUSES:
            probability = _probability(merged.get(str(status), 0.0), f"{where}.{status}")
            if probability:
                statuses.append((status, probability))
        reset = _probability(merged.get(RESET, 0.0), f"{where}.{RESET}")
        total = sum(p for _, p in statuses) + reset
        if total > 1.0 + 1e-9:
            raise FaultConfigError(
                f"{where}: the probabilities of 429, 500, 502, 503 and reset add up to "
                f"{total:g}; one request gets at most one of them, so at most 1"
            )
        retry_after = _number(merged.get("retry_after_s", 1), f"{where}.retry_after_s", low=1)
        if retry_after != int(retry_after):
            raise FaultConfigError(
                f"{where}.retry_after_s must be whole seconds, got {retry_after:g}"
            )
        latency = merged.get("latency_ms")
        return cls(
            tuple(statuses),
            reset,
            int(retry_after),
            None if latency is None else Latency.parse(latency, f"{where}.latency_ms"),
        )

    @property
    def active(self) -> bool:
        return bool(self.statuses or self.reset or self.latency)


@dataclass(frozen=True)
class InjectedFault:
    """What one request gets instead of (or before) its answer."""

    delay_s: float = 0.0
    """Seconds to wait before handling the request (added latency)."""
    status: int | None = None
    """An error status to answer instead of handling the request."""
    reset: bool = False
    """Close the connection without any answer."""
    retry_after_s: int = 1


# --------------------------------------------------------------------------- job faults


@dataclass(frozen=True)
class WorkerFault:
    """A worker that turns unhealthy or throttled after a job, for `duration_ms`."""

    probability: float = 0.0
    duration_ms: float = _DEFAULT_WORKER_FAULT_MS

    @classmethod
    def parse(cls, value: Any, where: str) -> WorkerFault:
        if not isinstance(value, dict):
            return cls(_probability(value, where))
        _refuse_unknown(value, frozenset({"probability", "duration_ms"}), where)
        return cls(
            _probability(value.get("probability", 0.0), f"{where}.probability"),
            _number(value.get("duration_ms", _DEFAULT_WORKER_FAULT_MS), f"{where}.duration_ms"),
        )


@dataclass(frozen=True)
class ColdStartSpike:
    """A worker start that takes `extra_ms` longer than --cold-start-ms."""

    probability: float = 0.0
    extra_ms: float = 0.0

    @classmethod
    def parse(cls, value: Any, where: str) -> ColdStartSpike:
        value = _object(value, where)
        _refuse_unknown(value, frozenset({"probability", "extra_ms"}), where)
        return cls(
            _probability(value.get("probability", 0.0), f"{where}.probability"),
            _number(value.get("extra_ms", 0), f"{where}.extra_ms"),
        )


@dataclass(frozen=True)
class JobFaults:
    """Per job (drawn at pickup or end) or per worker start; see the README's fault table.

    - `worker_crash`: the worker dies at a uniformly drawn moment of the job's run. The job
      goes back to the head of the queue once (/health `retried` counts it); a second loss
      fails it with an error naming the lost worker. The dead worker is gone; the scaler
      replaces it as usual.
    - `worker_unhealthy` / `worker_throttled`: after a job the worker turns unhealthy or
      throttled (shown in /health) for `duration_ms` (default 10 s) and takes no jobs; an
      unhealthy worker is then replaced (removed; the scaler starts another), a throttled one
      becomes idle again.
    - `cold_start_spike`: a worker start takes `extra_ms` more.
    - `output_lost`: a job that would complete does, with no `output` (its result upload
      failed, as production reports it).
    """

    worker_crash: float = 0.0
    worker_unhealthy: WorkerFault = field(default_factory=WorkerFault)
    worker_throttled: WorkerFault = field(default_factory=WorkerFault)
    cold_start_spike: ColdStartSpike = field(default_factory=ColdStartSpike)
    output_lost: float = 0.0

    @classmethod
    def parse(cls, value: Any, where: str = "jobs") -> JobFaults:
        value = _object(value, where)
        _refuse_unknown(value, _JOB_KEYS, where)
        return cls(
            worker_crash=_probability(value.get("worker_crash", 0.0), f"{where}.worker_crash"),
            worker_unhealthy=WorkerFault.parse(
                value.get("worker_unhealthy", 0.0), f"{where}.worker_unhealthy"
            ),
            worker_throttled=WorkerFault.parse(
                value.get("worker_throttled", 0.0), f"{where}.worker_throttled"
            ),
            cold_start_spike=ColdStartSpike.parse(
                value.get("cold_start_spike", {}), f"{where}.cold_start_spike"
            ),
            output_lost=_probability(value.get("output_lost", 0.0), f"{where}.output_lost"),
        )

    @property
    def at_pickup(self) -> bool:
        """True when a job's pickup has something to draw (a crash)."""
        return self.worker_crash > 0

    @property
    def at_end(self) -> bool:
        """True when a job's end has something to draw (lost output, a worker fault)."""
        return bool(
            self.output_lost
            or self.worker_unhealthy.probability
            or self.worker_throttled.probability
        )

    @property
    def active(self) -> bool:
        return self.at_pickup or self.at_end or self.cold_start_spike.probability > 0


# --------------------------------------------------------------------------- the document


@dataclass(frozen=True)
class FaultConfig:
    seed: int | None = None
    """Seed of every fault draw; None: the emulator's --seed (random without one)."""
    operations: Mapping[str, OperationFaults] = field(default_factory=lambda: MappingProxyType({}))
    """Resolved per operation name ("*" merged in); operations without faults are absent."""
    jobs: JobFaults = field(default_factory=JobFaults)
    source: str = ""
    """The document as given (JSON text), for passing it on to a child emulator."""

    @classmethod
    def parse(cls, document: Any) -> FaultConfig:
        """A parsed JSON document (or its text) -> FaultConfig; FaultConfigError names the key."""
        if isinstance(document, (str, bytes)):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise FaultConfigError(f"faults are not valid JSON: {exc}") from None
        document = _object(document, "faults")
        _refuse_unknown(document, frozenset({"seed", "operations", "jobs"}), "faults")
        seed = document.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultConfigError(f"faults.seed must be an integer, got {_kind(seed)}")
        operations = _object(document.get("operations", {}), "faults.operations")
        unknown = sorted(set(operations) - {*OPERATIONS, ANY_OPERATION})
        if unknown:
            raise FaultConfigError(
                f"faults.operations: unknown operation {unknown[0]!r}; known: "
                f"{', '.join(OPERATIONS)} and '*' (every operation)"
            )
        defaults = _object(operations.get(ANY_OPERATION, {}), "faults.operations.*")
        OperationFaults.parse(defaults, "faults.operations.*")  # checked even if all are named
        resolved: dict[str, OperationFaults] = {}
        for name in OPERATIONS:
            faults = OperationFaults.parse(
                operations.get(name, {}), f"faults.operations.{name}", defaults
            )
            if faults.active:
                resolved[name] = faults
        return cls(
            seed=seed,
            operations=MappingProxyType(resolved),
            jobs=JobFaults.parse(document.get("jobs", {}), "faults.jobs"),
            source=json.dumps(document, separators=(",", ":"), sort_keys=True),
        )

    @property
    def active(self) -> bool:
        return bool(self.operations) or self.jobs.active

    def rng(self, stream: str, fallback_seed: int | None) -> random.Random:
        """An independent random stream per purpose (operations, jobs), so that enabling one
        kind of fault does not move the draws of the other."""
        seed = self.seed if self.seed is not None else fallback_seed
        return random.Random(None if seed is None else f"{stream}:{seed}")


def load_faults(spec: str) -> FaultConfig:
    """`JSON` or `@FILE` (as --faults takes it) -> FaultConfig; FaultConfigError on any problem."""
    text = spec
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FaultConfigError(
                f"cannot read faults file {str(path)!r}: {exc.strerror or exc}"
            ) from None
    return FaultConfig.parse(text)


# --------------------------------------------------------------------------- counting, drawing


class FaultCounts(Counter[str]):
    """Every injected fault by kind: `"status.503"`, `"run.reset"`, `"jobs.worker_crash"`."""

    def summary(self) -> dict[str, Any]:
        """{"operations": {op: {kind: n}}, "jobs": {kind: n}}, the shape of the document."""
        out: dict[str, dict[str, Any]] = {"operations": {}, "jobs": {}}
        for key, count in sorted(self.items()):
            scope, _, kind = key.partition(".")
            if scope == "jobs":
                out["jobs"][kind] = count
            else:
                out["operations"].setdefault(scope, {})[kind] = count
        return out

    def describe(self) -> str:
        """One line: `faults injected: status.503=12, jobs.worker_crash=1` (or none)."""
        if not self:
            return "faults injected: none"
        return "faults injected: " + ", ".join(f"{k}={v}" for k, v in sorted(self.items()))


class OperationFaultInjector:
    """Draws the operation faults of each request from one seeded stream."""

    def __init__(self, config: FaultConfig, counts: FaultCounts, seed: int | None) -> None:
        self.operations = config.operations
        self.counts = counts
        self._rng = config.rng("operations", seed)

    def draw(self, operation: str) -> InjectedFault | None:
        """None for a request that goes through untouched (always, for an operation without
        faults: one dict lookup)."""
        faults = self.operations.get(operation)
        if faults is None:
            return None
        rng = self._rng
        delay_s = 0.0
        if faults.latency is not None:
            delay_s = faults.latency.draw_ms(rng) / 1000
            if delay_s:
                self.counts[f"{operation}.latency"] += 1
        roll = rng.random()
        for status, probability in faults.statuses:
            if roll < probability:
                self.counts[f"{operation}.{status}"] += 1
                return InjectedFault(delay_s, status, retry_after_s=faults.retry_after_s)
            roll -= probability
        if roll < faults.reset:
            self.counts[f"{operation}.{RESET}"] += 1
            return InjectedFault(delay_s, reset=True)
        return InjectedFault(delay_s) if delay_s else None
