"""End-to-end test of cold starts (issue 12): a real headless Locust run against the embedded
emulator, on a trace whose every cold start is one job that waited on it (one worker at most,
started from zero for a queued job and retired after a short idle time), its /health estimate
(1 s samples) set against the emulator's exact count. Everything talks to 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_loadtests import assert_key_never_shown, explain, read_log, run_locust

pytestmark = pytest.mark.slow


def test_cold_starts_match_the_emulators_accounting(tmp_path: Path) -> None:
    worker_log, job_log = tmp_path / "workers.log", tmp_path / "jobs.log"
    stats_path, report = tmp_path / "stats.json", tmp_path / "report.html"
    # A start-up (1.5 s) and an idle time (1.2 s) each longer than the sampling interval, so
    # that every start is seen initializing and every stop is seen before the next start.
    result = run_locust(
        tmp_path,
        "--headless", "-u", "2", "-r", "2", "--run-time", "14s", "--arrival-rate", "0.6",
        "--probe-input", json.dumps({"sleep_ms": 50}),
        "--poll-interval", "0.05", "--health-interval", "1",
        "--emulator-workers-min", "0", "--emulator-workers-max", "1",
        "--emulator-cold-start-ms", "1500", "--emulator-idle-timeout-s", "1.2",
        "--emulator-worker-log", str(worker_log), "--emulator-job-log", str(job_log),
        "--job-stats-json", str(stats_path), "--job-stats-html", str(report),
        "--job-stats-csv", str(tmp_path / "stats.csv"), "RunPollUser",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    document = json.loads(stats_path.read_text(encoding="utf-8"))
    found = document["coldStarts"]
    workers, jobs = read_log(worker_log), read_log(job_log)
    exact = sum(line["coldStartJobs"] for line in workers)
    # Exact: the run's count is the emulator's, per worker and per job.
    assert found["exact"] == exact == sum(1 for job in jobs if job["coldStart"]) >= 2
    assert found["exactSource"] == "emulator"
    # Each worker was started for one waiting job, unless the run stopped while it started
    # (its job interrupted, cancelled in the queue: not a cold-start job).
    for line in workers:
        assert line["coldStartJobs"] == 1 or line.get("atShutdown"), line
    # The estimate, from 1 s /health samples, within 5%.
    assert found["samples"] >= 10
    assert abs(found["estimate"] - exact) <= 0.05 * exact, (found, workers, explain(result))
    assert "an estimate" in result.stdout
    assert f"cold starts: {exact} jobs" in result.stdout
    assert 'id="cold-starts"' in report.read_text(encoding="utf-8")
    csv_rows = (tmp_path / "stats.csv").read_text(encoding="utf-8").splitlines()
    assert f"coldStarts.exact,{exact}," in "\n".join(csv_rows)
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)
