"""The emulator's state machine: jobs, a FIFO queue, workers and timed events, with no I/O.

Time comes from an injected clock (seconds, float). Every public operation first calls
`advance()`, which applies every event due by now, so the model is always current when it answers.
The ASGI app drives it with real time; the respx adapter owns a virtual clock and jumps it to
`next_event_time()` whenever a request would otherwise wait.

The model decides *when* a job runs (queue, scaler, timeouts, retention); a `WorkerRuntime` decides
*how*. The default, `SimulatedRuntime`, is the probe in simulation: the probe input is read once,
at pickup, into a plan (when the job ends, how, and when each stream chunk appears), so a sleeping
job costs one heap entry and no CPU, and chunks are not events: how many exist at time t follows
from the plan (`chunks_available`). `runpod_testkit.emulator.workers.ProcessRuntime` runs real
worker processes instead and reports back through the model's runtime methods (`take_jobs`,
`finish_job`, `add_chunk`, `set_progress`, `worker_idle`, `remove_worker`).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlsplit

from runpod_testkit.emulator.faults import FaultConfig, FaultCounts
from runpod_testkit.emulator.jsonbody import dumps
from runpod_testkit.operations import POLICY_LIMITS, RETENTION_ASYNC_S, RETENTION_SYNC_S, JobStatus
from runpod_testkit.probe_protocol import ProbeInput, ProbeInputError

__all__ = [
    "SCALERS",
    "Clock",
    "EmulatorConfig",
    "EndpointState",
    "Job",
    "JobRequestError",
    "Model",
    "SimulatedRuntime",
    "Worker",
    "WorkerRuntime",
    "WorkerState",
    "webhook_url_problem",
]

Clock = Callable[[], float]

_WORKER_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
# The version (4) and variant (RFC 4122) bits of a random uuid, as uuid.UUID(version=4) sets them.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (0x4000 << 64)
# Production's job ids end in any of these (captured 2026-09); two random bits pick one.
_JOB_ID_SUFFIXES = ("-u1", "-u2", "-e1", "-e2")


SCALERS = ("queue-delay", "request-count")
"""Production's two scaling types (its endpoint settings call them Queue Delay and Request
Count)."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Scaling and retention settings; one set for every endpoint id the emulator serves."""

    workers_min: int = 0
    workers_max: int = 3
    cold_start_ms: int = 1_000
    idle_timeout_s: float = 5.0
    queue_delay_s: float = 4.0
    """Queue-delay scaler: a job that waited this long adds a worker (up to workers_max)."""
    scaler: str = "queue-delay"
    """SCALERS: "queue-delay" (a job waiting queue_delay_s adds a worker) or "request-count"
    (workers = ceil((in queue + in progress) / requests_per_worker), up to workers_max)."""
    requests_per_worker: int = 1
    """Request-count scaler: the requests (queued and running) one worker is there for."""
    retention_async_s: float = RETENTION_ASYNC_S
    retention_sync_s: float = RETENTION_SYNC_S
    seed: int | None = None
    faults: FaultConfig | None = None
    """Injected faults (--faults); None for none."""

    def __post_init__(self) -> None:
        if self.workers_min < 0:
            raise ValueError(f"workers_min must be >= 0, got {self.workers_min}")
        if self.workers_max < max(1, self.workers_min):
            raise ValueError(
                f"workers_max must be >= 1 and >= workers_min ({self.workers_min}), "
                f"got {self.workers_max}"
            )
        if self.cold_start_ms < 0:
            raise ValueError(f"cold_start_ms must be >= 0, got {self.cold_start_ms}")
        if self.scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {', '.join(SCALERS)}, got {self.scaler!r}")
        if self.requests_per_worker < 1:
            raise ValueError(f"requests_per_worker must be >= 1, got {self.requests_per_worker}")
        for name in ("idle_timeout_s", "queue_delay_s", "retention_async_s", "retention_sync_s"):
            if not getattr(self, name) >= 0:  # also refuses NaN, which breaks heap order
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class WorkerState(str, Enum):
    INITIALIZING = "initializing"
    IDLE = "idle"
    RUNNING = "running"
    THROTTLED = "throttled"
    UNHEALTHY = "unhealthy"


@dataclass(eq=False)
class Worker:
    id: str
    endpoint: EndpointState
    state: WorkerState
    job: Job | None = None
    generation: int = 0
    """Bumped on every state change, so that stale timed events are ignored."""
    idle_since: float = 0.0
    retire_pending: bool = False
    """True while a WORKER_RETIRE event is in the heap: one per worker, re-checked when it
    fires, instead of one per job the worker finished."""
    started_at: float = 0.0
    """When the worker was started (model time): billing counts from here."""
    slots: int = 0
    """How many queued jobs the worker takes right now: 1 while a simulated worker is idle,
    the open job-take poll's batch size for a worker process, else 0."""
    starting_cold: bool = False
    """True from a cold start until the worker's first take of jobs: a job it picks up then
    waited on its start-up (a cold-start job)."""
    cold_start_jobs: int = 0
    """Jobs picked up at the end of this worker's cold start (the --worker-log counts them)."""


@dataclass(eq=False)
class Job:
    id: str
    endpoint: EndpointState
    input: dict[str, Any]
    sync: bool
    submitted_at: float
    ttl_deadline: float
    execution_timeout_s: float
    low_priority: bool = False
    webhook: str | None = None
    """The request's webhook URL: the envelope is POSTed there when the job ends."""
    status: str = JobStatus.IN_QUEUE
    queued_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    worker_id: str | None = None
    output: Any = None
    error: str | None = None
    plan: ProbeInput | None = None
    chunks_sent: int = 0
    streamed: list[Any] | None = None
    """The chunks a real worker posted (job-stream); None for a simulated job (see `plan`)."""
    cold_start: bool = False
    """The job waited on a worker's start-up: the worker that took it was cold-starting."""
    lost_runs: int = 0
    """How many times the job's worker died under it (a real process, or an injected crash)."""
    expires_at: float | None = None
    run_ends_at: float = 0.0
    """When the current run ends (JOB_DONE or JOB_TIMEOUT), set at pickup."""
    generation: int = 0
    """Bumped whenever the job's run events must be forgotten (end, retry, cancel)."""
    expiry_generation: int = 0
    """Bumped whenever the job's deletion time moves (end, retry, ?ttl)."""
    _encoded: tuple[tuple[str, float | None, float | None, str | None], bytes] | None = field(
        default=None, repr=False
    )
    """The last encoded body and the state it was encoded in (see `encoded_body`)."""

    @property
    def is_terminal(self) -> bool:
        return self.status in JobStatus.TERMINAL

    @property
    def delay_ms(self) -> int | None:
        if self.started_at is None:
            return None
        return round((self.started_at - self.queued_at) * 1000)

    @property
    def execution_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at) * 1000)

    def chunk_time(self, index: int) -> float:
        """When the `index`-th value is yielded (the job must have started)."""
        assert self.started_at is not None
        assert self.plan is not None
        return self.started_at + self.plan.chunk_offset_ms(index) / 1000

    def chunks_available(self, now: float) -> int:
        """How many stream chunks the handler has yielded by `now` (frozen when the job ends)."""
        if self.streamed is not None:
            return len(self.streamed)
        plan = self.plan
        if plan is None or plan.yield_count == 0 or self.started_at is None:
            return 0
        total = plan.yield_count
        if self.status == JobStatus.COMPLETED:
            return total  # the handler yielded every value before it returned
        if self.status in JobStatus.TERMINAL and self.ended_at is not None:
            now = self.ended_at
        # Estimate by division, then settle against `chunk_time` itself: at epoch magnitudes a
        # float difference is off by ~0.1 us, and a chunk must count as yielded at exactly the
        # instant `next_chunk_at` names (the virtual clock jumps there and looks again).
        elapsed_ms = (now - self.started_at) * 1000 - plan.sleep_ms
        if plan.chunk_interval_ms == 0:
            produced = total if elapsed_ms >= 0 else 0
        else:
            produced = int(elapsed_ms // plan.chunk_interval_ms) + 1
        produced = max(0, min(total, produced))
        while produced < total and self.chunk_time(produced) <= now:
            produced += 1
        while produced > 0 and self.chunk_time(produced - 1) > now:
            produced -= 1
        return produced

    def next_chunk_at(self, now: float) -> float | None:
        """When the next not-yet-yielded chunk appears, or None if no more will (or, for a real
        worker, nobody knows: its chunk wakes waiters when it arrives)."""
        plan = self.plan
        if plan is None or self.started_at is None or self.is_terminal:
            return None
        produced = self.chunks_available(now)
        if produced >= plan.yield_count:
            return None
        return self.chunk_time(produced)

    def take_new_chunks(self, now: float) -> list[dict[str, Any]]:
        """The chunks not handed out before (the drain semantics of /stream)."""
        available = self.chunks_available(now)
        start, self.chunks_sent = self.chunks_sent, max(self.chunks_sent, available)
        if self.streamed is not None:
            return [{"output": value} for value in self.streamed[start:available]]
        plan = self.plan
        if plan is None:
            return []
        return [{"output": plan.yielded(i)} for i in range(start, available)]

    def body(self) -> dict[str, Any]:
        """The job object as /status and /runsync answer it (keys in production's order)."""
        body: dict[str, Any] = {}
        if self.started_at is not None:
            body["delayTime"] = self.delay_ms
            if self.ended_at is not None:
                body["executionTime"] = self.execution_ms
        if self.error is not None:
            body["error"] = self.error
        body["id"] = self.id
        # While IN_PROGRESS, a real worker's progress_update shows as the output (as production).
        if self.output is not None and self.status in _SHOWS_OUTPUT:
            body["output"] = self.output
        body["status"] = self.status
        if self.ended_at is not None and self.worker_id is not None:
            body["workerId"] = self.worker_id
        return body

    def encoded_body(self) -> bytes:
        """`body()` as JSON bytes, encoded again only when the job has moved on: a job is
        polled many times in one state (waiting, running, done). Status, start, end and worker
        determine the body (output and error are set with the terminal status)."""
        state = (self.status, self.started_at, self.ended_at, self.worker_id)
        encoded = self._encoded
        if encoded is not None and encoded[0] == state:
            return encoded[1]
        # orjson hands back its 4 KiB working buffer; a job keeps an exact-size copy.
        body = bytes(memoryview(dumps(self.body())))
        self._encoded = (state, body)
        return body

    def log_record(self) -> dict[str, Any]:
        """One line of --job-log: the ground truth of this job's timings (epoch ms if the clock
        is epoch seconds)."""
        return {
            "id": self.id,
            "endpointId": self.endpoint.id,
            "status": self.status,
            "delayTime": self.delay_ms,
            "executionTime": self.execution_ms,
            "submittedAt": round(self.queued_at * 1000),
            "startedAt": None if self.started_at is None else round(self.started_at * 1000),
            "endedAt": None if self.ended_at is None else round(self.ended_at * 1000),
            "workerId": self.worker_id,
            "sync": self.sync,
            "coldStart": self.cold_start,
        }


@dataclass(eq=False)
class EndpointState:
    """One endpoint id: its own queue, jobs, workers and counters."""

    id: str
    jobs: dict[str, Job] = field(default_factory=dict)
    queue: deque[Job] = field(default_factory=deque)
    workers: dict[str, Worker] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    retried: int = 0
    in_progress: int = 0

    peak_jobs: int = 0

    def compact_if_sparse(self) -> None:
        """CPython dicts never shrink on deletion; rebuild the job table once it is mostly empty
        so that memory returns to where it started after a burst of jobs expires."""
        size = len(self.jobs)
        self.peak_jobs = max(self.peak_jobs, size + 1)
        if self.peak_jobs > 1024 and size * 8 < self.peak_jobs:
            self.jobs = dict(self.jobs)
            self.peak_jobs = size

    def live_workers(self) -> list[Worker]:
        return list(self.workers.values())

    def count_workers(self, state: WorkerState) -> int:
        return sum(1 for worker in self.workers.values() if worker.state is state)

    def health(self) -> dict[str, Any]:
        # One pass over the workers (the simulation asks every simulated second), by identity:
        # hashing an Enum member calls Python code.
        idle = initializing = running = throttled = unhealthy = 0
        for worker in self.workers.values():
            state = worker.state
            if state is _RUNNING:
                running += 1
            elif state is _IDLE:
                idle += 1
            elif state is _INITIALIZING:
                initializing += 1
            elif state is _THROTTLED:
                throttled += 1
            else:
                unhealthy += 1
        return {
            "jobs": {
                "completed": self.completed,
                "failed": self.failed,
                "inProgress": self.in_progress,
                "inQueue": len(self.queue),
                "retried": self.retried,
            },
            "workers": {
                "idle": idle,
                "initializing": initializing,
                "ready": idle,
                "running": running,
                "throttled": throttled,
                "unhealthy": unhealthy,
            },
        }


_SHOWS_OUTPUT = frozenset((JobStatus.COMPLETED, JobStatus.IN_PROGRESS))


class WorkerRuntime(Protocol):
    """How workers run jobs; the model calls these on the events it decides (all on one
    thread, with the model current)."""

    def attach(self, model: Model) -> None:
        """Called once by the model that owns the runtime."""

    def start_worker(self, worker: Worker, now: float, *, warm: bool) -> None:
        """A new worker (INITIALIZING, already listed by its endpoint): bring it up, then make
        it take jobs (`Model.worker_idle`, slots). `warm`: an active worker kept at workers-min."""

    def start_job(self, worker: Worker, job: Job, now: float) -> None:
        """The worker picked `job` up (both are marked running): run it."""

    def job_ended(self, worker: Worker, job: Job, now: float) -> None:
        """`job`, running on `worker`, reached a terminal state (its own end, or a cancel,
        timeout or expiry that the worker must be told about)."""

    def retire_worker(self, worker: Worker) -> None:
        """The idle worker was removed from its endpoint (idle timeout): stop it."""


class SimulatedRuntime:
    """The built-in probe: each job's end and chunks come from its probe plan, on the model's
    clock, so nothing runs and mock mode can jump time."""

    model: Model

    def attach(self, model: Model) -> None:
        self.model = model

    def start_worker(self, worker: Worker, now: float, *, warm: bool) -> None:
        model = self.model
        cold_start_s = 0.0 if warm else model.cold_start_s()
        if cold_start_s == 0:
            worker.state = _IDLE
            model._worker_free(worker, now)
            worker.starting_cold = False
        else:
            model._schedule(now + cold_start_s, _Event.WORKER_READY, worker, worker.generation)

    def start_job(self, worker: Worker, job: Job, now: float) -> None:
        model = self.model
        worker.job = job
        worker.slots = 0
        plan = job.plan = model._plan(job)
        duration_s = plan.duration_ms / 1000
        if duration_s >= job.execution_timeout_s:
            job.run_ends_at = now + job.execution_timeout_s
            model._schedule(job.run_ends_at, _Event.JOB_TIMEOUT, job, job.generation)
        else:
            job.run_ends_at = now + duration_s
            model._schedule(job.run_ends_at, _JOB_DONE, job, job.generation)
        if model._faults_at_pickup is not None:  # tested here: a call per job costs
            model.draw_worker_crash(job, now)

    def job_ended(self, worker: Worker, job: Job, now: float) -> None:
        # A simulated handler stops at once; a job fault may leave its worker bad instead.
        model = self.model
        if worker.job is job and (
            model._faults_at_end is None or not model.worker_turns_bad(worker, now)
        ):
            model._worker_free(worker, now)

    def retire_worker(self, worker: Worker) -> None:
        pass


_TimedEvent = tuple[float, int, int, Any, int]
"""(due at, sequence, kind, job or worker, generation): heaps order by time, then sequence."""


class _Event:
    """Kinds of timed events (plain ints: an Enum member costs a slow lookup on every use)."""

    WORKER_READY = 1
    WORKER_RETIRE = 2
    JOB_DONE = 3
    JOB_TIMEOUT = 4
    JOB_OVERDUE = 5
    JOB_EXPIRE = 6
    WORKER_LOST = 7
    """An injected crash: the job's worker dies mid-run (subject: the job)."""
    WORKER_RECOVER = 8
    """An unhealthy or throttled worker's spell ends (subject: the worker)."""
    EXPIRY_LINE = 9
    """Stands for the first of `Model._expiry_line`'s JOB_EXPIRE events (subject: the line,
    generation: that event's sequence number)."""


# Enum members cost a slow class lookup on every use; the hot paths read these instead.
_JOB_EXPIRE = _Event.JOB_EXPIRE
_EXPIRY_LINE = _Event.EXPIRY_LINE
_JOB_DONE = _Event.JOB_DONE
_JOB_OVERDUE = _Event.JOB_OVERDUE
# JobStatus too: a class attribute is looked up through the type on every use.
_IN_QUEUE = JobStatus.IN_QUEUE
_IN_PROGRESS = JobStatus.IN_PROGRESS
_COMPLETED = JobStatus.COMPLETED
_RETRYABLE = JobStatus.RETRYABLE
_IDLE = WorkerState.IDLE
_RUNNING = WorkerState.RUNNING
_INITIALIZING = WorkerState.INITIALIZING
_THROTTLED = WorkerState.THROTTLED
_PLAN_CACHE_SIZE = 1024
_MAX_LOST_RUNS = 3
"""A job whose worker process dies under it this many times fails instead of running again."""
_NO_INPUT: dict[str, Any] = {}
_DEFAULT_EXECUTION_TIMEOUT_MS = POLICY_LIMITS["executionTimeout"].default
_DEFAULT_TTL_MS = POLICY_LIMITS["ttl"].default


class JobRequestError(ValueError):
    """A submission whose body breaks the request contract (answered with 400)."""


class Model:
    """Every endpoint the emulator serves, and the one event heap that drives them."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        on_terminal: Callable[[Job], None] | None = None,
        on_change: Callable[[Job], None] | None = None,
        runtime: WorkerRuntime | None = None,
        *,
        keep_ended_jobs: bool = True,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.keep_ended_jobs = keep_ended_jobs
        """False: a job is forgotten the moment it ends, instead of kept for its retention
        period (one timed event per job fewer). For the simulation, which reads each job only
        through `on_terminal`; the emulator keeps them, as production does."""
        self._request_count_scaler = self.config.scaler == "request-count"
        self.runtime: WorkerRuntime = runtime or SimulatedRuntime()
        """How workers run jobs: the simulated probe, or real worker processes."""
        self._clock: Clock = clock or _not_a_clock
        self._rng = random.Random(self.config.seed)
        self.endpoints: dict[str, EndpointState] = {}
        self._events: list[_TimedEvent] = []
        """Events of running jobs and workers: a small heap, popped all the time."""
        self._expiries: list[_TimedEvent] = []
        """JOB_EXPIRE events: one per retained job, hundreds of thousands under load, nearly
        always pushed in time order (so pushing is cheap), popped once per job. Kept apart so
        that popping the other events does not sift through them."""
        self._expiry_line: deque[tuple[float, int, Job, int]] = deque()
        """JOB_EXPIRE events scheduled in time order, as (due at, sequence, job, generation):
        each one that is due no earlier than the line's last goes here instead of into
        `_expiries` (every queued job's TTL, in a simulation). One EXPIRY_LINE entry in
        `_expiries` (`_expiry_line_armed`) stands for the line, keyed at or before its first
        event's key, so events leave heap and line in the order one heap would give them."""
        self._expiry_line_armed = False
        self.scheduled = 0
        """How many events were ever scheduled (also each one's tie-breaking sequence number).
        Only a new event can make the next one earlier: while this stays put, a timer armed
        for the next event is early at worst (popped or stale events), never late."""
        self._job_count = 0
        self._serial = 0
        """Jobs submitted through `submit_simulated` (their ids count up)."""
        self._worker_count = 0
        self._plans: dict[tuple[tuple[str, Any], ...], ProbeInput] = {}
        """Parsed probe inputs by input items: load runs send a handful of distinct inputs
        again and again, and a shared plan (and its output) costs no memory per job."""
        self.on_terminal = on_terminal
        """Called once each time a job reaches a terminal state (the job log)."""
        self.on_change = on_change
        """Called whenever a job changes state or is removed (wakes waiting requests)."""
        self.on_worker_stopped: Callable[[Worker, float], None] | None = None
        """Called with a worker and the model time it stopped (the worker log)."""
        self.fault_counts = FaultCounts()
        """Every injected fault by kind, the operation faults of the service included."""
        faults = self.config.faults
        job_faults = faults.jobs if faults is not None and faults.jobs.active else None
        self._job_faults = job_faults
        # The hot paths test one attribute each: None unless that kind of fault is configured.
        self._faults_at_pickup = job_faults if job_faults and job_faults.at_pickup else None
        self._faults_at_end = job_faults if job_faults and job_faults.at_end else None
        self._fault_rng = (
            faults.rng("jobs", self.config.seed) if faults is not None else random.Random()
        )
        self._plain_simulation = type(self.runtime) is SimulatedRuntime and job_faults is None
        """Simulated workers and no injected job faults: a worker holds a job slot exactly while
        it is idle, and it takes the queue's head the moment it goes idle; so while a job is
        queued no worker is idle, and none leaves (the idle timeout is the only way out).
        `_enqueue` relies on this to skip work whose outcome it knows (see there)."""
        self.runtime.attach(self)

    # --- time -------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def next_event_time(self) -> float | None:
        """When the next event that still applies is due. Stale events at the top are dropped
        here (they would be ignored when due), so the HTTP app's timer does not wake for them:
        a burst of superseded events would otherwise fire it once per loop iteration."""
        events, expiries = self._events, self._expiries
        while events and not _is_current(*events[0][2:]):
            heapq.heappop(events)
        while expiries:
            top = expiries[0]
            if top[2] == _EXPIRY_LINE:
                line = self._expiry_line
                if line and line[0][1] == top[1] and line[0][2].expiry_generation == line[0][3]:
                    break  # it stands for the line's first event, which applies
                heapq.heappop(expiries)
                self._arm_expiry_line()
            elif _is_current(*top[2:]):
                break
            else:
                heapq.heappop(expiries)
        if events and expiries:
            return min(events[0][0], expiries[0][0])
        if events:
            return events[0][0]
        return expiries[0][0] if expiries else None

    def pending_events(self) -> int:
        """How many timed events the heaps hold, stale ones included (leak checks watch it)."""
        return len(self._events) + len(self._expiries) + len(self._expiry_line)

    def advance(self) -> float:
        """Apply every event due by now, in time order (ties in the order they were scheduled:
        the sequence number, second in each tuple, orders the two heaps as one); returns now."""
        now = self._clock()
        events, expiries = self._events, self._expiries
        while True:
            if events and events[0][0] <= now:
                heap = expiries if expiries and expiries[0] < events[0] else events
            elif expiries and expiries[0][0] <= now:
                heap = expiries
            else:
                return now
            at, _, kind, subject, generation = heapq.heappop(heap)
            self._apply(at, kind, subject, generation)

    def _schedule(self, at: float, kind: int, subject: Any, generation: int) -> None:
        self.scheduled += 1
        events, expiries = self._events, self._expiries
        heapq.heappush(
            expiries if kind == _JOB_EXPIRE else events,
            (at, self.scheduled, kind, subject, generation),
        )
        # `_compact_if_stale`'s test, inline: this runs for every event scheduled.
        pending = len(events) + len(expiries) + len(self._expiry_line)
        if pending > 6 * self._job_count + 2 * self._worker_count + 512:
            self._compact_if_stale()

    def _compact_if_stale(self) -> None:
        """Stale events (of jobs that moved on) would otherwise pin deleted jobs in memory until
        their time came (a superseded 24 h TTL event, say); rebuild the heaps when they clearly
        outnumber the live ones. A job has at most 3 live events and a worker 1.
        In place: `advance()` may be popping from these very lists."""
        live_bound = 3 * self._job_count + self._worker_count + 256
        line = self._expiry_line
        if len(self._events) + len(self._expiries) + len(line) > 2 * live_bound:
            for heap in (self._events, self._expiries):
                # The line's entry is dropped here (_is_current) and made again below.
                heap[:] = [event for event in heap if _is_current(*event[2:])]
                heapq.heapify(heap)
            kept = [entry for entry in line if entry[2].expiry_generation == entry[3]]
            line.clear()
            line.extend(kept)
            self._arm_expiry_line()

    def _apply(self, at: float, kind: int, subject: Any, generation: int) -> None:
        if kind == _JOB_DONE:  # the most frequent kind: tested first
            if subject.generation == generation:
                self._finish(subject, at)
            return
        if kind == _EXPIRY_LINE:
            self._expiry_line_due(at, generation)
            return
        if not _is_current(kind, subject, generation):
            return  # the job or worker moved on since this event was scheduled
        if kind == _Event.WORKER_READY:
            worker: Worker = subject
            worker.state = _IDLE
            self._worker_free(worker, at)
            worker.starting_cold = False  # its first take is done: later jobs did not wait
        elif kind == _Event.WORKER_RETIRE:
            worker = subject
            worker.retire_pending = False
            if (
                worker.state is WorkerState.IDLE
                and len(worker.endpoint.workers) > self.config.workers_min
            ):
                retire_at = worker.idle_since + self.config.idle_timeout_s
                if retire_at > at:
                    self._schedule_retire(worker, retire_at)  # it worked since: look again
                    return
                self._drop_worker(worker, at)
                self.runtime.retire_worker(worker)
        elif kind == _Event.JOB_TIMEOUT:
            self._end(subject, at, JobStatus.TIMED_OUT)
        elif kind == _JOB_OVERDUE:
            job: Job = subject
            if job.status == _IN_QUEUE and not job.low_priority:
                self._scale_up(job.endpoint, at)
        elif kind == _JOB_EXPIRE:
            self._expire(subject, at)
        elif kind == _Event.WORKER_LOST:
            self._lose_worker(subject, at)
        elif kind == _Event.WORKER_RECOVER:
            self._recover_worker(subject, at)

    def _schedule_retire(self, worker: Worker, at: float) -> None:
        worker.retire_pending = True
        # Checked in `_apply` against idle_since rather than by generation (see `_is_current`).
        self._schedule(at, _Event.WORKER_RETIRE, worker, 0)

    def _schedule_expiry(self, job: Job, at: float) -> None:
        job.expires_at = at
        job.expiry_generation += 1
        line = self._expiry_line
        if line and at < line[-1][0]:
            self._schedule(at, _JOB_EXPIRE, job, job.expiry_generation)
            return
        # In time order: on the line, under the sequence number the heap entry would have had.
        self.scheduled += 1
        # Drop events that no longer apply from the front (a simulated job's TTL, once it
        # ended), so that the line does not keep ended jobs alive; the line's heap entry may
        # then stand before the first event: it fires early and does nothing.
        while line and line[0][2].expiry_generation != line[0][3]:
            line.popleft()
        line.append((at, self.scheduled, job, job.expiry_generation))
        if not self._expiry_line_armed:
            self._arm_expiry_line()
        elif len(line) + len(self._events) + len(self._expiries) > (
            6 * self._job_count + 2 * self._worker_count + 512
        ):
            self._compact_if_stale()

    def _arm_expiry_line(self) -> None:
        """Put the line's entry into `_expiries` (when it is not there), keyed as its first
        event that still applies (those before it are dropped); nothing when none is left."""
        line = self._expiry_line
        while line and line[0][2].expiry_generation != line[0][3]:
            line.popleft()
        self._expiry_line_armed = bool(line)
        if line:
            at, sequence, _, _ = line[0]
            heapq.heappush(self._expiries, (at, sequence, _EXPIRY_LINE, line, sequence))

    def _expiry_line_due(self, at: float, sequence: int) -> None:
        """The line's entry came up: apply the line's first event if the entry stood for it
        (otherwise events before it were dropped since), and put the entry back for the next."""
        line = self._expiry_line
        if line and line[0][1] == sequence:
            _, _, job, generation = line.popleft()
            self._arm_expiry_line()
            if job.expiry_generation == generation:
                self._expire(job, at)
        else:
            self._arm_expiry_line()

    # --- endpoints and workers ----------------------------------------------------------------

    def endpoint(self, endpoint_id: str) -> EndpointState:
        state = self.endpoints.get(endpoint_id)
        if state is None:
            state = self.endpoints[endpoint_id] = EndpointState(endpoint_id)
            # Active (minimum) workers are kept warm, as production's always-on workers are.
            for _ in range(self.config.workers_min):
                self._start_worker(state, self._clock(), warm=True)
        return state

    def _new_worker_id(self) -> str:
        return "".join(self._rng.choices(_WORKER_ID_ALPHABET, k=14))

    def _start_worker(self, endpoint: EndpointState, now: float, *, warm: bool = False) -> Worker:
        worker = Worker(self._new_worker_id(), endpoint, WorkerState.INITIALIZING)
        worker.started_at = now
        worker.starting_cold = not warm
        endpoint.workers[worker.id] = worker
        self._worker_count += 1
        self.runtime.start_worker(worker, now, warm=warm)
        return worker

    def _drop_worker(self, worker: Worker, at: float) -> None:
        """Take a worker off its endpoint's list (it no longer counts in /health) at model
        time `at`."""
        if worker.endpoint.workers.pop(worker.id, None) is not None:
            self._worker_count -= 1
            if self.on_worker_stopped is not None:
                self.on_worker_stopped(worker, at)
        worker.generation += 1
        worker.slots = 0
        worker.retire_pending = False  # its pending retire event, if any, is now stale
        worker.starting_cold = False
        worker.job = None

    def _scale_up(self, endpoint: EndpointState, now: float) -> None:
        """Start one worker if the queue holds more jobs than workers on their way up can take
        (queue-delay), or as many as the request count asks for (request-count)."""
        if len(endpoint.workers) >= self.config.workers_max:
            return
        if self._request_count_scaler:
            self._scale_to_requests(endpoint, now)
            return
        if endpoint.count_workers(WorkerState.INITIALIZING) < len(endpoint.queue):
            self._start_worker(endpoint, now)

    def _scale_to_requests(self, endpoint: EndpointState, now: float) -> None:
        """Request-count scaler: ceil((in queue + in progress) / requests_per_worker) workers,
        up to workers_max (production's documented formula). Fewer are never stopped here:
        workers above workers_min leave by the idle timeout."""
        requests = len(endpoint.queue) + endpoint.in_progress
        per_worker = self.config.requests_per_worker
        wanted = min(self.config.workers_max, -(-requests // per_worker))
        while len(endpoint.workers) < wanted:
            self._start_worker(endpoint, now)

    def _worker_free(self, worker: Worker, now: float) -> None:
        """A simulated worker with no job takes the next one from the queue, or goes idle."""
        worker.job = None
        worker.generation += 1
        endpoint = worker.endpoint
        if endpoint.queue:
            self._pickup(worker, endpoint.queue.popleft(), now)
            return
        worker.slots = 1
        self.worker_idle(worker, now)

    def _pickup(self, worker: Worker, job: Job, now: float) -> None:
        worker.state = _RUNNING
        worker.generation += 1
        job.status = _IN_PROGRESS
        job.started_at = now
        job.worker_id = worker.id
        job.endpoint.in_progress += 1
        if worker.starting_cold:
            job.cold_start = True
            worker.cold_start_jobs += 1
        self.runtime.start_job(worker, job, now)
        if self.on_change is not None:  # `_changed`, inline: once per job
            self.on_change(job)

    def _plan(self, job: Job) -> ProbeInput:
        """The job's probe plan, shared with earlier jobs of the same input when it is hashable."""
        try:
            key = tuple(job.input.items())
            cached = self._plans.get(key)
        except TypeError:  # a list or an object among the values: parse it for this job alone
            key, cached = None, None
        if cached is not None:
            return cached
        try:
            plan = ProbeInput.parse(job.input)
        except ProbeInputError as exc:
            # The probe handler fails a job whose input breaks the protocol, as a real one would.
            plan = ProbeInput(fail=str(exc))
        if key is not None:
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    # --- job lifecycle ----------------------------------------------------------------------

    def _finish(self, job: Job, at: float) -> None:
        plan = job.plan
        assert plan is not None
        if plan.fail is not None:
            job.error = plan.fail
            self._end(job, at, JobStatus.FAILED)
        else:
            job.output = plan.output  # one list per plan: nothing changes an output once set
            faults = self._faults_at_end
            if (
                faults is not None
                and faults.output_lost
                and self._fault_rng.random() < faults.output_lost
            ):
                # COMPLETED with no output, as production reports a failed result upload.
                self.fault_counts["jobs.output_lost"] += 1
                job.output = None
            self._end(job, at, _COMPLETED)

    def _end(self, job: Job, at: float, status: str) -> None:
        """Move a queued or running job to a terminal state and free its worker."""
        endpoint = job.endpoint
        was_running = job.status == _IN_PROGRESS
        job.generation += 1
        job.status = status
        if was_running:
            job.ended_at = at
            endpoint.in_progress -= 1
        if status == _COMPLETED:
            endpoint.completed += 1
        elif status in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            endpoint.failed += 1
        if status not in _RETRYABLE and job.webhook is None:
            # Never runs again: free it (only /retry and the webhook's envelope read it).
            job.input = _NO_INPUT
        if self.keep_ended_jobs:
            retention = self.config.retention_sync_s if job.sync else self.config.retention_async_s
            self._schedule_expiry(job, min(at + retention, job.ttl_deadline))
        else:
            self._forget(job)
        if was_running and job.worker_id is not None:
            worker = endpoint.workers.get(job.worker_id)
            if worker is not None:
                self.runtime.job_ended(worker, job, at)
        if self.on_terminal is not None:
            self.on_terminal(job)
        if self.on_change is not None:  # `_changed`, inline: once per job
            self.on_change(job)

    # --- injected job faults (see faults.JobFaults) ------------------------------------------

    def _lose_worker(self, job: Job, at: float) -> None:
        """An injected crash: the job's worker is gone, and the job runs again as it does when
        a real worker process dies (`_requeue_or_fail`)."""
        endpoint = job.endpoint
        lost_id = job.worker_id
        self.fault_counts["jobs.worker_crash"] += 1
        worker = endpoint.workers.get(lost_id) if lost_id is not None else None
        if worker is not None:
            self._drop_worker(worker, at)
        self._requeue_or_fail(
            job,
            at,
            f"worker {lost_id} stopped while running the job (the emulator's injected "
            "worker_crash)",
        )
        self._replace_lost_capacity(endpoint, at)

    def cold_start_s(self) -> float:
        """A new simulated worker's cold start: --cold-start-ms, plus an injected spike."""
        cold_start_s = self.config.cold_start_ms / 1000
        spike = self._job_faults.cold_start_spike if self._job_faults is not None else None
        if spike is not None and spike.probability and self._fault_rng.random() < spike.probability:
            self.fault_counts["jobs.cold_start_spike"] += 1
            cold_start_s += spike.extra_ms / 1000
        return cold_start_s

    def draw_worker_crash(self, job: Job, now: float) -> None:
        """At a simulated pickup: maybe the worker dies at a uniformly drawn moment of the run
        (before it ends)."""
        faults = self._faults_at_pickup
        if faults is not None and self._fault_rng.random() < faults.worker_crash:
            crash_at = now + self._fault_rng.random() * (job.run_ends_at - now)
            self._schedule(crash_at, _Event.WORKER_LOST, job, job.generation)

    def worker_turns_bad(self, worker: Worker, at: float) -> bool:
        """After a simulated job: maybe the worker turns unhealthy or throttled for a while
        (taking no jobs); True if it did."""
        faults = self._faults_at_end
        if faults is None:
            return False
        for state, fault in (
            (WorkerState.UNHEALTHY, faults.worker_unhealthy),
            (WorkerState.THROTTLED, faults.worker_throttled),
        ):
            if fault.probability and self._fault_rng.random() < fault.probability:
                self.fault_counts[f"jobs.worker_{state.value}"] += 1
                worker.job = None
                worker.generation += 1
                worker.state = state
                self._schedule(
                    at + fault.duration_ms / 1000, _Event.WORKER_RECOVER, worker, worker.generation
                )
                self._replace_lost_capacity(worker.endpoint, at)
                return True
        return False

    def _recover_worker(self, worker: Worker, at: float) -> None:
        """An unhealthy worker is replaced (removed; the scaler starts another as needed);
        a throttled one takes jobs again."""
        endpoint = worker.endpoint
        if worker.state is WorkerState.UNHEALTHY:
            self._drop_worker(worker, at)
            self._replace_lost_capacity(endpoint, at)
        else:
            worker.state = _IDLE
            self._worker_free(worker, at)

    def _replace_lost_capacity(self, endpoint: EndpointState, at: float) -> None:
        """Keep --workers-min workers that can take jobs, and let the scaler see the queue."""
        usable = sum(
            1
            for w in endpoint.workers.values()
            if w.state not in (WorkerState.UNHEALTHY, WorkerState.THROTTLED)
        )
        if usable < self.config.workers_min and len(endpoint.workers) < self.config.workers_max:
            self._start_worker(endpoint, at)
        if endpoint.queue:
            self._scale_up(endpoint, at)

    def _expire(self, job: Job, at: float) -> None:
        """Retention or TTL ran out: the job is deleted and its memory freed."""
        endpoint = job.endpoint
        if job.status == _IN_QUEUE:
            # Expired before a worker picked it up (TIMED_OUT, docs/job-states.md#state-words),
            # then deleted.
            endpoint.queue.remove(job)
            self._end(job, at, JobStatus.TIMED_OUT)
        elif job.status == _IN_PROGRESS:
            # "If TTL expires while a job is running, the job is immediately removed".
            self._end(job, at, JobStatus.TIMED_OUT)
        job.generation += 1
        job.expiry_generation += 1
        if endpoint.jobs.pop(job.id, None) is not None:
            self._job_count -= 1
            endpoint.compact_if_sparse()
            self._compact_if_stale()  # no event may be scheduled for a long time after a burst
        self._changed(job)

    def _forget(self, job: Job) -> None:
        """Delete an ended job at once (`keep_ended_jobs` is False); its TTL event goes stale."""
        job.expires_at = None
        job.expiry_generation += 1
        endpoint = job.endpoint
        if endpoint.jobs.pop(job.id, None) is not None:
            self._job_count -= 1
            # `compact_if_sparse`'s test, inline: this runs for every simulated job.
            size = len(endpoint.jobs)
            if size >= endpoint.peak_jobs or (
                endpoint.peak_jobs > 1024 and size * 8 < endpoint.peak_jobs
            ):
                endpoint.compact_if_sparse()

    def _changed(self, job: Job) -> None:
        if self.on_change is not None:
            self.on_change(job)

    # --- what a worker runtime reports (real workers) ----------------------------------------

    def worker_idle(self, worker: Worker, now: float) -> None:
        """The worker holds no job (a process after its first job-take, or after its last job
        ended): it counts as idle, and retires after the idle timeout above workers-min."""
        worker.state = _IDLE
        worker.idle_since = now
        if len(worker.endpoint.workers) > self.config.workers_min and not worker.retire_pending:
            self._schedule_retire(worker, now + self.config.idle_timeout_s)

    def take_jobs(self, worker: Worker, slots: int) -> None:
        """The worker asks for up to `slots` jobs (a job-take poll): queued jobs go to it now,
        and until `slots` drops to 0 (the runtime's `start_job` counts them down, or the poll
        ends) a job queued later goes to it the moment it is submitted."""
        now = self.advance()
        worker.slots = slots
        queue = worker.endpoint.queue
        while worker.slots > 0 and queue:
            self._pickup(worker, queue.popleft(), now)
        worker.starting_cold = False  # a job queued while this poll waits did not wait on it

    def schedule_timeout(self, job: Job, now: float) -> None:
        """A real job's executionTimeout (its end is not known in advance)."""
        job.run_ends_at = now + job.execution_timeout_s
        self._schedule(job.run_ends_at, _Event.JOB_TIMEOUT, job, job.generation)

    def finish_job(self, job: Job, *, output: Any = None, error: str | None = None) -> None:
        """The worker reported the job's result (job-done): FAILED with `error`, else COMPLETED
        with `output`. A job that is no longer running (cancelled, timed out) stays as it is."""
        now = self.advance()
        if job.status != _IN_PROGRESS:
            return
        if error is not None:
            job.output = None
            job.error = error
            self._end(job, now, JobStatus.FAILED)
        else:
            job.output = output
            self._end(job, now, _COMPLETED)

    def add_chunk(self, job: Job, value: Any) -> None:
        """The worker streamed one value (job-stream); /stream hands it out once."""
        self.advance()
        if job.status != _IN_PROGRESS:
            return
        if job.streamed is None:
            job.streamed = []
        job.streamed.append(value)
        self._changed(job)

    def set_progress(self, job: Job, value: Any) -> None:
        """progress_update: shown as the job's `output` while it is IN_PROGRESS. It may arrive
        after the result (it is sent from another thread): then it is ignored."""
        self.advance()
        if job.status != _IN_PROGRESS:
            return
        job.output = value
        job._encoded = None  # the body depends on the output now, not on the state alone
        self._changed(job)

    def remove_worker(
        self, worker: Worker, lost_jobs: Iterable[Job] = (), *, reason: str = ""
    ) -> None:
        """The worker is gone or being stopped (stopPod, a stuck job, its process exited).
        Jobs it was still running are queued again at the front (production's automatic
        retries on worker loss) or, the third time, fail with `reason`. Then workers-min and
        the queue get the workers they need."""
        now = self.advance()
        endpoint = worker.endpoint
        self._drop_worker(worker, now)
        for job in list(lost_jobs):
            if job.status == _IN_PROGRESS and job.worker_id == worker.id:
                self._requeue_or_fail(job, now, reason or "worker lost")
        self.replenish(endpoint)

    def _requeue_or_fail(self, job: Job, now: float, reason: str) -> None:
        """A running job whose worker is gone goes back to the front of the queue (production's
        automatic retries on worker loss; `retried` counts it), or, the third time, fails with
        `reason`. queued_at stays: delayTime counts every wait before the run that counts."""
        endpoint = job.endpoint
        job.lost_runs += 1
        if job.lost_runs >= _MAX_LOST_RUNS:
            job.error = f"{reason} ({job.lost_runs} times)"
            self._end(job, now, JobStatus.FAILED)
            return
        job.generation += 1
        endpoint.in_progress -= 1
        endpoint.retried += 1
        job.status = _IN_QUEUE
        job.started_at = None
        job.worker_id = None
        job.output = job.plan = job.streamed = None
        job.chunks_sent = 0
        self._schedule_expiry(job, job.ttl_deadline)
        idle = next((w for w in endpoint.workers.values() if w.state is _IDLE), None)
        if idle is not None:
            self._pickup(idle, job, now)
        else:
            endpoint.queue.appendleft(job)
        self._changed(job)

    def replenish(self, endpoint: EndpointState) -> None:
        """Start workers up to workers-min, and one more if the queue needs it."""
        now = self.advance()
        while len(endpoint.workers) < self.config.workers_min:
            self._start_worker(endpoint, now, warm=True)
        if endpoint.queue:
            queue = endpoint.queue
            for worker in list(endpoint.workers.values()):
                while worker.slots > 0 and queue:
                    self._pickup(worker, queue.popleft(), now)
            if queue:
                self._scale_up(endpoint, now)

    # --- operations ---------------------------------------------------------------------------

    def submit(self, endpoint_id: str, body: Any, *, sync: bool = False) -> Job:
        """/run and /runsync: queue a job. `body` is the parsed request object; raises
        JobRequestError (400) when it breaks the request contract."""
        job_input, execution_timeout_ms, ttl_ms, low_priority = _read_request(body)
        now = self.advance()
        endpoint = self.endpoints.get(endpoint_id) or self.endpoint(endpoint_id)
        job = Job(
            id=self._new_job_id(sync),
            endpoint=endpoint,
            input=job_input,
            sync=sync,
            submitted_at=now,
            ttl_deadline=now + ttl_ms / 1000,
            execution_timeout_s=execution_timeout_ms / 1000,
            low_priority=low_priority,
            webhook=body.get("webhook"),
        )
        return self._admit(job, now)

    def submit_simulated(
        self,
        endpoint: EndpointState,
        job_input: dict[str, Any],
        execution_timeout_ms: int = _DEFAULT_EXECUTION_TIMEOUT_MS,
    ) -> Job:
        """Queue a job the caller made rather than one a request asked for (the simulation's
        arrivals): an asynchronous job with the default TTL, no webhook and not low priority,
        as `submit` makes of `{"input": job_input, "policy": {"executionTimeout": ...}}`,
        without the request checks (the caller vouches for the values) and with a serial id
        (`sim-1`, `sim-2`, ...: no client sees it)."""
        now = self.advance()
        self._serial += 1
        job = Job(
            id=f"sim-{self._serial}",
            endpoint=endpoint,
            input=job_input,
            sync=False,
            submitted_at=now,
            ttl_deadline=now + _DEFAULT_TTL_MS / 1000,
            execution_timeout_s=execution_timeout_ms / 1000,
        )
        return self._admit(job, now)

    def _admit(self, job: Job, now: float) -> Job:
        """A new job: listed, then queued or picked up at once."""
        endpoint = job.endpoint
        endpoint.jobs[job.id] = job
        self._job_count += 1
        self._enqueue(job, now)
        # The TTL only matters while the job waits or runs: a job picked up at once that ends
        # before it gets its retention expiry from `_end` instead (one heap entry, not two).
        if job.status == _IN_QUEUE or job.run_ends_at > job.ttl_deadline:
            self._schedule_expiry(job, job.ttl_deadline)
        # A job that takes no time ends in this same instant (`advance`'s first test, inline:
        # nearly always nothing is due).
        events, expiries = self._events, self._expiries
        if events or expiries:
            now = self._clock()  # a real clock moved on meanwhile
            if (events and events[0][0] <= now) or (expiries and expiries[0][0] <= now):
                self.advance()
        return job

    def _new_job_id(self, sync: bool) -> str:
        # str(uuid.UUID(int=bits, version=4)), without building the UUID object ("%" formats
        # an int to hex faster than an f-string does).
        bits = self._rng.getrandbits(130)
        hex_ = "%032x" % (bits >> 2 & _UUID4_CLEAR | _UUID4_SET)
        suffix = _JOB_ID_SUFFIXES[bits & 3]
        job_id = f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}{suffix}"
        return "sync-" + job_id if sync else job_id

    def _enqueue(self, job: Job, now: float) -> None:
        endpoint = job.endpoint
        job.status = _IN_QUEUE
        job.queued_at = now
        queue = endpoint.queue
        plain = self._plain_simulation
        # In a plain simulation a non-empty queue means that no worker has a slot: no walk.
        if not (plain and queue):
            for worker in endpoint.workers.values():
                if worker.slots:
                    self._pickup(worker, job, now)
                    return
        queue.append(job)
        if job.low_priority:
            return  # "When true, job won't trigger worker scaling"
        if self._request_count_scaler:
            self._scale_to_requests(endpoint, now)
            return
        if not endpoint.workers:
            self._scale_up(endpoint, now)  # scale from zero at once
        if plain and len(endpoint.workers) >= self.config.workers_max:
            # Its queue-delay check would do nothing: while this job waits, no worker is idle,
            # so none retires, and workers-max is still reached when the check is due (if the
            # job no longer waits then, the check does nothing either). Leaving the event out
            # changes no other event's order: ties are ordered by sequence, which stays
            # increasing.
            return
        self._schedule(now + self.config.queue_delay_s, _JOB_OVERDUE, job, job.generation)

    def get(self, endpoint_id: str, job_id: str) -> Job | None:
        self.advance()
        endpoint = self.endpoints.get(endpoint_id)
        return None if endpoint is None else endpoint.jobs.get(job_id)

    def set_ttl(self, job: Job, ttl_ms: int) -> None:
        """`?ttl=` on /status: delete the job this many ms from now."""
        deadline = self._clock() + ttl_ms / 1000
        # ?ttl shortens a job's life; it never outlives its policy.ttl (nor, later, a retry).
        job.ttl_deadline = min(job.ttl_deadline, deadline)
        # A job picked up at once has no expiry event while it runs (see `submit`).
        current = job.ttl_deadline if job.expires_at is None else job.expires_at
        self._schedule_expiry(job, min(current, job.ttl_deadline))

    def cancel(self, job: Job) -> None:
        """Remove a queued job, or stop a running one; a terminal job stays as it is."""
        self.advance()
        if job.status == _IN_QUEUE:
            job.endpoint.queue.remove(job)
            self._end(job, self._clock(), JobStatus.CANCELLED)
        elif job.status == _IN_PROGRESS:
            self._end(job, self._clock(), JobStatus.CANCELLED)

    def retry(self, job: Job) -> None:
        """Requeue a FAILED or TIMED_OUT job under the same id with its output cleared.
        The caller checks `job.status in JobStatus.RETRYABLE` first."""
        self.advance()
        if job.status not in JobStatus.RETRYABLE:
            raise ValueError(
                f"job {job.id} is {job.status}; only FAILED or TIMED_OUT can be retried"
            )
        job.generation += 1
        job.endpoint.retried += 1
        job.started_at = job.ended_at = None
        job.output = job.error = job.worker_id = job.plan = job.streamed = None
        job.chunks_sent = 0
        self._schedule_expiry(job, job.ttl_deadline)
        self._enqueue(job, self._clock())
        self.advance()
        self._changed(job)

    def purge_queue(self, endpoint_id: str) -> int:
        """Remove every queued job (they end as CANCELLED); running jobs go on."""
        self.advance()
        endpoint = self.endpoint(endpoint_id)
        removed = list(endpoint.queue)
        endpoint.queue.clear()
        now = self._clock()
        for job in removed:
            self._end(job, now, JobStatus.CANCELLED)
        return len(removed)

    def health(self, endpoint_id: str) -> dict[str, Any]:
        self.advance()
        return self.endpoint(endpoint_id).health()

    def jobs(self) -> Iterator[Job]:
        for endpoint in self.endpoints.values():
            yield from endpoint.jobs.values()


def _is_current(kind: int, subject: Any, generation: int) -> bool:
    if kind == _EXPIRY_LINE:
        return False  # `next_event_time` and `_compact_if_stale` look at the line themselves
    if kind == _Event.WORKER_RETIRE:
        return bool(subject.retire_pending)  # one per worker; `_apply` checks how long idle
    if kind == _JOB_EXPIRE:
        return bool(subject.expiry_generation == generation)
    return bool(subject.generation == generation)


def _not_a_clock() -> float:
    raise RuntimeError("Model needs a clock: pass clock=time.time or a virtual clock")


def _read_request(body: Any) -> tuple[dict[str, Any], int, int, bool]:
    """Check a /run or /runsync body; return (input, executionTimeout ms, ttl ms, lowPriority)."""
    if not isinstance(body, dict):
        raise JobRequestError("request body must be a JSON object with an 'input' object")
    if "input" not in body:
        raise JobRequestError("request body has no 'input': send {\"input\": {...}}")
    job_input = body["input"]
    if not isinstance(job_input, dict):
        raise JobRequestError(
            f"'input' must be a JSON object, got {_json_type(job_input)}: "
            "wrap the value in an object"
        )
    webhook = body.get("webhook")
    if webhook is not None:
        if not isinstance(webhook, str):
            raise JobRequestError(f"'webhook' must be a URL string, got {_json_type(webhook)}")
        problem = webhook_url_problem(webhook)
        if problem is not None:
            raise JobRequestError(f"'webhook' {problem}: send an absolute http(s) URL")
    s3_config = body.get("s3Config")
    if s3_config is not None and not isinstance(s3_config, dict):
        raise JobRequestError(f"'s3Config' must be a JSON object, got {_json_type(s3_config)}")
    policy = body.get("policy")
    if policy is None:
        # The usual body: no policy, so every value is its (valid) default.
        return job_input, _DEFAULT_EXECUTION_TIMEOUT_MS, _DEFAULT_TTL_MS, False
    if not isinstance(policy, dict):
        raise JobRequestError(f"'policy' must be a JSON object, got {_json_type(policy)}")
    values: dict[str, int] = {}
    for key, limit in POLICY_LIMITS.items():
        value = policy.get(key, limit.default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise JobRequestError(f"'policy.{key}' must be an integer number of milliseconds")
        if not limit.minimum <= value <= limit.maximum:
            raise JobRequestError(
                f"'policy.{key}' must be from {limit.minimum} to {limit.maximum} ms, got {value}"
            )
        values[key] = value
    low_priority = policy.get("lowPriority", False)
    if not isinstance(low_priority, bool):
        raise JobRequestError("'policy.lowPriority' must be true or false")
    return job_input, values["executionTimeout"], values["ttl"], low_priority


WEBHOOK_URL_MAX_CHARS = 2048


def webhook_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None when it can: an absolute http or https URL with a
    host (and a valid port), at most WEBHOOK_URL_MAX_CHARS long, without blanks or control
    characters. Production's own rule is undocumented; these are URLs no POST could reach."""
    if not url:
        return "is empty"
    if len(url) > WEBHOOK_URL_MAX_CHARS:
        return f"is longer than {WEBHOOK_URL_MAX_CHARS} characters"
    if not url.isprintable() or any(char.isspace() for char in url):
        return "contains blanks or control characters"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return f"must start with http:// or https://, got {url[:40]!r}"
    try:
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError:
        return "has an invalid port"
    if not parts.hostname or port == 0:
        return "has no host to deliver to" if not parts.hostname else "has port 0"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
