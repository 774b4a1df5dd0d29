"""`runpod-testkit simulate`: the planner on the emulator's model, its sweep, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from runpod_testkit.cli import main
from runpod_testkit.jobstats import JobStats
from runpod_testkit.simulate.engine import EndpointSettings, simulate
from runpod_testkit.simulate.inputs import histogram_durations
from runpod_testkit.simulate.sweep import cheapest_meeting_slo, parse_values, run_sweep
from runpod_testkit.slo import Slo

RATE_PER_S = 4.0
JOB_S = 1.3
SPAN_S = 200.0


def _constant_traffic() -> tuple[list[float], list[float]]:
    """Arrivals every 1/RATE_PER_S seconds, each job JOB_S long."""
    count = int(SPAN_S * RATE_PER_S)
    return [i / RATE_PER_S for i in range(count)], [JOB_S] * count


def _settings_by_workers_max() -> list[EndpointSettings]:
    # A scaler that starts a worker for every waiting job at once, with no cold start and no
    # retiring within the run: each setting runs min(workers-max, needed) workers.
    return [
        EndpointSettings(
            workers_max=n,
            cold_start_s=0.0,
            idle_timeout_s=600.0,
            scaler="request-count",
            scaler_threshold=1,
        )
        for n in range(1, 11)
    ]


def test_sweep_finds_the_fewest_workers_that_keep_the_queue_stable() -> None:
    # By construction: 4 jobs/s of 1.3 s need 5.2 workers' worth of work, so 5 workers fall
    # behind (the queue grows for the whole run) and 6 keep up with no wait at all.
    needed = math.ceil(RATE_PER_S * JOB_S)
    assert needed == 6
    arrivals, durations = _constant_traffic()
    slo = Slo(["delayTime<2s"])
    rows = run_sweep(arrivals, durations, _settings_by_workers_max(), duration_s=SPAN_S, slo=slo)
    best = cheapest_meeting_slo(rows, 0.99)
    assert best is not None
    assert best.settings.workers_max == needed
    for row in rows:
        if row.settings.workers_max < needed:
            assert row.slo_attainment is not None
            assert row.slo_attainment < 0.99
            assert row.percentiles["delayTime"]["p99"] > 2000  # the queue kept growing
        else:
            assert row.percentiles["delayTime"]["p99"] == 0
            assert row.completed == len(arrivals)
    # More headroom than needed costs nothing here (the scaler starts only what is needed),
    # so the tie goes to the first (smallest) setting.
    costs = {row.settings.workers_max: row.billed_seconds for row in rows if row.meets(0.99)}
    assert min(costs.values()) == costs[needed]


def test_a_simulation_is_deterministic_per_seed_and_accounts_worker_seconds() -> None:
    arrivals = [0.0, 0.2, 0.4, 5.0]
    settings = EndpointSettings(workers_max=1, cold_start_s=0.5, idle_timeout_s=2.0)
    first = simulate(arrivals, [1.0] * 4, settings, duration_s=6.0, seed=3)
    again = simulate(arrivals, [1.0] * 4, settings, duration_s=6.0, seed=3)
    assert first.stats.to_json() == again.stats.to_json()
    # One worker: up at 0, ready at 0.5, runs jobs 0.5-3.5, idle until 5.0, runs 5.0-6.0,
    # retires 2 s idle later at 8.0: 8 worker-seconds, delays 500, 1300, 2100 and 0 ms.
    assert first.worker_seconds == pytest.approx(8.0)
    assert first.billed_seconds == 8
    assert first.workers_started == 1
    assert first.stats.summary("delayTime").max == 2100
    assert first.stats.percentile("delayTime", 50) == 500
    assert first.stats.summary("delayTime").min == 0
    assert first.cost is not None
    assert first.cost.to_json()["emulator"]["workerSeconds"] == 8.0


def test_request_count_scaler_in_the_simulation_starts_one_worker_per_threshold() -> None:
    settings = EndpointSettings(
        workers_max=10, cold_start_s=1.0, scaler="request-count", scaler_threshold=3
    )
    result = simulate([0.0] * 7, [2.0] * 7, settings, duration_s=1.0)
    assert result.workers_started == math.ceil(7 / 3)


def test_histogram_durations_follow_the_recorded_execution_times(tmp_path: Path) -> None:
    recorded = JobStats()
    for value in [100] * 3 + [900]:
        recorded.record("executionTime", value)
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"metrics": {}, "histograms": recorded.encoded_histograms()}))
    drawn = histogram_durations(path, 4000, seed=1)
    assert set(drawn) == {0.1, 0.9}
    assert drawn.count(0.9) / len(drawn) == pytest.approx(0.25, abs=0.03)


def test_parse_values_ranges_and_lists() -> None:
    assert parse_values("--workers-max", "1..4", int) == [1, 2, 3, 4]
    assert parse_values("--idle-timeout-s", "5,30,120", float) == [5.0, 30.0, 120.0]
    with pytest.raises(ValueError, match="empty range"):
        parse_values("--workers-max", "5..1", int)


def test_cli_writes_a_report_that_says_it_is_a_simulation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_path, html_path = tmp_path / "sim.json", tmp_path / "sim.html"
    code = main(
        [
            "simulate",
            "--rate",
            "2",
            "--duration-s",
            "60",
            "--job-duration",
            "uniform:0.5:1.5",
            "--slo",
            "e2e<5s",
            "--gpu-price-per-s",
            "0.001",
            "--job-stats-json",
            str(stats_path),
            "--html",
            str(html_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("SIMULATION:")
    document = json.loads(stats_path.read_text())
    assert document["simulation"]["simulated"] is True
    assert document["metrics"]["e2e"]["count"] == document["jobs"]["COMPLETED"] > 60
    assert document["cost"]["dollars"] == pytest.approx(
        document["cost"]["emulator"]["billedSeconds"] * 0.001
    )
    assert 0 < document["slo"]["attainment"] <= 1
    page = html_path.read_text()
    assert 'id="simulation-banner"' in page
    assert "SIMULATION" in page


def test_cli_sweep_names_the_cheapest_setting_and_draws_the_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html_path, json_path = tmp_path / "sweep.html", tmp_path / "sweep.json"
    code = main(
        [
            "simulate",
            "--rate",
            "3",
            "--duration-s",
            "120",
            "--workers-max",
            "1..6",
            "--idle-timeout-s",
            "5,30",
            "--sweep",
            "--slo",
            "e2e<6s",
            "--slo-target",
            "0.95",
            "--html",
            str(html_path),
            "--job-stats-json",
            str(json_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(json_path.read_text())
    assert len(document["sweep"]) == 12
    cheapest = document["cheapest"]
    assert cheapest is not None
    assert cheapest["sloAttainment"] >= 0.95
    meeting = [row for row in document["sweep"] if row["sloAttainment"] >= 0.95]
    assert cheapest["billedSeconds"] == min(row["billedSeconds"] for row in meeting)
    assert "cheapest setting meeting SLO" in out
    page = html_path.read_text()
    assert 'id="sweep-chart"' in page
    assert page.count("<circle") == 12


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--rate", "-1", "--duration-s", "5"], "--rate must be above 0"),
        (["--rate", "1", "--duration-s", "5", "--workers-max", "5..1", "--sweep"], "empty range"),
        (["--rate", "1", "--duration-s", "5", "--scaler", "fastest"], "--scaler must be one of"),
        (["--replay", "/nonexistent/job-log.jsonl"], "cannot read"),
        (["--rate", "1", "--duration-s", "5", "--workers-max", "1,4"], "add --sweep"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    arguments: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert problem in lines[0]


def test_unreadable_replay_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("not json\n")
    assert main(["simulate", "--replay", str(path)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_a_sweep_row_tally_agrees_with_the_full_job_statistics() -> None:
    # Values below 2,048 ms are exact in both, and both take HDR's rank rule.
    arrivals = [i * 0.37 for i in range(400)]
    durations = [0.2 + (i % 7) * 0.1 for i in range(400)]
    settings = EndpointSettings(workers_max=3, cold_start_s=0.3, scaler_threshold=0.5)
    slo = Slo(["e2e<1200ms"])
    full = simulate(arrivals, durations, settings, duration_s=150.0, slo=slo)
    tallied = simulate(arrivals, durations, settings, duration_s=150.0, slo=slo, tally_only=True)
    assert tallied.tally is not None
    for metric in ("delayTime", "e2e"):
        for percent in (50.0, 95.0, 99.0):
            assert tallied.tally.percentile(metric, percent) == full.stats.percentile(
                metric, percent
            )
    summary = full.stats.slo_summary(full.duration_s)
    assert summary is not None
    assert 0 < summary["attainment"] < 1
    assert tallied.tally.slo_attainment == summary["attainment"]
    assert tallied.billed_seconds == full.billed_seconds


@pytest.mark.slow
def test_a_sweep_in_processes_gives_the_rows_of_a_sweep_in_one() -> None:
    arrivals = [i * 0.21 for i in range(300)]
    durations = [0.3 + (i % 5) * 0.2 for i in range(300)]
    settings = [
        EndpointSettings(workers_max=n, idle_timeout_s=idle, cold_start_s=0.7)
        for n in (2, 3, 4)
        for idle in (1.0, 10.0)
    ]
    slo = Slo(["e2e<2s"])
    serial = run_sweep(arrivals, durations, settings, duration_s=63.0, seed=5, slo=slo)
    parallel = run_sweep(arrivals, durations, settings, duration_s=63.0, seed=5, slo=slo, jobs=2)
    assert [row.to_json() for row in parallel] == [row.to_json() for row in serial]
    assert len({row.billed_seconds for row in serial}) > 1  # the settings do differ
