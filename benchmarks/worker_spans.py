"""The arithmetic of benchmarks/bench_worker.py: a job's life as its worker saw it, split into
what the runpod SDK's own loop takes and what the emulator adds (pure; tests/test_bench_worker.py).

Times are `time.monotonic()` seconds (one clock for every process on the machine). A worker's
trace (benchmarks/worker_handler/worker_trace.py) lists, in order, when its SDK sent a job-take and
got its answer, when the handler started and ended, and when the SDK sent the job-done.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ClientTimes",
    "JobSplit",
    "WorkerSpan",
    "open_take_since",
    "percentile",
    "read_traces",
    "split_job",
    "take_cycles",
    "worker_spans",
]


@dataclass(frozen=True)
class WorkerSpan:
    """One job as its worker process saw it."""

    take_sent: float
    """The SDK sent the job-take request that brought this job."""
    take_answered: float
    """The answer's headers (carrying the job) reached the SDK."""
    handler_start: float
    handler_end: float
    done_sent: float
    """The SDK sent job-done with the result."""
    done_answered: float
    """The emulator's answer to job-done reached the SDK."""


@dataclass(frozen=True)
class ClientTimes:
    """One job as the benchmark's client and the emulator's /status saw it."""

    submit_sent: float
    """The client started its POST /run."""
    run_answered: float
    """The client had /run's answer."""
    delay_ms: int
    execution_ms: int


@dataclass(frozen=True)
class JobSplit:
    """A job's pickup and execution, split between the SDK and the emulator (milliseconds)."""

    delay_ms: int
    """delayTime as the emulator reported it."""
    sdk_pickup_wait_ms: float
    """How long the job waited because the SDK had no job-take open: from /run sent to the SDK
    sending the job-take that brought it (0 when a job-take was already open)."""
    emulator_pickup_ms: float
    """From the moment a job was submitted and a job-take was under way, to the job reaching the
    SDK: /run's request, the queue, the job-take's answer, and loopback both ways."""
    run_round_trip_ms: float
    """/run's round trip at the client (for information: it overlaps the job-take's answer)."""
    execution_ms: int
    """executionTime as the emulator reported it."""
    sdk_span_ms: float
    """The SDK's own span: job-take answered to job-done sent (its queue tick, the handler and
    the result's encoding)."""
    sdk_queue_wait_ms: float
    """Part of the SDK's span: job-take answered to handler start (its run loop looks at its job
    queue every 100 ms)."""
    handler_ms: float
    emulator_execution_ms: float
    """executionTime minus the SDK's span: the job-take answer's and job-done's trips and the
    emulator's handling of both (executionTime is whole milliseconds: +-0.5 ms)."""
    done_round_trip_ms: float
    """job-done sent to answered, at the worker (for information: one exchange with the
    emulator, as a yardstick for the two legs in `emulator_execution_ms`)."""


def split_job(client: ClientTimes, worker: WorkerSpan) -> JobSplit:
    # The later of "submitted" and "a job-take is on its way": before that the job could not be
    # handed over, because there was no job or because the SDK was not asking.
    ready = max(client.submit_sent, worker.take_sent)
    return JobSplit(
        delay_ms=client.delay_ms,
        sdk_pickup_wait_ms=max(0.0, worker.take_sent - client.submit_sent) * 1000,
        emulator_pickup_ms=(worker.take_answered - ready) * 1000,
        run_round_trip_ms=(client.run_answered - client.submit_sent) * 1000,
        execution_ms=client.execution_ms,
        sdk_span_ms=(worker.done_sent - worker.take_answered) * 1000,
        sdk_queue_wait_ms=(worker.handler_start - worker.take_answered) * 1000,
        handler_ms=(worker.handler_end - worker.handler_start) * 1000,
        emulator_execution_ms=client.execution_ms
        - (worker.done_sent - worker.take_answered) * 1000,
        done_round_trip_ms=(worker.done_answered - worker.done_sent) * 1000,
    )


def worker_spans(events: Iterable[Mapping[str, Any]]) -> dict[str, WorkerSpan]:
    """Each job's span from one worker process's events, in the order written. A job-take
    answered 200 brought the next job whose handler starts (the SDK takes one job at a time at
    concurrency 1, and runs them in the order taken); jobs seen only in part are left out."""
    take_sent: float | None = None
    takes: list[tuple[float, float]] = []
    partial: dict[str, dict[str, float]] = {}
    for event in events:
        what, t, job_id = event["what"], float(event["t"]), event.get("job")
        if what == "take-sent":
            take_sent = t
        elif what == "take-answered":
            if event.get("status") == 200 and take_sent is not None:
                takes.append((take_sent, t))
            take_sent = None
        elif what == "handler-start" and takes and job_id is not None:
            sent, answered = takes.pop(0)
            partial[job_id] = {"take_sent": sent, "take_answered": answered, "handler_start": t}
        elif what in ("handler-end", "done-sent", "done-answered") and job_id in partial:
            partial[job_id].setdefault(what.replace("-", "_"), t)
    return {
        job_id: WorkerSpan(**times)
        for job_id, times in partial.items()
        if {"handler_end", "done_sent", "done_answered"} <= times.keys()
    }


def open_take_since(events: Sequence[Mapping[str, Any]]) -> float | None:
    """When the worker's open job-take was sent, or None if it has none open right now."""
    for event in reversed(events):
        if event["what"] == "take-sent":
            return float(event["t"])
        if event["what"] == "take-answered":
            return None
    return None


def take_cycles(events: Iterable[Mapping[str, Any]]) -> list[float]:
    """Seconds between one job-take that brought a job and the next one, in one process."""
    answered = [
        float(e["t"]) for e in events if e["what"] == "take-answered" and e.get("status") == 200
    ]
    return [later - earlier for earlier, later in itertools.pairwise(answered)]


def read_traces(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every worker process's events, by trace file name (a line cut short by a process that
    is still writing is skipped)."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("trace-*.jsonl")):
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        traces[path.name] = events
    return traces


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.5 = median, 0.95 = p95) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
