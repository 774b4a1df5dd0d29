"""SLO, cost and cold starts in the CSV export and the web UI tab's rows (issue 12)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.decisions import (
    decision_csv_rows,
    decision_tab_rows,
    live_estimates,
)
from runpod_testkit.loadtest.settings import Settings
from runpod_testkit.loadtest.summary import write_outputs
from runpod_testkit.slo import Slo
from runpod_testkit.stats import take_snapshot

T0 = 1_700_000_000.0


def run_stats() -> JobStats:
    stats = JobStats()
    stats.slo = Slo(["e2e<1s"])
    for i in range(10):
        stats.record_submitted(at=T0 + i)
        stats.record_terminal("COMPLETED", e2e_ms=500 if i < 8 else 2000, at=T0 + i + 0.5)
        workers = {"initializing": 1 if i == 1 else 0, "running": 1 if i > 1 else 0}
        stats.record_health(
            {"jobs": {"inQueue": 1 if i == 1 else 0, "inProgress": 1}, "workers": workers},
            at=T0 + i,
        )
    return stats


def tab_rows_so_far(stats: JobStats, settings: Settings, now: float) -> list[dict[str, object]]:
    """The tab's rows as the web UI makes them: a snapshot with the estimates so far."""
    duration, cost, cold_starts = live_estimates(stats, settings, T0, now)
    snapshot = take_snapshot(
        stats, duration_s=duration, cost=cost, cold_starts=cold_starts, charts=False
    )
    return list(decision_tab_rows(snapshot))


def test_the_tab_shows_the_slo_cost_and_cold_starts_so_far() -> None:
    settings = Settings(slo=("e2e<1s",), gpu_price_per_s=0.001)
    rows = {row["statistic"]: row for row in tab_rows_so_far(run_stats(), settings, T0 + 10)}
    slo = rows["SLO e2e<1s"]
    assert slo["count"] == 8
    assert "8 of 10 ended jobs (attainment 80.00%)" in str(slo["detail"])
    assert "goodput 0.8 jobs/s" in str(slo["detail"])
    cost = rows["cost (worker-seconds, estimate)"]
    # 0 workers at T0, 1 from T0+1 to T0+9: 0.5 + 8 worker-seconds.
    assert cost["count"] == pytest.approx(8.5)
    assert "$0.0085, $0.000850 per completed job, $0.8500 per 1,000 jobs" in str(cost["detail"])
    cold = rows["cold starts (estimate)"]
    assert cold["count"] == 1
    assert "initializing" in str(cold["detail"])


def test_without_slo_or_samples_the_tab_adds_nothing() -> None:
    assert tab_rows_so_far(JobStats(), Settings(), T0 + 5) == []
    duration, cost, cold_starts = live_estimates(JobStats(), Settings(), None, T0)
    assert (duration, cost, cold_starts) == (None, None, None)  # no test started, no sample


def test_csv_rows_name_each_figure_as_its_json_key() -> None:
    extra = {
        "slo": {"rules": ["e2e<1s"], "jobs": 10, "met": 8, "attainment": 0.8, "goodputPerS": 0.8},
        "cost": {"source": "health", "workerSeconds": 8.5, "dollars": None, "dollarsPerJob": None},
        "coldStarts": {"exact": None, "estimate": 1},
        "baseline": {"ignored": True},
    }
    rows = decision_csv_rows(extra, 4)
    assert rows[:4] == [
        ["slo.jobs", "10", "", ""],
        ["slo.met", "8", "", ""],
        ["slo.attainment", "0.8", "", ""],
        ["slo.goodputPerS", "0.8", "", ""],
    ]
    by_name = {row[0]: row[1] for row in rows}
    assert by_name["cost.source"] == "health"
    assert by_name["cost.workerSeconds"] == "8.5"
    assert by_name["cost.dollarsPer1000Jobs"] == ""  # null in the JSON
    assert by_name["coldStarts.estimate"] == "1"
    assert by_name["coldStarts.exact"] == ""
    assert all(len(row) == 4 for row in rows)


def test_the_csv_file_carries_them_after_the_metrics(tmp_path: Path) -> None:
    stats = run_stats()
    path = tmp_path / "stats.csv"
    extra = {"slo": stats.slo_summary(10.0), "cost": {"dollarsPerJob": 0.00085}}
    problems = write_outputs(
        stats, [], json_path=None, csv_path=str(path), html_path=None, extra=extra
    )
    assert problems == []
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    assert rows[0][0] == "metric"
    assert rows[1][0] == "delayTime"
    by_name = {row[0]: row for row in rows}
    assert by_name["slo.met"][1] == "8"
    assert by_name["slo.attainment"][1] == "0.8"
    assert by_name["cost.dollarsPerJob"][1] == "0.00085"
    assert len({len(row) for row in rows}) == 1  # one width throughout
