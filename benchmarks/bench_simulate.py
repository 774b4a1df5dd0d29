"""Time of `runpod-testkit simulate`: one simulated hour, and a 50-setting sweep of it.

    nice python benchmarks/bench_simulate.py [--rate 10] [--hours 1] [--jobs 2] [--repeat 3]

The traffic: Poisson arrivals at --rate jobs/s for --hours (36,000 jobs at the defaults), each
job 1.5 s, on an endpoint of up to 20 workers (1 s cold start, 5 s idle timeout, queue-delay
scaler at 4 s). workers-max caps the workers up at once (the run prints the peak from its
/health samples); the idle timeout retires workers and the scaler starts others, so more than
20 are started over the hour. Times, as the command does them:
  one run    the model on the virtual clock with full job statistics (histograms, time series,
             /health samples) and the cost; target under 2 s of wall time
  sweep      50 settings (--workers-max 11..20 x --idle-timeout-s 5,15,30,60,120) in --jobs
             processes, each a run keeping only what a sweep row needs; target under 1 minute
Prints the best and the median of --repeat single runs (wall, and CPU: this machine is shared,
so CPU seconds are the steadier figure) and one sweep (wall, and its processes' CPU seconds).
Not a test: figures go to the README with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from typing import Any

from runpod_testkit.simulate.engine import EndpointSettings, simulate
from runpod_testkit.simulate.inputs import poisson_arrivals, sample_durations
from runpod_testkit.simulate.sweep import run_sweep, sweep_settings
from runpod_testkit.slo import Slo

BASE = EndpointSettings(workers_max=20, cold_start_s=1.0, idle_timeout_s=5.0)
SWEEP: dict[str, list[Any]] = {
    "workers_max": list(range(11, 21)),
    "idle_timeout_s": [5.0, 15.0, 30.0, 60.0, 120.0],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2, help="sweep processes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sweep", action="store_true", help="time the single run only")
    args = parser.parse_args()
    span_s = args.hours * 3600
    arrivals = poisson_arrivals(args.rate, span_s, seed=args.seed)
    durations = sample_durations("1.5", len(arrivals))
    slo = Slo(["e2e<10s"])
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"traffic: {len(arrivals)} jobs over {span_s:.0f} s ({args.rate:g} jobs/s), 1.5 s each")
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(args.repeat):
        started, cpu = time.perf_counter(), time.process_time()
        result = simulate(arrivals, durations, BASE, duration_s=span_s, seed=args.seed, slo=slo)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    stats = result.stats
    # workers-max bounds the workers up at once; over the hour the idle timeout retires workers
    # and the scaler starts new ones, so more than workers-max are started in all.
    peak = max(sample.worker_count for sample in stats.health_samples())
    print(
        f"one run: best {min(walls):.2f} s, median {statistics.median(walls):.2f} s wall "
        f"(target < 2 s), best {min(cpus):.2f} s CPU; {stats.terminal_count} jobs, delayTime p95 "
        f"{stats.percentile('delayTime', 95)} ms, {result.worker_seconds:.0f} worker-seconds; "
        f"workers-max {BASE.workers_max}: at most {peak} up at once (/health each second), "
        f"{result.workers_started} started over the run; load average {os.getloadavg()[0]:.2f}"
    )
    if args.no_sweep:
        return
    settings = sweep_settings(BASE, dict(SWEEP))
    started = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = run_sweep(
        arrivals,
        durations,
        settings,
        duration_s=span_s,
        seed=args.seed,
        slo=slo,
        jobs=args.jobs,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    print(
        f"sweep: {len(rows)} settings in {wall:.1f} s wall with {args.jobs} processes "
        f"(target < 60 s; {wall / len(rows):.2f} s per setting; {child_cpu:.1f} CPU-seconds "
        f"in the processes, {child_cpu / len(rows):.2f} per setting); load average "
        f"{os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
