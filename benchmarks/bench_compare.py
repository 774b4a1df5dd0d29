"""Time of `runpod-testkit compare` on the --job-stats-json files of two one-hour runs.

    python benchmarks/bench_compare.py [--jobs-per-s 100] [--repeat 5]

Builds two documents as a one-hour run at --jobs-per-s would leave them (every job with a
delayTime, executionTime, e2e and ttfc from a wide log-normal spread, 1 ms to minutes: the
widest histograms, the slowest case), writes them, and times what the command does: read
both files, decode the histograms, compare with a regression rule, render text, Markdown and
HTML. Prints the best and the median of --repeat runs. Target: under 1 s.
Not a test: figures go to the README with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from runpod_testkit.compare import compare, load_run
from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.summary import job_stats_document

METRICS = ("delayTime", "executionTime", "e2e", "ttfc")


def hour_document(jobs_per_s: float, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    stats = JobStats()
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
    run = {"host": "remote", "users": 50, "startedAt": start, "endedAt": start + 3600}
    return job_stats_document(stats, run=run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-per-s", type=float, default=100.0)
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
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            comparison = compare(load_run(paths[0]), load_run(paths[1]), ["e2e:p95:+10%"])
            comparison.format_text()
            comparison.to_markdown()
            comparison.to_html()
            times.append(time.perf_counter() - started)
    best, median = min(times), statistics.median(times)
    verdict = "met" if median < 1.0 else "NOT met"
    print(f"compare: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms")
    print(f"target < 1 s: {verdict}")


if __name__ == "__main__":
    main()
