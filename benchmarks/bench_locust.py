"""What the load suite costs Locust, measured: `python benchmarks/bench_locust.py`.

One Locust process (pinned to cpu 0) runs, in turn, against the same server (pinned to cpu 1):
- "suite": RunPollUser from loadtests/locustfile.py as a load run uses it: POST /run, then
  GET /status until the job is terminal, every answer parsed and validated against the schemas,
  every job counted in JobStats (the /health sampler off, so that only these requests go out);
- "bare": a FastHttpUser with no validation and no statistics polling GET /status of one
  existing job as fast as it can (benchmarks/locust_bare_poll.py): the target's reference;
- "runpoll": a bare FastHttpUser sending RunPollUser's requests and nothing else (it reads the
  id and the status): it tells what the request mix costs apart from the suite.
With --breakdown, three more variants add the suite's parts to "runpoll" one at a time (each
request through catch_response; each answer validated; each job counted in JobStats), to tell
what each costs (locust_bare_poll.py).
The server is by default a bare Starlette app on uvicorn (httptools, uvloop) answering with the
emulator's own bytes, a new job id in each /run answer (so every job's answers differ, as a real
endpoint's do, and none is validated from memory); with --polls-per-job N, /status answers a job
IN_PROGRESS N-1 times before COMPLETED. With --server emulator, the emulator itself serves.
Every variant runs the same users with no wait; the variants alternate round by round (the order
flips every round); the verdict is the median over rounds of suite / runpoll within a round.

Throughput is Locust's own count of requests over the whole seconds after a warm-up, per second
of Locust's CPU time in that window (sampled from /proc): on a cpu of its own, that is its
requests per second; unlike wall-clock req/s (shown too) it does not drop when other processes
share the cpu. Target (restated after the first round): suite / runpoll >= 0.85, the suite
against a bare user sending the same request mix; suite / bare is reported beside it.

Figures only: not a test; pytest does not collect it. Needs taskset (util-linux) and two cpus.
Exit status 0 on PASS, 1 on FAIL, 2 if it could not measure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from runpod_testkit.emulator.server import stop_process

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SUITE_LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
BARE_LOCUSTFILE = HERE / "locust_bare_poll.py"
LOAD_CPU = 0
SERVER_CPU = 1
ENDPOINT_ID = "bench"
TARGET = 0.85
WARMUP_S = 2
VARIANTS = ("suite", "bare", "runpoll")
BREAKDOWN = ("catch", "validate", "stats")
"""--breakdown: RunPollUser's requests plus the suite's parts one at a time (locust_bare_poll)."""
USER_CLASSES = {
    "bare": "BarePollUser",
    "runpoll": "BareRunPollUser",
    "catch": "CatchingRunPollUser",
    "validate": "ValidatingRunPollUser",
    "stats": "CountingRunPollUser",
}
MARK = "JOB-ID-GOES-HERE"
PLACEHOLDER_AUTH = {"Authorization": "Bearer no-key-set"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(RuntimeError):
    """The benchmark could not measure (a tool missing, a server not answering, a failure)."""


# --------------------------------------------------------------------------- the bare server


def serve_bare(setup_file: Path) -> None:
    """`--serve FILE`: the bare server (one process, uvicorn with httptools and uvloop); prints
    `listening on 127.0.0.1:PORT` once bound.

    It answers with the emulator's own bytes (FILE) with a job id of its own put in: /run a new
    id every time, so that every job's answers differ as a real endpoint's do; /status of a job
    "IN_PROGRESS" for its first polls_per_job - 1 polls, then "COMPLETED"."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    setup = json.loads(setup_file.read_text())
    polls_per_job: int = setup["polls_per_job"]
    templates = {name: text.encode() for name, text in setup["templates"].items()}
    mark = MARK.encode()
    pending: dict[bytes, int] = {}  # job id -> IN_PROGRESS answers still to give

    def body(name: str, job_id: bytes) -> Response:
        return Response(templates[name].replace(mark, job_id), media_type="application/json")

    async def run(request: Request) -> Response:
        await request.body()
        job_id = f"{uuid.uuid4()}-u1".encode()
        if polls_per_job > 1:
            pending[job_id] = polls_per_job - 1
        return body("run", job_id)

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"].encode()
        left = pending.pop(job_id, 0)
        if left:
            if left > 1:
                pending[job_id] = left - 1
            return body("in_progress", job_id)
        return body("status", job_id)

    async def cancel(request: Request) -> Response:
        await request.body()
        pending.pop(request.path_params["job_id"].encode(), None)
        return body("cancel", request.path_params["job_id"].encode())

    async def health(_request: Request) -> Response:
        return body("health", b"")

    prefix = "/v2/{endpoint_id}"
    app = Starlette(
        routes=[
            Route(f"{prefix}/run", run, methods=["POST"]),
            Route(f"{prefix}/status/{{job_id}}", status, methods=["GET"]),
            Route(f"{prefix}/cancel/{{job_id}}", cancel, methods=["POST"]),
            Route(f"{prefix}/health", health, methods=["GET"]),
        ]
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])


def capture_templates() -> dict[str, str]:
    """What the emulator answers to /run, /status of a running and of a completed job,
    /cancel and /health, with each job id replaced by MARK; each checked against its schema."""
    from runpod_testkit.emulator.server import EmulatorProcess
    from runpod_testkit.schemas import ContractValidator

    with EmulatorProcess(["--cold-start-ms", "0"]) as emulator:
        url = f"{emulator.base_url}/{ENDPOINT_ID}"
        with httpx.Client(headers=PLACEHOLDER_AUTH, timeout=10) as client:
            run = client.post(f"{url}/run", json={"input": {"sleep_ms": 0}})
            job_id = run.json()["id"]
            completed = wait_status(client, url, job_id, "COMPLETED")
            long_id = client.post(f"{url}/run", json={"input": {"sleep_ms": 60_000}}).json()["id"]
            running = wait_status(client, url, long_id, "IN_PROGRESS")
            cancel = client.post(f"{url}/cancel/{long_id}")
            health = client.get(f"{url}/health")
    templates = {
        "run": run.text.replace(job_id, MARK),
        "status": completed.text.replace(job_id, MARK),
        "in_progress": running.text.replace(long_id, MARK),
        "cancel": cancel.text.replace(long_id, MARK),
        "health": health.text,
    }
    validator = ContractValidator()
    sample_id = f"{uuid.uuid4()}-u1"
    for name, text in templates.items():
        operation = "status" if name == "in_progress" else name
        result = validator.check_response(operation, 200, json.loads(text.replace(MARK, sample_id)))
        if result.violations:
            raise BenchmarkError(f"the emulator's {name} answer breaks its schema: {result}")
    return templates


def wait_status(client: httpx.Client, url: str, job_id: str, status: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = client.get(f"{url}/status/{job_id}")
        if reply.json().get("status") == status:
            return reply
        time.sleep(0.02)
    raise BenchmarkError(f"job {job_id} was not {status} on the emulator within 30 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Server:
    endpoint_url: str
    status_path: str
    pid: int


class CpuSampler:
    """Samples a process's CPU time against the wall clock, to tell how much CPU it used in
    any window of the run (Locust counts requests per epoch second)."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), cpu_seconds(self.pid)))
            except (OSError, ValueError, IndexError):
                return  # the process is gone
            self._stop.wait(self.interval_s)

    def between(self, start: float, end: float) -> float:
        """CPU seconds used between two epoch times (linear between samples)."""
        return self._at(end) - self._at(start)

    def _at(self, when: float) -> float:
        samples = self.samples
        if not samples or when < samples[0][0] or when > samples[-1][0]:
            raise BenchmarkError("no CPU samples cover the measured window")
        for (t0, c0), (t1, c1) in itertools.pairwise(samples):
            if t0 <= when <= t1:
                return c0 if t1 == t0 else c0 + (c1 - c0) * (when - t0) / (t1 - t0)
        return samples[-1][1]


@contextmanager
def bare_server(workdir: Path, polls_per_job: int) -> Iterator[Server]:
    setup_file = workdir / "server.json"
    setup = {"templates": capture_templates(), "polls_per_job": polls_per_job}
    setup_file.write_text(json.dumps(setup))
    command = ["taskset", "-c", str(SERVER_CPU), sys.executable, __file__, "--serve"]
    process = subprocess.Popen(
        [*command, str(setup_file)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = read_line(process.stdout, 30)
        if not line.startswith("listening on 127.0.0.1:"):
            raise BenchmarkError(f"the bare server did not start: {line!r}")
        base = f"http://127.0.0.1:{line.rsplit(':', 1)[1].strip()}/v2"
        job_id = f"{uuid.uuid4()}-u1"  # any id: the bare server knows every job as COMPLETED
        server = Server(f"{base}/{ENDPOINT_ID}", f"/v2/{ENDPOINT_ID}/status/{job_id}", process.pid)
        wait_serving(server)
        yield server
    finally:
        stop(process)


@contextmanager
def emulator_server() -> Iterator[Server]:
    from runpod_testkit.emulator.server import EmulatorProcess

    # Warm workers and no cold start: the jobs themselves take no time.
    args = ["--workers-min", "4", "--workers-max", "4", "--cold-start-ms", "0"]
    with EmulatorProcess(args) as emulator:
        assert emulator.process is not None
        pid = emulator.process.pid
        subprocess.run(["taskset", "-a", "-p", "-c", str(SERVER_CPU), str(pid)], check=True,
                       capture_output=True)  # fmt: skip
        url = f"{emulator.base_url}/{ENDPOINT_ID}"
        with httpx.Client(headers=PLACEHOLDER_AUTH, timeout=10) as client:
            job_id = client.post(f"{url}/run", json={"input": {"sleep_ms": 0}}).json()["id"]
            wait_status(client, url, job_id, "COMPLETED")
        yield Server(url, f"/v2/{ENDPOINT_ID}/status/{job_id}", pid)


def read_line(stream: Any, timeout_s: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not found:
        raise BenchmarkError(f"the server printed nothing in {timeout_s} s")
    return found[0]


def wait_serving(server: Server) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{server.endpoint_url}/health", headers=PLACEHOLDER_AUTH, timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise BenchmarkError("the server is not answering") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[Any]) -> None:
    stop_process(process)
    if process.stdout is not None:
        process.stdout.close()


# --------------------------------------------------------------------------- Locust runs


@dataclass
class RunResult:
    variant: str
    round: int
    requests_per_s: float
    """Requests per second of wall time in the measured window."""
    requests_per_cpu_s: float
    """Requests per second of Locust CPU time in the same window: what one busy core does."""
    requests: int
    locust_cpu_share: float
    """Locust's CPU time over wall time in the window: near 1, Locust had its core to itself."""
    server_cpu_share: float
    """The server's, in the same window: well below 1, the server was not the limit."""


def locust_command(variant: str, server: Server, users: int, seconds: int, out: Path) -> list[str]:
    common = [
        "--headless", "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s",
        "--only-summary", "--json-file", str(out), "--stop-timeout", "10",
    ]  # fmt: skip
    locust = ["taskset", "-c", str(LOAD_CPU), sys.executable, "-m", "locust"]
    if variant == "suite":
        return [
            *locust, "-f", str(SUITE_LOCUSTFILE), *common, "--host", server.endpoint_url,
            "--poll-interval", "0.001", "--health-interval", "0",
            "--probe-input", '{"sleep_ms": 0}', "RunPollUser",
        ]  # fmt: skip
    # The bare users name whole paths; the breakdown users, like the suite, the endpoint's URL.
    host = server.endpoint_url if variant in BREAKDOWN else server.endpoint_url.rsplit("/v2/", 1)[0]
    return [*locust, "-f", str(BARE_LOCUSTFILE), *common, "--host", host, USER_CLASSES[variant]]


def run_locust(
    variant: str, round_no: int, server: Server, *, users: int, seconds: int, workdir: Path
) -> RunResult:
    out = workdir / f"{variant}-{round_no}"
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    env["BENCH_STATUS_PATH"] = server.status_path
    env["BENCH_ENDPOINT_PATH"] = "/v2" + server.endpoint_url.rsplit("/v2", 1)[1]
    log_path = workdir / f"{variant}-{round_no}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            locust_command(variant, server, users, seconds, out),
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with CpuSampler(process.pid) as locust_cpu, CpuSampler(server.pid) as server_cpu:
                code = process.wait(seconds + 90)
        finally:
            stop(process)
    entries = json.loads(out.with_suffix(".json").read_text())
    failures = sum(entry["num_failures"] for entry in entries)
    if code != 0 or failures:
        tail = log_path.read_text()[-2000:]
        raise BenchmarkError(f"{variant} run {round_no}: exit {code}, {failures} failures\n{tail}")
    start, end, requests = steady_window(entries)
    wall = end - start
    locust_cpu_s = locust_cpu.between(start, end)
    return RunResult(
        variant=variant,
        round=round_no,
        requests_per_s=requests / wall,
        requests_per_cpu_s=requests / locust_cpu_s,
        requests=sum(entry["num_requests"] for entry in entries),
        locust_cpu_share=locust_cpu_s / wall,
        server_cpu_share=server_cpu.between(start, end) / wall,
    )


def steady_window(entries: list[dict[str, Any]]) -> tuple[float, float, int]:
    """(start, end, requests) over the whole seconds of the run after WARMUP_S (the first and
    the last second are partial)."""
    per_second: dict[int, int] = {}
    for entry in entries:
        for second, count in entry["num_reqs_per_sec"].items():
            per_second[int(second)] = per_second.get(int(second), 0) + count
    if not per_second:
        raise BenchmarkError("Locust recorded no request")
    first, last = min(per_second) + WARMUP_S, max(per_second) - 1
    if last <= first:
        raise BenchmarkError("the run is too short to measure; give more --seconds")
    return float(first), float(last), sum(per_second.get(s, 0) for s in range(first, last))


# --------------------------------------------------------------------------- report


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{name: version(name) for name in ("locust", "gevent", "geventhttpclient", "uvicorn")},
    }


def summarise(results: list[RunResult]) -> dict[str, Any]:
    variants = [v for v in (*VARIANTS, *BREAKDOWN) if any(r.variant == v for r in results)]

    def medians(field: str) -> dict[str, float]:
        return {
            variant: statistics.median(getattr(r, field) for r in results if r.variant == variant)
            for variant in variants
        }

    per_cpu, per_wall = medians("requests_per_cpu_s"), medians("requests_per_s")
    # The verdict compares suite and bare within each round (minutes apart at most), then takes
    # the median: the machine's speed drifts between rounds, and a ratio of medians taken from
    # different rounds lets that drift decide.
    by_round: dict[int, dict[str, float]] = {}
    for r in results:
        by_round.setdefault(r.round, {})[r.variant] = r.requests_per_cpu_s
    round_ratios = [runs["suite"] / runs["runpoll"] for _, runs in sorted(by_round.items())]
    ratio = statistics.median(round_ratios)
    # Every variant the same way: the median over rounds of variant / bare within a round.
    to_bare = {
        variant: statistics.median(runs[variant] / runs["bare"] for runs in by_round.values())
        for variant in variants
    }
    return {
        "median_requests_per_cpu_s": per_cpu,
        "median_requests_per_s": per_wall,
        "round_ratios": round_ratios,
        "ratio": ratio,
        "ratio_of_medians": per_cpu["suite"] / per_cpu["runpoll"],
        "ratio_wall_clock": per_wall["suite"] / per_wall["runpoll"],
        "ratio_to_bare_poller": to_bare["suite"],
        "ratio_request_mix": to_bare["runpoll"],
        "ratios_to_bare": to_bare,
        "passed": ratio >= TARGET,
    }


_LABELS = {
    "suite": "suite    RunPollUser, validation and job statistics",
    "runpoll": "runpoll  bare FastHttpUser, RunPollUser's requests (/run, /status)",
    "bare": "bare     bare FastHttpUser polling /status of one job",
    "catch": "catch    runpoll, each request through catch_response",
    "validate": "validate catch, and each answer judged against the contract",
    "stats": "stats    validate, and each job counted in JobStats (no tracking)",
}


def print_report(
    machine: dict[str, Any],
    settings: dict[str, Any],
    results: list[RunResult],
    summary: dict[str, Any],
) -> None:
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()))
    print("settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()))
    print()
    print(f"{'round':>5}  {'variant':<7}  {'req/s':>7}  {'req/cpu-s':>9}  {'locust cpu':>10}  "
          f"{'server cpu':>10}  {'requests':>8}")  # fmt: skip
    for r in results:
        print(f"{r.round:>5}  {r.variant:<7}  {r.requests_per_s:>7.0f}  "
              f"{r.requests_per_cpu_s:>9.0f}  {r.locust_cpu_share:>10.0%}  "
              f"{r.server_cpu_share:>10.0%}  {r.requests:>8}")  # fmt: skip
    cpu, wall = summary["median_requests_per_cpu_s"], summary["median_requests_per_s"]
    print()
    print(f"{'medians':<70}  {'req/cpu-s':>9}  {'req/s':>7}")
    for variant in ("suite", *BREAKDOWN[::-1], "runpoll", "bare"):
        if variant in cpu:
            print(f"{_LABELS[variant]:<70}  {cpu[variant]:>9.0f}  {wall[variant]:>7.0f}")
    print()
    rounds = ", ".join(f"{value:.3f}" for value in summary["round_ratios"])
    print(f"suite / runpoll per round: {rounds}; median {summary['ratio']:.3f} per Locust "
          f"cpu-second (ratio of the medians above: {summary['ratio_of_medians']:.3f}; "
          f"per wall-clock second: {summary['ratio_wall_clock']:.3f})")  # fmt: skip
    print(f"runpoll / bare: {summary['ratio_request_mix']:.3f} (the request mix alone); suite / "
          f"bare: {summary['ratio_to_bare_poller']:.3f} (medians of per-round ratios)")  # fmt: skip
    parts = [v for v in BREAKDOWN if v in summary["ratios_to_bare"]]
    if parts:
        ratios = ", ".join(f"{v} {summary['ratios_to_bare'][v]:.3f}" for v in parts)
        print(f"breakdown, each / bare (median of per-round ratios): {ratios}")
    if min(r.locust_cpu_share for r in results) < 0.9:
        print("note: Locust did not always have its cpu to itself (other processes ran there);"
              " req per cpu-second is what it does on a cpu of its own")  # fmt: skip
    verdict = "PASS" if summary["passed"] else "FAIL"
    print(f"{verdict}  suite / runpoll = {summary['ratio']:.3f} (target >= {TARGET})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=32, help="users of each run (32)")
    parser.add_argument("--seconds", type=int, default=12, help="length of each run (12)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each variant (5)")
    parser.add_argument("--server", choices=["bare", "emulator"], default="bare")
    parser.add_argument(
        "--polls-per-job",
        type=int,
        default=1,
        help="bare server: /status answers IN_PROGRESS this many times minus one before "
        "COMPLETED (1: every answer is new, the costliest case for the suite)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run RunPollUser's requests with the suite's parts added one at a time "
        "(catch_response, contract validation, job statistics): what each costs",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_bare(args.serve)
        return 0
    # A kill (SIGTERM) unwinds like Ctrl-C does: the server and a Locust run are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("taskset") is None:
        print("taskset is missing (util-linux): it pins Locust and the server", file=sys.stderr)
        return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("two cpus are needed: one for Locust, one for the server", file=sys.stderr)
        return 2
    settings = {
        "server": args.server,
        "polls_per_job": args.polls_per_job if args.server == "bare" else "n/a",
        "users": args.users,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "breakdown": args.breakdown,
        "locust_cpu": LOAD_CPU,
        "server_cpu": SERVER_CPU,
    }
    results: list[RunResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-locust-") as temp:
            workdir = Path(temp)
            context = (
                bare_server(workdir, args.polls_per_job)
                if args.server == "bare"
                else emulator_server()
            )
            with context as server:
                variants = (*VARIANTS, *BREAKDOWN) if args.breakdown else VARIANTS
                for round_no in range(1, args.rounds + 1):
                    order = variants if round_no % 2 else variants[::-1]
                    for variant in order:
                        result = run_locust(
                            variant,
                            round_no,
                            server,
                            users=args.users,
                            seconds=args.seconds,
                            workdir=workdir,
                        )
                        results.append(result)
                        print(f"round {round_no} {variant}: {result.requests_per_s:.0f} req/s, "
                              f"{result.requests_per_cpu_s:.0f} req/cpu-s",
                              file=sys.stderr, flush=True)  # fmt: skip
    except (BenchmarkError, OSError, subprocess.SubprocessError, httpx.HTTPError) as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    machine = machine_info()
    summary = summarise(results)
    print_report(machine, settings, results, summary)
    if args.json:
        document = {
            "machine": machine,
            "settings": settings,
            "runs": [asdict(r) for r in results],
            **summary,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
