"""The emulator's throughput and memory, measured: `python benchmarks/bench_emulator.py`.

Throughput: wrk (pinned to one core) drives uvicorn (httptools, uvloop, one process, no access
log, pinned to the other core) at saturation, for GET /v2/ep/status/{id} of a COMPLETED job and
POST /v2/ep/run with the default probe input. The floor is a bare Starlette route on the same
server settings answering the very bytes the emulator answered (benchmarks/bare_app.py). Bare and
emulator are measured alternately, round by round, in the same run; the ratio is the median over
rounds of emulator / floor within a round. /run has a second floor, the store floor
(bare_app.create_store_app: a /run that keeps a record of each job and nothing more).
Saturated throughput is requests per second of server CPU (wrk's req/s is shown too; it drops
when anything else on the machine slows the load generator). Targets (restated after the first
round): /status >= 0.8 of the bare route, /run >= 0.8 of the store floor.

Memory: benchmarks/memory_retention.py runs 100,000 jobs through the service on a virtual clock
until they completed and expired; after/before for Python-allocated bytes (tracemalloc) and RSS.
Target: within 10%.

Figures only: not a test, and pytest does not collect it. Needs `wrk` and `taskset`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any

from harness import BenchmarkError, ServerProcess, WrkResult, run_wrk, write_lua_script

from runpod_testkit.probe_protocol import ProbeInput

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
LOAD_CPU = 0
SERVER_CPU = 1
CONNECTIONS = 16
ENDPOINT_ID = "ep"
RATIO_TARGET = 0.8
# What each operation's target compares the emulator with: an endpoint that remembers its jobs
# pays the store floor's cost per submission before it runs one, so /run is held to that floor.
REFERENCE = {"status": "bare", "run": "store"}
MEMORY_TOLERANCE = 0.10
RUN_BODY = json.dumps({"input": ProbeInput().to_input()}, separators=(",", ":")).encode()
OPERATIONS = {"status": "GET /status/{id}", "run": "POST /run"}
# (memory_retention.py mode, label, counts toward the verdict)
MEMORY_ROWS = (
    ("traced", "Python heap", True),
    ("rss-trimmed", "RSS, malloc_trim", True),
    ("rss", "RSS, raw", False),
)


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "wrk": (wrk.stdout or wrk.stderr).split(" [")[0].strip(),
        **{pkg: version(pkg) for pkg in ("uvicorn", "starlette", "httptools", "uvloop")},
    }


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchmarkError(
            f"missing {', '.join(missing)}: apt-get install -y wrk util-linux, then run again"
        )
    if len(os.sched_getaffinity(0)) < 2:
        raise BenchmarkError("needs 2 cores: one for wrk, one for the server")


# --- throughput ------------------------------------------------------------------------------


@dataclass
class Throughput:
    runs: dict[tuple[str, str], list[WrkResult]] = field(default_factory=dict)
    """(operation, server) -> one result per round."""

    def median(self, operation: str, server: str, metric: str) -> float:
        values: list[float] = [getattr(r, metric) for r in self.runs[operation, server]]
        return statistics.median(values)

    def ratio(
        self, operation: str, metric: str, server: str = "emulator", floor: str = "bare"
    ) -> float:
        """The median over rounds of server / floor within a round: the machine's speed drifts
        between rounds, and a ratio of medians from different rounds lets that drift decide."""
        pairs = zip(self.runs[operation, server], self.runs[operation, floor], strict=True)
        ratios: list[float] = [getattr(e, metric) / getattr(b, metric) for e, b in pairs]
        return statistics.median(ratios)

    def errors(self, operation: str) -> int:
        return sum(r.non_2xx + r.socket_errors for r in self.runs[operation, "emulator"])


def completed_job(emulator: ServerProcess, timeout_s: float = 20.0) -> tuple[str, bytes]:
    """Submit one probe job and wait (bounded) until /status reports it COMPLETED."""
    submitted = emulator.request("POST", f"/v2/{ENDPOINT_ID}/run", RUN_BODY)
    if submitted.status != 200:
        raise BenchmarkError(f"emulator /run answered {submitted.status}: {submitted.body!r}")
    job_id = json.loads(submitted.body)["id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = emulator.request("GET", f"/v2/{ENDPOINT_ID}/status/{job_id}")
        if status.status == 200 and json.loads(status.body)["status"] == "COMPLETED":
            return job_id, status.body
        time.sleep(0.05)  # the job waits out a cold start in the other process
    raise BenchmarkError(f"job {job_id} did not complete within {timeout_s} s")


def check_same_replies(bare: ServerProcess, emulator: ServerProcess, job_id: str) -> None:
    """The floor answers what the emulator answers: same status, header names, content type and
    bytes (for /run the same length: the emulator's job id differs per request)."""
    for method, path, body in (
        ("GET", f"/v2/{ENDPOINT_ID}/status/{job_id}", None),
        ("POST", f"/v2/{ENDPOINT_ID}/run", RUN_BODY),
    ):
        ours, floor = emulator.request(method, path, body), bare.request(method, path, body)
        shape = (ours.status, ours.header_names, ours.content_type)
        same_body = ours.body == floor.body or (
            method == "POST" and len(ours.body) == len(floor.body)
        )
        if shape != (floor.status, floor.header_names, floor.content_type) or not same_body:
            raise BenchmarkError(f"bare {method} {path} differs from the emulator's reply")


def measure_throughput(
    args: argparse.Namespace, workdir: Path, prefix: tuple[str, ...]
) -> tuple[Throughput, dict[str, Any]]:
    api_key = secrets.token_urlsafe(24)  # a throwaway key, never printed
    with ExitStack() as stack:
        emulator = stack.enter_context(
            ServerProcess("emulator", api_key, cpu=SERVER_CPU, prefix=prefix)
        )
        job_id, status_body = completed_job(emulator)
        run_body = emulator.request("POST", f"/v2/{ENDPOINT_ID}/run", RUN_BODY).body
        (workdir / "status.json").write_bytes(status_body)
        (workdir / "run.json").write_bytes(run_body)
        bodies = ["--status-body", str(workdir / "status.json")]
        bodies += ["--run-body", str(workdir / "run.json")]
        bare = stack.enter_context(
            ServerProcess("bare", api_key, *bodies, cpu=SERVER_CPU, prefix=prefix)
        )
        check_same_replies(bare, emulator, job_id)
        servers = {"bare": bare, "emulator": emulator}
        if "run" in args.only:
            store = stack.enter_context(
                ServerProcess("store", api_key, *bodies, cpu=SERVER_CPU, prefix=prefix)
            )
            check_same_replies(store, emulator, job_id)
            servers["store"] = store
        print(f"GET /status body ({len(status_body)} bytes): {status_body.decode()}")
        print(f"POST /run body ({len(run_body)} bytes): {run_body.decode()}", flush=True)
        paths = {"status": f"/v2/{ENDPOINT_ID}/status/{job_id}", "run": f"/v2/{ENDPOINT_ID}/run"}
        scripts = {
            "status": write_lua_script(workdir / "status.lua", "GET", api_key),
            "run": write_lua_script(workdir / "run.lua", "POST", api_key, RUN_BODY),
        }

        def load(server: str, operation: str, seconds: float) -> WrkResult:
            return run_wrk(
                servers[server],
                paths[operation],
                scripts[operation],
                seconds,
                cpu=LOAD_CPU,
                connections=CONNECTIONS,
                prefix=prefix,
            )

        operations = {op: OPERATIONS[op] for op in args.only}
        # The store floor is a /run floor only.
        measured = {op: [s for s in servers if s != "store" or op == "run"] for op in operations}
        for operation in operations:
            for server in measured[operation]:
                load(server, operation, args.warmup)
        throughput = Throughput()
        for index in range(args.rounds):
            # Alternate who goes first, so slow drift of the machine favours neither.
            for operation, label in operations.items():
                order = measured[operation] if index % 2 == 0 else measured[operation][::-1]
                for server in order:
                    result = load(server, operation, args.seconds)
                    throughput.runs.setdefault((operation, server), []).append(result)
                    flag = f"  {result.non_2xx} non-2xx!" if result.non_2xx else ""
                    print(
                        f"  round {index + 1}  {label:<17} {server:<8}"
                        f"{result.requests_per_s:>9,.0f} req/s  "
                        f"{result.requests_per_cpu_s:>9,.0f} req/CPU-s  "
                        f"server CPU {result.server_utilisation:4.0%}{flag}",
                        flush=True,
                    )
        health = json.loads(emulator.request("GET", f"/v2/{ENDPOINT_ID}/health").body)
        notes = {
            "jobs": health["jobs"],
            "rss_bytes": emulator.rss_bytes(),
            "server_tracebacks": emulator.tracebacks,
            "last_server_output": list(emulator.output)[-3:],
        }
    return throughput, notes


# --- memory --------------------------------------------------------------------------------


def measure_memory(jobs: int) -> dict[str, dict[str, int]]:
    """Each mode in a fresh interpreter: tracemalloc's bookkeeping would distort RSS."""
    results = {}
    for mode, _, _ in MEMORY_ROWS:
        completed = subprocess.run(
            [sys.executable, str(HERE / "memory_retention.py"), mode, "--jobs", str(jobs)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            raise BenchmarkError(f"memory_retention.py {mode}: {completed.stderr.strip()[-500:]}")
        results[mode] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


# --- report --------------------------------------------------------------------------------


def size(n: float) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:,.1f} KiB"
    return f"{n / (1024 * 1024):,.1f} MiB"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def throughput_lines(throughput: Throughput, checks: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"{'':<18}{'req/CPU-s (saturated)':^34}{'wrk req/s':^26}{'p99 ms':^14}".rstrip(),
        f"{'operation':<18}{'bare':>10}{'emulator':>10}{'ratio':>7}   {'bare':>8}{'emulator':>10}"
        f"{'ratio':>7}  {'bare':>6}{'emu':>7}  target (emulator / floor)",
    ]
    for operation, label in OPERATIONS.items():
        if (operation, "bare") not in throughput.runs:
            continue  # left out with --only
        reference = REFERENCE[operation]
        target_ratio = throughput.ratio(operation, "requests_per_cpu_s", "emulator", reference)
        errors = throughput.errors(operation)
        passed = target_ratio >= RATIO_TARGET and errors == 0
        lines.append(
            f"{label:<18}"
            f"{throughput.median(operation, 'bare', 'requests_per_cpu_s'):>10,.0f}"
            f"{throughput.median(operation, 'emulator', 'requests_per_cpu_s'):>10,.0f}"
            f"{throughput.ratio(operation, 'requests_per_cpu_s'):>7.2f}   "
            f"{throughput.median(operation, 'bare', 'requests_per_s'):>8,.0f}"
            f"{throughput.median(operation, 'emulator', 'requests_per_s'):>10,.0f}"
            f"{throughput.ratio(operation, 'requests_per_s'):>7.2f}  "
            f"{throughput.median(operation, 'bare', 'latency_p99_ms'):>6.1f}"
            f"{throughput.median(operation, 'emulator', 'latency_p99_ms'):>7.1f}  "
            f"{target_ratio:.2f} of {reference} >= {RATIO_TARGET} {verdict(passed)}"
            + (f" ({errors} error replies)" if errors else "")
        )
        checks.append(
            {
                "rule": f"{operation}: emulator/{reference} >= {RATIO_TARGET}, no errors",
                "value": target_ratio,
                "errors": errors,
                "passed": passed,
            }
        )
    if ("run", "store") in throughput.runs:
        store = throughput.median("run", "store", "requests_per_cpu_s")
        lines.append(
            f"(store floor, {OPERATIONS['run']}: {store:,.0f} req/CPU-s, "
            f"{throughput.ratio('run', 'requests_per_cpu_s', 'store'):.2f} of bare; the emulator "
            f"does {throughput.ratio('run', 'requests_per_cpu_s', 'emulator', 'store'):.2f} of "
            "it; for information)"
        )
    utilisation = min(r.server_utilisation for results in throughput.runs.values() for r in results)
    lines.append(f"(lowest server CPU use in any run: {utilisation:.0%}; near 100% = saturated)")
    return lines


def memory_lines(memory: dict[str, dict[str, int]], checks: list[dict[str, Any]]) -> list[str]:
    jobs = memory["traced"]["jobs"]
    lines = [
        f"{f'memory, {jobs:,} jobs':<22}{'before':>12}{'peak':>12}{'after':>12}"
        f"{'after/before':>14}  target"
    ]
    for mode, label, counts in MEMORY_ROWS:
        figures = memory[mode]
        ratio = figures["after"] / figures["before"]
        passed = ratio <= 1 + MEMORY_TOLERANCE
        lines.append(
            f"{label:<22}{size(figures['before']):>12}{size(figures['peak']):>12}"
            f"{size(figures['after']):>12}{ratio:>14.3f}  <= {1 + MEMORY_TOLERANCE:.2f} "
            + (verdict(passed) if counts else "(info: glibc keeps freed pages)")
        )
        if counts:
            checks.append(
                {
                    "rule": f"memory {mode}: after/before <= {1 + MEMORY_TOLERANCE:.2f}",
                    "value": ratio,
                    "passed": passed,
                }
            )
    traced = memory["traced"]
    lines.append(
        f"(jobs live at the peak {traced['jobs_at_peak']:,}, after expiry {traced['jobs_after']:,};"
        f" timed events left {traced['pending_events_after']:,})"
    )
    return lines


# --- main ----------------------------------------------------------------------------------


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT (even if inherited as ignored, as a background job's is) raise, so
    that every `finally` stops what it started."""

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


def run(args: argparse.Namespace) -> int:
    require_tools()
    info = machine_info()
    prefix = ("nice", "-n", str(args.nice)) if args.nice else ()
    settings = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "connections": CONNECTIONS,
        "nice": args.nice,
        "memory_jobs": args.jobs,
        "run_body": RUN_BODY.decode(),
    }
    summary: dict[str, Any] = {"machine": info, "settings": settings}
    checks: list[dict[str, Any]] = []
    lines = [
        f"machine: {info['nproc']} cores, {info['cpu_model']}; Python {info['python']}; "
        f"uvicorn {info['uvicorn']}, starlette {info['starlette']}, httptools "
        f"{info['httptools']}, uvloop {info['uvloop']}; {info['wrk']}",
    ]
    if not args.skip_http:
        with tempfile.TemporaryDirectory(prefix="bench-emulator-") as workdir:
            throughput, notes = measure_throughput(args, Path(workdir), prefix)
        lines += [
            f"load: wrk -t1 -c{CONNECTIONS} on cpu {LOAD_CPU}, server on cpu {SERVER_CPU}"
            f"{f', nice {args.nice}' if args.nice else ''}; {args.rounds} rounds x "
            f"{args.seconds:g} s alternating the servers; medians (ratios: median of the "
            "per-round ratios)",
            "",
            *throughput_lines(throughput, checks),
            f"(emulator after the load: {notes['jobs']['completed']:,} jobs completed and "
            f"retained, RSS {size(notes['rss_bytes'])}, {notes['server_tracebacks']} tracebacks "
            "logged)",
        ]
        if notes["server_tracebacks"]:
            lines.append(f"(last emulator output: {' | '.join(notes['last_server_output'])})")
        summary["throughput"] = {
            operation: {
                server: [asdict(r) for r in runs]
                for (measured_operation, server), runs in throughput.runs.items()
                if measured_operation == operation
            }
            | {
                "ratio_cpu": throughput.ratio(operation, "requests_per_cpu_s"),
                "ratio_wall": throughput.ratio(operation, "requests_per_s"),
            }
            for operation in OPERATIONS
            if (operation, "bare") in throughput.runs
        }
        summary["emulator_after_load"] = notes
    if not args.skip_memory:
        memory = measure_memory(args.jobs)
        lines += ["", *memory_lines(memory, checks)]
        summary["memory"] = memory
    passed = all(check["passed"] for check in checks)
    lines += ["", f"overall: {verdict(passed)}"]
    summary["checks"] = checks
    summary["passed"] = passed
    print("\n".join(["", *lines]))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Emulator throughput against a bare Starlette route, and memory retention.",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs for the memory check")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run wrk and the servers at this niceness (negative needs root; other work on a "
        "shared machine then disturbs the figures less)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(OPERATIONS),
        default=list(OPERATIONS),
        help="measure only these operations (throughput)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write every figure as JSON")
    parser.add_argument("--skip-http", action="store_true", help="memory check only")
    parser.add_argument("--skip-memory", action="store_true", help="throughput only")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.warmup <= 0 or args.jobs < 1:
        parser.error("--seconds, --rounds, --warmup and --jobs must be positive")
    try:
        with stop_on_signals():
            return run(args)
    except BenchmarkError as exc:
        print(f"bench_emulator: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_emulator: interrupted; every server stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
