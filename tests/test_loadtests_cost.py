"""End-to-end test of a load run's cost: a real headless Locust run against the embedded
emulator, scaling 0 -> 3 workers, its /health estimate of worker-seconds set against the
emulator's own accounting (--emulator-worker-log: each worker's start and stop). Everything
talks to 127.0.0.1; the run is bounded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.test_loadtests import assert_key_never_shown, explain, run_locust

pytestmark = pytest.mark.slow


def test_worker_seconds_match_the_emulators_accounting(tmp_path: Path) -> None:
    worker_log, stats_path = tmp_path / "workers.log", tmp_path / "stats.json"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "4", "-r", "4", "--run-time", "12s",
        "--probe-input", json.dumps([{"sleep_ms": 100}, {"sleep_ms": 400}]),
        "--poll-interval", "0.05", "--health-interval", "1",
        "--emulator-workers-max", "3", "--emulator-cold-start-ms", "300",
        "--emulator-queue-delay-s", "0.2",
        "--emulator-worker-log", str(worker_log), "--gpu-price-per-s", "0.0005",
        "--job-stats-json", str(stats_path), "RunPollUser",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    cost = json.loads(stats_path.read_text(encoding="utf-8"))["cost"]
    lines = [json.loads(line) for line in worker_log.read_text(encoding="utf-8").splitlines()]
    # The emulator's accounting is the log: every worker, with its whole life.
    assert cost["source"] == "emulator"
    emulator = cost["emulator"]
    assert emulator["workers"] == len(lines) >= cost["peakWorkers"] == 3
    assert emulator["workerSeconds"] == pytest.approx(sum(line["seconds"] for line in lines))
    assert emulator["billedSeconds"] == sum(math.ceil(line["seconds"]) for line in lines)
    assert all(line["stoppedAt"] > line["startedAt"] for line in lines)
    # The /health estimate (1 s samples) against the exact worker-seconds of the same span.
    assert cost["samples"] >= 10
    exact = emulator["workerSecondsInSpan"]
    assert cost["workerSeconds"] == pytest.approx(exact, rel=0.05)
    assert cost["dollars"] == pytest.approx(emulator["billedSeconds"] * 0.0005)
    assert "the emulator's accounting" in result.stdout
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)


@pytest.mark.parametrize(("scaler", "workers"), [("request-count", 4), ("queue-delay", 1)])
def test_the_embedded_emulator_scales_with_the_scaler_asked_for(
    tmp_path: Path, scaler: str, workers: int
) -> None:
    """What `simulate` plans can be tried live: 4 users with 2 s jobs get 4 workers at once from
    the request-count scaler (one a job), and 1 from a queue-delay scaler that waits 30 s."""
    worker_log = tmp_path / "workers.log"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "4", "-r", "4", "--run-time", "3s",
        "--probe-input", '{"sleep_ms": 2000}', "--health-interval", "0",
        "--emulator-workers-max", "4", "--emulator-cold-start-ms", "0",
        "--emulator-scaler", scaler, "--emulator-scaler-threshold", "1" if workers > 1 else "30",
        "--emulator-worker-log", str(worker_log), "RunPollUser",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    lines = worker_log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == workers, lines
