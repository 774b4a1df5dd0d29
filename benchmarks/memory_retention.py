"""Does the emulator give memory back? `python benchmarks/memory_retention.py MODE [--jobs N]`.

Runs N jobs (default 100,000) through `EmulatorService.preflight`/`execute` (the code both
transports share: operations table, auth, request checks, the model) on a `VirtualClock`, so the
30 minutes of result retention pass instantly. Measures after `gc.collect()`: before the jobs,
at the peak (every job completed and still retained) and once retention has run out. Prints one
JSON object.

Modes, each to be run in a fresh interpreter: `traced` measures Python's allocated bytes with
tracemalloc (what the emulator holds on to); `rss` the resident set, without tracemalloc (whose
own bookkeeping would inflate it); `rss-trimmed` the resident set after glibc's `malloc_trim(0)`
has handed freed pages back to the system at each measurement (glibc keeps them otherwise, so raw
RSS says as much about the allocator as about the emulator).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import sys
import tracemalloc
from collections.abc import Callable

import orjson

from runpod_testkit.emulator.mock import VirtualClock
from runpod_testkit.emulator.model import EmulatorConfig, Model
from runpod_testkit.emulator.service import EmulatorService, Reply

__all__ = ["main", "run_workload"]

ENDPOINT_ID = "bench"
AUTHORIZATION = "Bearer benchmark-key"
PROBE_BODY = orjson.dumps({"input": {"sleep_ms": 20}})
SUBMIT_INTERVAL_S = 0.002
"""500 jobs per virtual second: more than three 20 ms workers take, so the queue and the
scaler (cold starts, queue-delay scale-ups, idle retirement) all take part."""
WARMUP_JOBS = 200
MODES = ("traced", "rss", "rss-trimmed")


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Workload:
    """Jobs submitted and polled through the service, as the ASGI app and respx adapter do."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.model = Model(EmulatorConfig(seed=7), self.clock)
        self.service = EmulatorService(self.model, api_key="benchmark-key")

    def request(self, method: str, op_path: str, body: bytes = b"") -> Reply:
        call = self.service.preflight(method, ENDPOINT_ID, op_path, {}, AUTHORIZATION)
        if isinstance(call, Reply):
            raise RuntimeError(f"{method} {op_path}: {call.status} {call.body}")
        try:
            reply = self.service.execute(call, body)
        finally:
            self.service.release(call)
        if not isinstance(reply, Reply) or reply.status != 200:
            raise RuntimeError(f"{method} {op_path}: unexpected {reply!r}")
        return reply

    def run_jobs(self, count: int) -> None:
        """Submit `count` jobs, poll each once after it could have finished, let all complete."""
        polled_lag = 64
        ids: list[str] = []
        for index in range(count):
            ids.append(self.request("POST", "run", PROBE_BODY).body["id"])
            self.clock.advance(SUBMIT_INTERVAL_S)
            self.model.advance()
            if index >= polled_lag:
                self.request("GET", f"status/{ids[index - polled_lag]}").encode()
        self.settle(lambda: all(self.status(job_id) == "COMPLETED" for job_id in ids[-100:]))
        not_completed = sum(1 for job_id in ids if self.status(job_id) != "COMPLETED")
        if not_completed:
            raise RuntimeError(f"{not_completed} of {count} jobs did not complete")

    def status(self, job_id: str) -> str | None:
        job = self.model.get(ENDPOINT_ID, job_id)
        return None if job is None else job.status

    def settle(self, done: Callable[[], bool], limit_s: float = 3600.0) -> None:
        """Jump the clock from event to event until `done()` (bounded by `limit_s` virtual s)."""
        stop = self.clock.now + limit_s
        while not done():
            next_event = self.model.next_event_time()
            if next_event is None or next_event > stop:
                raise RuntimeError("the model ran out of events before the jobs finished")
            self.clock.jump_to(next_event)
            self.model.advance()

    def pass_retention(self) -> None:
        """Let every result's retention run out, as the app's timer would, and serve one request
        (a live server keeps answering; this is its first request after the quiet period)."""
        self.clock.advance(self.model.config.retention_async_s + 60.0)
        self.model.advance()
        self.request("GET", "health")

    def live_jobs(self) -> int:
        return sum(1 for _ in self.model.jobs())


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    return trim


MALLOC_TRIM = _load_malloc_trim()


def measure(mode: str) -> int:
    gc.collect()
    if mode == "traced":
        return tracemalloc.get_traced_memory()[0]
    if mode == "rss-trimmed":
        if MALLOC_TRIM is None:
            raise RuntimeError("rss-trimmed needs glibc's malloc_trim")
        MALLOC_TRIM(0)
    return rss_bytes()


def run_workload(jobs: int, mode: str) -> dict[str, int]:
    if mode == "traced":
        tracemalloc.start()
    workload = Workload()
    # Warm-up: the endpoint, its workers, lazy imports and interned strings exist from here on.
    workload.run_jobs(WARMUP_JOBS)
    workload.pass_retention()
    before = measure(mode)
    workload.run_jobs(jobs)
    peak = measure(mode)
    peak_jobs = workload.live_jobs()
    workload.pass_retention()
    after = measure(mode)
    return {
        "jobs": jobs,
        "before": before,
        "peak": peak,
        "after": after,
        "jobs_at_peak": peak_jobs,
        "jobs_after": workload.live_jobs(),
        "pending_events_after": workload.model.pending_events(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(json.dumps(run_workload(args.jobs, args.mode)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
