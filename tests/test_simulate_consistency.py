"""Self-consistency of `simulate` (issue 15): the same arrivals and settings, run in real time
against the HTTP emulator on loopback and simulated on the virtual clock, give the same delayTime
and e2e percentiles and the same worker-seconds (within 2%)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from runpod_testkit.emulator.server import running_emulator
from runpod_testkit.simulate.engine import EndpointSettings, simulate
from runpod_testkit.simulate.inputs import job_log_arrivals
from tests.polling import wait_until

# Off any grid, so that no arrival coincides with a worker becoming free (a tie the real
# clock's jitter could order either way). Every job waits (a cold start at least), so that
# 2% of each delay is more than that jitter.
OFFSETS_S = [0.0, 0.04, 0.1, 0.17, 0.27, 0.38, 0.5, 0.67, 0.86, 1.03]
JOB_S = 0.4
SETTINGS = EndpointSettings(
    workers_max=2, cold_start_s=0.5, idle_timeout_s=0.3, scaler="queue-delay", scaler_threshold=0.2
)
PERCENTS = (50.0, 95.0, 99.0)


def _run_for_real(tmp_path: Path) -> tuple[list[float], Path, Path]:
    """Submit one /runsync per offset, each at its time; returns the client's e2e (ms) and the
    emulator's job and worker logs (complete once the emulator has stopped)."""
    job_log, worker_log = tmp_path / "jobs.jsonl", tmp_path / "workers.jsonl"
    e2e_ms: list[float] = []
    lock = threading.Lock()
    with running_emulator(
        SETTINGS.emulator_config(seed=0), job_log=job_log, worker_log=worker_log
    ) as emulator:
        url = emulator.endpoint_url("consistency")
        headers = {"authorization": "Bearer test-key"}
        with httpx.Client(headers=headers, timeout=30.0) as client:
            client.get(f"{url}/health").raise_for_status()  # the connection pool is warm
            start = time.monotonic() + 0.2

            def submit(offset: float) -> None:
                time.sleep(max(0.0, start + offset - time.monotonic()))  # pacing to the trace
                sent = time.monotonic()
                body = client.post(
                    f"{url}/runsync", json={"input": {"sleep_ms": round(JOB_S * 1000)}}
                ).json()
                assert body["status"] == "COMPLETED"
                with lock:
                    e2e_ms.append((time.monotonic() - sent) * 1000)

            threads = [threading.Thread(target=submit, args=(o,)) for o in OFFSETS_S]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=20)
            assert len(e2e_ms) == len(OFFSETS_S)

            def workers_gone() -> bool:
                workers = client.get(f"{url}/health").json()["workers"]
                return sum(n for state, n in workers.items() if state != "ready") == 0

            wait_until(workers_gone, 10, "every worker to retire")
    return e2e_ms, job_log, worker_log


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))  # nearest rank, as HDR's
    return ordered[int(rank) - 1]


@pytest.mark.slow
def test_simulation_matches_the_http_emulator_run_in_real_time(tmp_path: Path) -> None:
    real_e2e, job_log, worker_log = _run_for_real(tmp_path)
    records = [json.loads(line) for line in job_log.read_text().splitlines()]
    real_delay = [float(record["delayTime"]) for record in records]
    real_worker_s = sum(json.loads(line)["seconds"] for line in worker_log.read_text().splitlines())
    # The same arrivals: the submission times the emulator recorded.
    arrivals, _ = job_log_arrivals(job_log)
    result = simulate(arrivals, [JOB_S] * len(arrivals), SETTINGS, duration_s=arrivals[-1])
    stats = result.stats
    for percent in PERCENTS:
        simulated_delay = stats.percentile("delayTime", percent)
        simulated_e2e = stats.percentile("e2e", percent)
        assert simulated_delay == pytest.approx(_percentile(real_delay, percent), rel=0.02)
        assert simulated_e2e == pytest.approx(_percentile(real_e2e, percent), rel=0.02)
    assert result.worker_seconds == pytest.approx(real_worker_s, rel=0.02)
    assert result.workers_started == len(worker_log.read_text().splitlines())
