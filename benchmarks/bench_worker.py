"""The emulator with real worker processes, measured: `python benchmarks/bench_worker.py`.

The emulator runs as `runpod-testkit emulator --worker "python worker_handler/handler.py"` (a
subprocess, as users run it), so each worker is the official runpod SDK serving a sync handler
that sleeps `sleep_ms`. Inside each worker, `worker_handler/worker_trace.py` records when the
SDK sent its job-take and job-done requests and got their answers; the client records when it
sent each /run; /status gives delayTime and executionTime. `worker_spans.py` splits each job:

- pickup, warm idle worker: /run sent while the worker's job-take has been open 100-300 ms.
  The emulator's share: from /run sent (or the job-take sent, if later) to the job-take's answer
  reaching the SDK. Target <= 5 ms (p95). Beside it, the same back to back: each /run sent as
  the previous job is seen COMPLETED, when the SDK is still in its 1 s sleep after a take.
- execution, handler sleeps 500 ms: executionTime minus the SDK's own span (job-take answered
  to job-done sent, which holds its 0-100 ms queue tick). Target <= 5 ms (p95).
- jobs per second with an instant handler through 1 and 2 workers (`--clients` threads sending
  /runsync for `--seconds`), beside runpod's dev server (`python handler.py --rp_serve_api`)
  serving /runsync with the same handler and the same clients.

Figures only: not a test, and pytest does not collect it. Every process (emulator, its worker
process groups, the dev server) is stopped on every exit path, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from harness import BenchmarkError
from worker_spans import (
    ClientTimes,
    JobSplit,
    WorkerSpan,
    open_take_since,
    percentile,
    read_traces,
    split_job,
    take_cycles,
    worker_spans,
)

from runpod_testkit.emulator.server import EmulatorProcess, stop_process

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
HANDLER = HERE / "worker_handler" / "handler.py"
TRACE_ENV = "BENCH_WORKER_TRACE_DIR"
ENDPOINT_ID = "bench"
AUTH = {"Authorization": "Bearer bench-worker-key"}
TARGET_MS = 5.0
EXECUTION_SLEEP_MS = 500
IDLE_GAP_S = (0.1, 0.3)
"""How long the worker's job-take is open before each "idle" /run (random, so that no phase of
the emulator's timers lines up with the submissions)."""
START_TIMEOUT_S = 90.0
"""Bound for worker processes to start (importing runpod takes seconds on a busy machine)."""
JOB_TIMEOUT_S = 30.0
STATUS_POLL_S = 0.02


@dataclass(frozen=True)
class Plan:
    idle_jobs: int
    execution_jobs: int
    back_to_back_jobs: int
    emulator_window_s: float
    devserver_window_s: float
    clients: int


DEFAULT = Plan(30, 15, 15, 20.0, 5.0, 4)
QUICK = Plan(8, 4, 4, 6.0, 3.0, 4)


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("runpod", "aiohttp", "uvicorn", "starlette")},
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def worker_command() -> str:
    return shlex.join([sys.executable, str(HANDLER)])


# --- the emulator and its workers ---------------------------------------------------------------


class TracedEmulator:
    """`runpod-testkit emulator --worker ...` with N warm workers whose SDK requests are traced
    to a private folder."""

    def __init__(self, workers: int, trace_dir: Path) -> None:
        self.workers = workers
        self.trace_dir = trace_dir
        args = ["--workers-min", str(workers), "--workers-max", str(workers)]
        args += ["--cold-start-ms", "0", "--idle-timeout-s", "3600"]
        self.process = EmulatorProcess(args, worker=worker_command())
        self.url = ""

    def __enter__(self) -> TracedEmulator:
        # The emulator hands its environment to the workers: the handler traces when it is set.
        previous = os.environ.get(TRACE_ENV)
        os.environ[TRACE_ENV] = str(self.trace_dir)
        try:
            self.url = f"{self.process.start()}/{ENDPOINT_ID}"
        finally:
            if previous is None:
                os.environ.pop(TRACE_ENV, None)
            else:
                os.environ[TRACE_ENV] = previous
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def open_takes(self) -> list[float]:
        """When each worker's open job-take was sent (workers with none open are left out)."""
        traces = read_traces(self.trace_dir).values()
        return [since for since in map(open_take_since, traces) if since is not None]

    def wait_idle(self, client: httpx.Client, count: int, timeout_s: float) -> float:
        """Wait (bounded) until `count` workers hold a job-take open; return the latest send."""
        deadline = time.monotonic() + timeout_s
        # /health makes the emulator start its --workers-min processes for this endpoint id.
        client.get(f"{self.url}/health", headers=AUTH)
        while time.monotonic() < deadline:
            takes = self.open_takes()
            if len(takes) >= count:
                return max(takes)
            time.sleep(0.01)  # poll interval of a bounded wait
        tail = "; ".join(self.process.output_tail)
        raise BenchmarkError(f"{count} worker(s) not idle within {timeout_s:.0f} s: {tail}")

    def spans(self) -> dict[str, WorkerSpan]:
        found: dict[str, WorkerSpan] = {}
        for events in read_traces(self.trace_dir).values():
            found.update(worker_spans(events))
        return found

    def cycles_since(self, start: float) -> list[float]:
        cycles: list[float] = []
        for events in read_traces(self.trace_dir).values():
            cycles += take_cycles(event for event in events if event["t"] >= start)
        return cycles


def run_one(client: httpx.Client, url: str, sleep_ms: int) -> tuple[str, ClientTimes]:
    """Submit one job with /run and poll /status (bounded) until it has COMPLETED."""
    submit_sent = time.monotonic()
    response = client.post(f"{url}/run", json={"input": {"sleep_ms": sleep_ms}}, headers=AUTH)
    if response.status_code != 200:
        raise BenchmarkError(f"/run answered {response.status_code}: {response.text}")
    run_answered = time.monotonic()
    job_id: str = response.json()["id"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        body = client.get(f"{url}/status/{job_id}", headers=AUTH).json()
        if body.get("status") == "COMPLETED":
            return job_id, ClientTimes(
                submit_sent, run_answered, body["delayTime"], body["executionTime"]
            )
        if body.get("status") not in ("IN_QUEUE", "IN_PROGRESS"):
            raise BenchmarkError(f"job {job_id} ended {body}")
        time.sleep(STATUS_POLL_S)  # the client's poll interval
    raise BenchmarkError(f"job {job_id} did not complete within {JOB_TIMEOUT_S:.0f} s")


def sequential_jobs(
    emulator: TracedEmulator, client: httpx.Client, count: int, sleep_ms: int, *, idle: bool
) -> list[JobSplit]:
    """`count` jobs one after another; with `idle`, each /run waits until the worker's job-take
    has been open for 100-300 ms, otherwise it follows the previous job's end at once."""
    times: dict[str, ClientTimes] = {}
    for _ in range(count):
        if idle:
            since = emulator.wait_idle(client, 1, 10.0)
            time.sleep(max(0.0, since + random.uniform(*IDLE_GAP_S) - time.monotonic()))
        job_id, client_times = run_one(client, emulator.url, sleep_ms)
        times[job_id] = client_times
    spans = emulator.spans()
    missing = sorted(times.keys() - spans.keys())
    if missing:
        raise BenchmarkError(f"no worker trace for job(s) {', '.join(missing)}")
    return [split_job(times[job_id], spans[job_id]) for job_id in times]


# --- throughput ---------------------------------------------------------------------------------


@dataclass
class Rate:
    jobs: int
    seconds: float
    errors: int

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds


def drive(
    clients: int, window_s: float, send: Callable[[httpx.Client], bool], base_url: str
) -> Rate:
    """`clients` threads, each sending one job after another until the window has passed (a job
    under way then is finished); jobs done / time until the last one ended."""
    done = [0] * clients
    errors = [0] * clients
    start = time.monotonic()
    deadline = start + window_s

    def client_loop(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=JOB_TIMEOUT_S) as client:
            while time.monotonic() < deadline:
                try:
                    if send(client):
                        done[index] += 1
                    else:
                        errors[index] += 1
                except httpx.HTTPError:
                    errors[index] += 1

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(window_s + JOB_TIMEOUT_S + 5)
    if any(thread.is_alive() for thread in threads):
        raise BenchmarkError("a client did not finish its last job in time")
    return Rate(sum(done), time.monotonic() - start, sum(errors))


def emulator_runsync(client: httpx.Client) -> bool:
    response = client.post("/runsync", json={"input": {"sleep_ms": 0}}, headers=AUTH)
    body = response.json() if response.status_code == 200 else {}
    job_id, status = body.get("id"), body.get("status")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    # /runsync holds for 90 s by default; should it answer early, the job is polled to its end.
    while status in ("IN_QUEUE", "IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(STATUS_POLL_S)
        status = client.get(f"/status/{job_id}", headers=AUTH).json().get("status")
    return bool(status == "COMPLETED")


def devserver_runsync(client: httpx.Client) -> bool:
    response = client.post("/runsync", json={"input": {"sleep_ms": 0}})
    return response.status_code == 200 and response.json().get("status") == "COMPLETED"


@contextmanager
def running_devserver(timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """runpod's local dev server around the same handler file, on a free loopback port, with
    no RUNPOD_* variable (it never contacts Runpod) and no tracing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_") and k != TRACE_ENV}
    command = [sys.executable, str(HANDLER), "--rp_serve_api", "--rp_api_host", "127.0.0.1"]
    command += ["--rp_api_port", str(port), "--rp_log_level", "WARN"]
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-1000:]
                    raise BenchmarkError(f"the dev server did not start: {tail}")
                try:
                    if httpx.get(f"{base_url}/openapi.json", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # poll interval while the port is not open yet
            yield base_url
        finally:
            stop_process(process)


# --- report -------------------------------------------------------------------------------------


def quantiles(values: list[float]) -> tuple[float, float]:
    return percentile(values, 0.5), percentile(values, 0.95)


def row(label: str, values: list[float], target: str = "") -> str:
    p50, p95 = quantiles(values)
    return f"  {label:<58} {p50:8.1f} {p95:8.1f}  {target}".rstrip()


def heading(title: str) -> str:
    return f"{title:<60} {'p50':>8} {'p95':>8} ms"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def judge(name: str, values: list[float], checks: list[dict[str, Any]]) -> str:
    """Both the median and the p95 are held to the target; the target column says which met it."""
    marks = []
    for label, fraction in (("p50", 0.5), ("p95", 0.95)):
        value = percentile(values, fraction)
        passed = value <= TARGET_MS
        checks.append(
            {
                "name": f"{name} ({label})",
                "value_ms": value,
                "target_ms": TARGET_MS,
                "passed": passed,
            }
        )
        marks.append(verdict(passed))
    return f"<= {TARGET_MS:g}: {' '.join(marks)}"


def pickup_lines(
    title: str, splits: list[JobSplit], checks: list[dict[str, Any]] | None
) -> list[str]:
    added = [s.emulator_pickup_ms for s in splits]
    target = judge("pickup added", added, checks) if checks is not None else ""
    return [
        heading(f"{title} ({len(splits)} jobs)"),
        row("delayTime (the emulator's figure)", [float(s.delay_ms) for s in splits]),
        row(
            "SDK: no job-take open yet (/run sent -> job-take sent)",
            [s.sdk_pickup_wait_ms for s in splits],
        ),
        row("emulator: /run or job-take sent -> job in the SDK's hands", added, target),
        row(
            "  (for information: /run's round trip at the client)",
            [s.run_round_trip_ms for s in splits],
        ),
    ]


def execution_lines(splits: list[JobSplit], checks: list[dict[str, Any]]) -> list[str]:
    added = [s.emulator_execution_ms for s in splits]
    target = judge("execution added", added, checks)
    title = f"execution, handler sleeps {EXECUTION_SLEEP_MS} ms ({len(splits)} jobs, idle worker)"
    return [
        heading(title),
        row("executionTime (the emulator's figure)", [float(s.execution_ms) for s in splits]),
        row("SDK span: job-take answered -> job-done sent", [s.sdk_span_ms for s in splits]),
        row(
            "  of which: waiting for its run loop's 100 ms tick",
            [s.sdk_queue_wait_ms for s in splits],
        ),
        row("  of which: the handler", [s.handler_ms for s in splits]),
        row("emulator: executionTime - SDK span", added, target),
        row(
            "  (for information: job-done's round trip at the worker)",
            [s.done_round_trip_ms for s in splits],
        ),
    ]


def throughput_lines(rates: dict[str, tuple[Rate, list[float]]], plan: Plan) -> list[str]:
    lines = [
        f"jobs/s, instant handler, {plan.clients} clients sending /runsync"
        f"{'':<14}jobs   seconds   jobs/s  errors  take-to-take s",
    ]
    for label, (rate, cycles) in rates.items():
        cycle = f"{percentile(cycles, 0.5):.3f}" if cycles else "-"
        lines.append(
            f"  {label:<58} {rate.jobs:6d} {rate.seconds:9.1f} {rate.per_s:8.1f} {rate.errors:7d}"
            f"  {cycle:>14}"
        )
    lines.append(
        "  (the SDK asks for its next job 1 s after taking one while its single slot is busy:"
        " about 1 job/s per worker, here as on Runpod)"
    )
    return lines


# --- run ----------------------------------------------------------------------------------------


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise, so that every `finally` stops what it started."""

    def raise_exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, raise_exit),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(plan: Plan, json_out: str | None) -> int:
    machine = machine_info()
    load_before = load_average()
    checks: list[dict[str, Any]] = []
    rates: dict[str, tuple[Rate, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as folder:
        trace_one, trace_two = Path(folder, "one"), Path(folder, "two")
        trace_one.mkdir()
        trace_two.mkdir()
        with (
            TracedEmulator(1, trace_one) as emulator,
            httpx.Client(timeout=JOB_TIMEOUT_S) as client,
        ):
            print(f"emulator at {emulator.url}, starting its worker", flush=True)
            emulator.wait_idle(client, 1, START_TIMEOUT_S)
            for _ in range(2):  # warm-up: the first jobs import what the handler path needs
                run_one(client, emulator.url, 0)
            print(f"pickup: {plan.idle_jobs} jobs on an idle worker", flush=True)
            idle = sequential_jobs(emulator, client, plan.idle_jobs, 0, idle=True)
            print(f"pickup: {plan.back_to_back_jobs} jobs back to back", flush=True)
            back_to_back = sequential_jobs(emulator, client, plan.back_to_back_jobs, 0, idle=False)
            print(f"execution: {plan.execution_jobs} jobs of {EXECUTION_SLEEP_MS} ms", flush=True)
            execution = sequential_jobs(
                emulator, client, plan.execution_jobs, EXECUTION_SLEEP_MS, idle=True
            )
            print(f"jobs/s: 1 worker, {plan.emulator_window_s:g} s", flush=True)
            emulator.wait_idle(client, 1, 10.0)
            start = time.monotonic()
            rate = drive(plan.clients, plan.emulator_window_s, emulator_runsync, emulator.url)
            rates["emulator, 1 worker"] = (rate, emulator.cycles_since(start))
        with (
            TracedEmulator(2, trace_two) as emulator,
            httpx.Client(timeout=JOB_TIMEOUT_S) as client,
        ):
            print(f"jobs/s: 2 workers, {plan.emulator_window_s:g} s", flush=True)
            emulator.wait_idle(client, 2, START_TIMEOUT_S)
            start = time.monotonic()
            rate = drive(plan.clients, plan.emulator_window_s, emulator_runsync, emulator.url)
            rates["emulator, 2 workers"] = (rate, emulator.cycles_since(start))
    with running_devserver() as base_url:
        print(f"jobs/s: dev server, {plan.devserver_window_s:g} s", flush=True)
        drive(plan.clients, 1.0, devserver_runsync, base_url)  # warm-up
        rate = drive(plan.clients, plan.devserver_window_s, devserver_runsync, base_url)
        rates["dev server (python handler.py --rp_serve_api)"] = (rate, [])
    lines = [
        "machine: {nproc} cores, {cpu_model}; Python {python}; runpod {runpod}, aiohttp "
        "{aiohttp}, uvicorn {uvicorn}, starlette {starlette}".format(**machine),
        f"load average (1, 5, 15 min): {load_before} before, {load_average()} after",
        f"worker: {worker_command()} (a sync handler), under runpod-testkit emulator --worker",
        "",
        *pickup_lines("pickup, warm idle worker", idle, checks),
        *pickup_lines("pickup, back to back (SDK sleeps 1 s after a take)", back_to_back, None),
        "",
        *execution_lines(execution, checks),
        "",
        *throughput_lines(rates, plan),
    ]
    passed = all(check["passed"] for check in checks) and not any(
        rate.errors for rate, _ in rates.values()
    )
    lines += ["", f"overall: {verdict(passed)}"]
    print("\n".join(["", *lines]))
    if json_out:
        summary = {
            "machine": machine,
            "load_average": {"before": load_before, "after": load_average()},
            "plan": asdict(plan),
            "pickup_idle": [asdict(s) for s in idle],
            "pickup_back_to_back": [asdict(s) for s in back_to_back],
            "execution": [asdict(s) for s in execution],
            "throughput": {
                label: {**asdict(rate), "per_s": rate.per_s, "take_cycles_s": cycles}
                for label, (rate, cycles) in rates.items()
            },
            "checks": checks,
            "passed": passed,
        }
        Path(json_out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The emulator with real runpod worker processes: pickup, execution, jobs/s.",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--clients", type=int, default=None, help="client threads for jobs/s")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the benchmark, the emulator, its workers and the dev server at this niceness "
        "(negative needs root; other work on a shared machine then disturbs the figures less)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else DEFAULT
    if args.clients is not None:
        if args.clients < 1:
            parser.error("--clients must be positive")
        plan = Plan(**{**asdict(plan), "clients": args.clients})
    if args.nice:
        # Every process started from here on (emulator, workers, dev server) inherits it.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    try:
        with stop_on_signals():
            return run(plan, args.json)
    except BenchmarkError as exc:
        print(f"bench_worker: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_worker: interrupted; every process stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
