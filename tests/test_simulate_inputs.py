"""The simulation's traffic parsers: arrivals and job durations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runpod_testkit.jobstats import JobStats
from runpod_testkit.simulate.inputs import (
    is_job_stats_json,
    job_log_arrivals,
    job_stats_arrivals,
    poisson_arrivals,
    read_rate_schedule,
    sample_durations,
    scheduled_arrivals,
)


def test_poisson_arrivals_have_the_asked_rate_and_are_reproducible() -> None:
    times = poisson_arrivals(10.0, 1000.0, seed=1)
    assert 9500 < len(times) < 10500
    assert times == sorted(times)
    assert times[0] >= 0
    assert times[-1] < 1000
    assert poisson_arrivals(10.0, 1000.0, seed=1) == times


def test_rate_schedule_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("time,rate\n0,0\n100,20\n200,5\n", encoding="utf-8")
    schedule = read_rate_schedule(path)
    assert schedule == [(0.0, 0.0), (100.0, 20.0), (200.0, 5.0)]
    times = scheduled_arrivals(schedule, end_s=300.0, seed=2)
    assert not [t for t in times if t < 100]
    busy = len([t for t in times if 100 <= t < 200])
    quiet = len([t for t in times if 200 <= t < 300])
    assert 1700 < busy < 2300
    assert 350 < quiet < 650


@pytest.mark.parametrize("body", ["0,1\n0,2\n", "0,1\nx,y\n", "0,-1\n", ""])
def test_rate_schedule_rejects_bad_rows(tmp_path: Path, body: str) -> None:
    path = tmp_path / "rates.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=r"rates\.csv"):
        read_rate_schedule(path)


def test_job_log_arrivals_are_relative_and_sorted(tmp_path: Path) -> None:
    records = [
        {"submittedAt": 5500, "executionTime": 250},
        {"submittedAt": 5000, "executionTime": 1000},
        {"submittedAt": 7000, "executionTime": None},
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    times, durations = job_log_arrivals(path)
    assert times == [0.0, 0.5, 2.0]
    assert durations == [1.0, 0.25, None]


def test_durations_fixed_and_distributions() -> None:
    assert sample_durations("2.5", 3) == [2.5, 2.5, 2.5]
    uniform = sample_durations("uniform:1:3", 1000, seed=3)
    assert min(uniform) >= 1
    assert max(uniform) <= 3
    assert 1.9 < sum(uniform) / 1000 < 2.1
    exponential = sample_durations("exp:2", 5000, seed=4)
    assert 1.85 < sum(exponential) / 5000 < 2.15
    lognormal = sorted(sample_durations("lognormal:1.5:0.5", 2001, seed=5))
    assert 1.35 < lognormal[1000] < 1.65


@pytest.mark.parametrize("spec", ["-1", "uniform:3:1", "exp:0", "gamma:1", "uniform:1", "x"])
def test_durations_reject_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        sample_durations(spec, 1)


def test_job_stats_arrivals_follow_the_submitted_series(tmp_path: Path) -> None:
    stats = JobStats()
    for second, count in ((100, 3), (101, 0), (102, 5)):
        if count:
            stats.record_submitted(count, at=1_700_000_000.0 + second)
    with_series = tmp_path / "report.json"
    with_series.write_text(json.dumps(stats.to_report_json()))
    times = job_stats_arrivals(with_series, seed=2)
    assert len(times) == 8
    assert sum(1 for t in times if 100 <= t + 100 < 101) == 3
    assert sum(1 for t in times if 102 <= t + 100 < 103) == 5
    assert times == sorted(times)
    assert is_job_stats_json(with_series)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(stats.to_json()))
    with pytest.raises(ValueError, match="no submission times"):
        job_stats_arrivals(plain)
    log = tmp_path / "jobs.jsonl"
    log.write_text('{"submittedAt": 1}\n{"submittedAt": 2}\n')
    assert not is_job_stats_json(log)
