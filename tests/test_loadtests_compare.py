"""End-to-end tests of comparing load runs: real headless Locust runs against the embedded
emulator, then `runpod-testkit compare` on their --job-stats-json files, and --baseline.

Four runs go side by side (one batch, so they share the machine's load): two with the same
settings (4 warm workers), one with a single worker (a regression: jobs queue behind it), and
one with fewer users (not comparable). Each runs 8 s of 4 RunPollUsers on 100 ms jobs.
Everything talks to 127.0.0.1; every process and wait is bounded, and a run still going at the
bound is killed with its process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runpod_testkit.compare import compare as compare_runs
from runpod_testkit.compare import load_run
from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.runinfo import probe_input_digest
from runpod_testkit.loadtest.settings import parse_probe_input
from runpod_testkit.loadtest.summary import job_stats_document
from tests.test_loadtests import assert_key_never_shown, environment, locust_command

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 60
PROBE_INPUT = '{"sleep_ms": 100}'
RULES = ("delayTime:p95:+50%", "e2e:p50:+20%")


def common(users: int, workers: int) -> tuple[str, ...]:
    return (
        "--headless", "-u", str(users), "-r", str(users), "--run-time", "8s",
        "--probe-input", PROBE_INPUT, "--poll-interval", "0.05", "--health-interval", "0.5",
        "--emulator-workers-min", str(workers), "--emulator-workers-max", str(workers),
        "--emulator-cold-start-ms", "100", "--slo", "e2e<5s", "RunPollUser",
    )  # fmt: skip


@dataclass
class Finished:
    returncode: int
    output: str
    stats: Path


@dataclass
class Runs:
    fast: Finished
    fast_again: Finished
    slow: Finished
    fewer_users: Finished
    folder: Path


def fast_baseline(path: Path, users: int) -> Path:
    """A baseline as a run of `users` RunPollUsers with no queueing would leave it: the same
    workload settings as the runs here, delayTime 0-2 ms."""
    stats = JobStats()
    for i in range(300):
        stats.record_submitted()
        stats.record_terminal("COMPLETED", delay_time_ms=i % 3, execution_time_ms=100, e2e_ms=130)
    run = {
        "host": "embedded",
        "users": users,
        "spawnRate": float(users),
        "arrivalRate": 0.0,
        "maxInFlight": None,
        "userClasses": ["RunPollUser"],
        "probeInput": probe_input_digest(parse_probe_input(PROBE_INPUT)),
    }
    path.write_text(json.dumps(job_stats_document(stats, run=run)), encoding="utf-8")
    return path


def start(folder: Path, name: str, *args: str) -> tuple[subprocess.Popen[str], Path, Path]:
    stats, out = folder / f"{name}.json", folder / f"{name}.out"
    with out.open("w", encoding="utf-8") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen(
            locust_command(*args, "--job-stats-json", str(stats)),
            cwd=folder,
            env=environment(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: killed whole if it overruns
        )
    return process, stats, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp("compare")
    baseline_4 = fast_baseline(folder / "baseline-4-users.json", 4)
    started = {
        "fast": start(folder, "fast", *common(4, 4), "--gpu-price-per-s", "0.0004"),
        "fast_again": start(folder, "fast_again", *common(4, 4)),
        "slow": start(
            folder,
            "slow",
            *common(4, 1),
            "--job-stats-html",
            str(folder / "slow.html"),
            "--baseline",
            str(baseline_4),
            *(item for rule in RULES for item in ("--regression", rule)),
        ),
        "fewer_users": start(
            folder,
            "fewer_users",
            *common(2, 4),
            "--baseline",
            str(baseline_4),
            "--regression",
            RULES[0],
        ),
    }
    finished: dict[str, Finished] = {}
    try:
        for name, (process, stats, out) in started.items():
            returncode = process.wait(RUN_TIMEOUT_S)
            finished[name] = Finished(returncode, out.read_text(encoding="utf-8"), stats)
        yield Runs(**finished, folder=folder)
    finally:
        for process, _, _ in started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def compare_command(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runpod_testkit", "compare", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def rule_args() -> list[str]:
    return [item for rule in RULES for item in ("--threshold", rule)]


def explain(result: Finished | subprocess.CompletedProcess[str]) -> str:
    if isinstance(result, Finished):
        return f"exit {result.returncode}\n{result.output[-5000:]}"
    return f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"


def document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_runs_write_their_settings(runs: Runs) -> None:
    assert runs.fast.returncode == 0, explain(runs.fast)
    run = document(runs.fast.stats)["run"]
    assert run["host"] == "embedded"
    assert (run["users"], run["spawnRate"], run["arrivalRate"]) == (4, 4.0, 0.0)
    assert run["userClasses"] == ["RunPollUser"]
    assert run["probeInput"] == probe_input_digest(parse_probe_input(PROBE_INPUT))
    assert run["emulator"]["workersMax"] == 4
    assert run["versions"]["locust"]
    assert 7 <= run["endedAt"] - run["startedAt"] <= 30
    assert document(runs.slow.stats)["run"]["emulator"]["workersMax"] == 1
    assert_key_never_shown(runs.folder, runs.fast.output)


def test_cost_of_four_warm_workers_is_four_worker_seconds_a_second(runs: Runs) -> None:
    """workers-min = workers-max = 4: the emulator holds exactly four workers all along, so
    the true worker-seconds over the sampled span are 4 x the span."""
    assert runs.fast.returncode == 0, explain(runs.fast)
    saved = document(runs.fast.stats)
    cost = saved["cost"]
    assert cost["samples"] >= 6  # about one a second (the health series' window)
    assert cost["peakWorkers"] == 4
    assert cost["workerSeconds"] == pytest.approx(4 * cost["spanS"], abs=0.01)
    assert cost["completedJobs"] == saved["jobs"]["COMPLETED"]
    # Priced: the emulator's billed seconds (each warm worker's whole life, rounded up).
    assert cost["emulator"]["billedSeconds"] >= 4 * cost["spanS"]
    assert cost["dollars"] == pytest.approx(cost["emulator"]["billedSeconds"] * 0.0004)
    assert cost["dollarsPer1000Jobs"] == pytest.approx(
        cost["dollars"] / cost["completedJobs"] * 1000, rel=1e-3
    )
    assert "worker-seconds, peak 4 workers" in runs.fast.output
    assert "$" not in runs.fast_again.output.split("Job statistics (runpod-testkit)")[1]


def test_compare_finds_the_single_worker_run_a_regression(runs: Runs) -> None:
    assert runs.fast.returncode == 0, explain(runs.fast)
    result = compare_command(runs.fast.stats, runs.slow.stats, *rule_args())
    assert result.returncode == 4, explain(result)
    assert "REGRESSION  delayTime:p95:+50%" in result.stdout
    assert "REGRESSION  e2e:p50:+20%" in result.stdout
    assert "settings that differ: emulator.workersMax 4 vs 1" in result.stdout
    assert "not comparable" not in result.stdout
    comparison = compare_runs(load_run(runs.fast.stats), load_run(runs.slow.stats))
    worse = {(row.metric, row.stat) for row in comparison.flagged() if row.verdict == "worse"}
    assert {("delayTime", "p50"), ("delayTime", "mean"), ("e2e", "p50")} <= worse


def test_compare_of_two_runs_with_the_same_settings_flags_nothing(runs: Runs) -> None:
    for finished in (runs.fast, runs.fast_again):
        assert finished.returncode == 0, explain(finished)
        assert document(finished.stats)["metrics"]["e2e"]["count"] >= 150  # enough jobs
    result = compare_command(runs.fast.stats, runs.fast_again.stats, *rule_args())
    assert result.returncode == 0, explain(result)
    assert "REGRESSION" not in result.stdout
    comparison = compare_runs(load_run(runs.fast.stats), load_run(runs.fast_again.stats))
    assert comparison.flagged() == [], result.stdout
    assert comparison.flagged_figures() == [], result.stdout
    # Their cost, SLO and cold starts are set side by side too (one run was priced).
    assert {row.figure.name for row in comparison.figures} >= {
        "cost.workerSeconds",
        "cost.emulator.billedSeconds",
        "coldStarts.exact",
        "slo.attainment",
        "slo.goodputPerS",
    }
    assert comparison.not_comparable == []
    assert comparison.differences == ["cost.pricePerS 0.0004 vs unset"]


def test_compare_finds_four_workers_cost_more_than_one(runs: Runs) -> None:
    """The single-worker run is slower but cheaper: the emulator billed its one worker, the
    fast runs four, warm all along."""
    for finished in (runs.fast, runs.slow):
        assert finished.returncode in (0, 4), explain(finished)
    result = compare_command(
        runs.slow.stats,
        runs.fast.stats,
        *("--threshold", "cost.emulator.billedSeconds:+50%"),
        *("--threshold", "slo.attainment:-5pp"),
    )
    assert result.returncode == 4, explain(result)
    assert "REGRESSION  cost.emulator.billedSeconds:+50%" in result.stdout
    assert "ok  slo.attainment:-5pp" in result.stdout  # every job of both met e2e<5s
    comparison = compare_runs(load_run(runs.slow.stats), load_run(runs.fast.stats))
    billed = next(r for r in comparison.figures if r.figure.name == "cost.emulator.billedSeconds")
    assert billed.base is not None
    assert billed.run is not None
    assert billed.run >= 3 * billed.base


def test_compare_reports_runs_with_other_users_not_comparable(runs: Runs) -> None:
    result = compare_command(runs.fast.stats, runs.fewer_users.stats, *rule_args())
    assert result.returncode == 2, explain(result)
    assert "not comparable: users 4 vs 2, spawnRate 4.0 vs 2.0" in result.stdout.replace(";", ",")
    assert "the runs' workloads differ" in result.stderr


def test_baseline_on_a_load_run_applies_the_regression_rules(runs: Runs) -> None:
    slow = runs.slow
    assert slow.returncode == 4, explain(slow)
    assert "Compared with the baseline (--baseline)" in slow.output
    assert "REGRESSION  delayTime:p95:+50%" in slow.output
    saved = document(slow.stats)["baseline"]
    assert saved["notComparable"] == []
    assert [(r["rule"], r["regression"]) for r in saved["regressions"]] == [
        ("delayTime:p95:+50%", True),
        ("e2e:p50:+20%", True),
    ]
    report = (runs.folder / "slow.html").read_text(encoding="utf-8")
    assert 'id="compare-table"' in report
    assert "REGRESSION  delayTime:p95:+50%" in report
    assert 'id="cost-table"' in report


def test_baseline_of_another_workload_ends_the_run_with_status_2(runs: Runs) -> None:
    fewer = runs.fewer_users
    assert fewer.returncode == 2, explain(fewer)
    assert "not comparable: users 4 vs 2" in fewer.output
    saved = document(fewer.stats)["baseline"]
    assert saved["notComparable"][0] == "users 4 vs 2"
