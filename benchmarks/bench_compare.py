"""Time of `runpod-testkit compare` on the --job-stats-json files of two one-hour runs.

    python benchmarks/bench_compare.py [--jobs-per-s 10] [--repeat 5]

Builds two documents as a one-hour run at --jobs-per-s would leave them, by feeding a JobStats
(every job with a delayTime, executionTime, e2e and ttfc from a wide log-normal spread, 1 ms to
minutes: the widest histograms, the slowest case; an --slo counted per window; a /health sample
every second), with the run's "slo" (and "overTime"), "cost" and "coldStarts" objects, writes
them, and times what the command does, twice: in-process (read both files, decode the
histograms, compare with a regression rule, render text, Markdown and HTML), and as the command
`python -m runpod_testkit compare A B --threshold ... --markdown FILE --html FILE` (wall time,
interpreter start and imports included; the interpreter's start with the command's imports is
timed apart).
Prints the best and the median of --repeat runs of each. Target: under 1 s.
Not a test: figures go to the README with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runpod_testkit.coldstarts import count_cold_starts
from runpod_testkit.compare import compare, load_run
from runpod_testkit.cost import estimate_cost
from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.summary import job_stats_document
from runpod_testkit.slo import Slo, slo_series

METRICS = ("delayTime", "executionTime", "e2e", "ttfc")


def hour_document(jobs_per_s: float, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    stats = JobStats()
    stats.slo = Slo(["e2e<5s", "delayTime<1s"])
    jobs = int(jobs_per_s * 3600)
    start = 1_700_000_000.0
    for i in range(jobs):
        at = start + i / jobs_per_s
        stats.record_submitted(at=at)
        stats.record_terminal(
            "COMPLETED",
            delay_time_ms=rng.lognormvariate(5, 2),
            execution_time_ms=rng.lognormvariate(7, 1.5),
            e2e_ms=rng.lognormvariate(7.5, 1.5),
            ttfc_ms=rng.lognormvariate(6, 1.5),
            at=at,
        )
    for second in range(3601):  # 4 workers, one restarting (cold) each minute
        starting = 1 if second % 60 < 10 else 0
        workers = {"initializing": starting, "running": 4 - starting, "idle": 0}
        stats.record_health(
            {"jobs": {"inQueue": starting, "inProgress": 4 - starting}, "workers": workers},
            at=start + second,
        )
    run = {"host": "remote", "users": 50, "startedAt": start, "endedAt": start + 3600}
    samples = stats.health_samples()
    cost = estimate_cost(samples, completed_jobs=jobs, price_per_s=0.00076, duration_s=3600)
    cold = count_cold_starts(samples, exact=None)
    assert cost is not None
    assert cold is not None
    extra = {
        "slo": {**(stats.slo_summary(3600) or {}), "overTime": slo_series(stats)},
        "cost": cost.to_json(),
        "coldStarts": cold.to_json(),
    }
    return job_stats_document(stats, run=run, extra=extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-per-s", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for seed in (1, 2):
            path = Path(folder) / f"run{seed}.json"
            path.write_text(json.dumps(hour_document(args.jobs_per_s, seed)), encoding="utf-8")
            paths.append(path)
        sizes = ", ".join(f"{path.stat().st_size / 1024:.1f} KiB" for path in paths)
        print(f"two one-hour runs of {args.jobs_per_s * 3600:,.0f} jobs each; files {sizes}")
        times, cpu_times = [], []
        for _ in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            comparison = compare(load_run(paths[0]), load_run(paths[1]), ["e2e:p95:+10%"])
            comparison.format_text()
            comparison.to_markdown()
            comparison.to_html()
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        command = [
            sys.executable, "-m", "runpod_testkit", "compare", str(paths[0]), str(paths[1]),
            "--threshold", "e2e:p95:+10%", "--markdown", str(Path(folder) / "compare.md"),
            "--html", str(Path(folder) / "compare.html"),
        ]  # fmt: skip
        # As installed: pip writes the modules' bytecode, so a start reads it rather than
        # compiling the sources (an environment with PYTHONDONTWRITEBYTECODE set compiles the
        # package anew at every start). The cache goes to the temporary folder; one untimed
        # run fills it.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        _timed(command, env)
        command_runs = [_timed(command, env) for _ in range(args.repeat)]
        # What the command imports before it reads a file: the CLI and the compare parser.
        start_up = "from runpod_testkit.cli import build_parser; build_parser(only='compare')"
        import_runs = [_timed([sys.executable, "-c", start_up], env) for _ in range(args.repeat)]
        uncached = [_timed(command) for _ in range(args.repeat)]
    print(f"load average while measured: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    verdicts = []
    for label, figures in (
        ("in-process compare, wall", times),
        ("in-process compare, CPU", cpu_times),
        ("the command, wall", [wall for wall, _ in command_runs]),
        ("the command, CPU", [cpu for _, cpu in command_runs]),
        ("  interpreter start + import alone, wall", [wall for wall, _ in import_runs]),
        ("  interpreter start + import alone, CPU", [cpu for _, cpu in import_runs]),
        ("the command without bytecode cache (as run here), wall", [w for w, _ in uncached]),
        ("the command without bytecode cache (as run here), CPU", [c for _, c in uncached]),
    ):
        best, median = min(figures), statistics.median(figures)
        print(f"{label}: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms")
        verdicts.append(median)
    in_process, as_command = verdicts[0], verdicts[2]
    for label, median in (("in-process", in_process), ("as a command", as_command)):
        print(f"target < 1 s wall {label}: {'met' if median < 1.0 else 'NOT met'}")


def _timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `command` (the child's user + system time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # The exit status says regression or not: either is a finished comparison here.
    subprocess.run(command, check=False, capture_output=True, timeout=120, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


if __name__ == "__main__":
    main()
