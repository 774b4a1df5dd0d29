"""End-to-end test of --slo: a real two-process Locust run against the embedded emulator, its
SLO count checked against the emulator's job log (the true delayTime and executionTime of
every job). Everything talks to 127.0.0.1; the run is bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_loadtests import (
    EMULATOR_KNOBS,
    FAST_POLLING,
    assert_key_never_shown,
    explain,
    read_log,
    run_locust,
)

pytestmark = pytest.mark.slow

MIXED_INPUTS = json.dumps([{"sleep_ms": 40}, {"sleep_ms": 90}, {"sleep_ms": 160}])


def test_slo_attainment_and_goodput_match_the_job_log(tmp_path: Path) -> None:
    log, stats_path = tmp_path / "jobs.log", tmp_path / "stats.json"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "6", "-r", "6", "--run-time", "6s", "--processes", "2",
        "--probe-input", MIXED_INPUTS, *FAST_POLLING, *EMULATOR_KNOBS,
        "--emulator-job-log", str(log), "--job-stats-json", str(stats_path),
        "--job-stats-html", str(tmp_path / "report.html"),
        "--slo", "delayTime<100", "--slo", "executionTime<=100", "--slo", "e2e<60s",
        "RunPollUser",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    document = json.loads(stats_path.read_text(encoding="utf-8"))
    rows = read_log(log)
    # Cold starts and queueing put some delayTimes above 100 ms, the 160 ms jobs miss the
    # executionTime rule: the SLO splits the jobs, so the count means something.
    truth = sum(
        1
        for row in rows
        if row["status"] == "COMPLETED" and row["delayTime"] < 100 and row["executionTime"] <= 100
    )
    slo = document["slo"]
    ended = sum(1 for row in rows if row["status"] != "CANCELLED")  # CANCELLED: interrupted
    assert slo["rules"] == ["delayTime<100", "executionTime<=100", "e2e<60s"]
    assert slo["jobs"] == ended
    assert 0 < slo["met"] == truth < ended
    assert slo["attainment"] == pytest.approx(truth / ended, abs=1e-6)
    run = document["run"]
    duration = run["endedAt"] - run["startedAt"]
    assert slo["goodputPerS"] == pytest.approx(truth / duration, rel=1e-3)
    # Over time: per-second windows from both processes, adding up to the run's figures.
    over_time = slo["overTime"]
    assert over_time["width"] == 1
    assert sum(point["met"] for point in over_time["points"]) == truth
    assert sum(point["jobs"] for point in over_time["points"]) == ended
    assert len(over_time["points"]) >= 3
    assert f"{truth} of {ended} ended jobs met it" in result.stdout
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"<tr><th>met the SLO</th><td>{truth}</td></tr>" in report
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)
