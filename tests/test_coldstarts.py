"""Cold starts (issue 12): the emulator's exact count of jobs that waited on a worker's start-up,
on a virtual clock, and the /health estimate on hand-made sample series."""

from __future__ import annotations

import json
from pathlib import Path

from runpod_testkit.coldstarts import ESTIMATE_METHOD, ColdStarts, count_cold_starts
from runpod_testkit.coldstarts import estimate_cold_starts as estimate
from runpod_testkit.cost import read_worker_log
from runpod_testkit.emulator.app import WorkerLog
from runpod_testkit.jobstats import HealthSample
from tests.test_emulator_model import Harness


def sample(
    t: float, *, initializing: int = 0, running: int = 0, idle: int = 0, queued: int = 0
) -> HealthSample:
    # /health repeats idle as "ready": the estimate must not count it twice.
    workers = {"initializing": initializing, "running": running, "idle": idle, "ready": idle}
    return HealthSample(t=t, in_queue=queued, in_progress=running, workers=workers)


# ---- the emulator's exact count


def test_the_job_that_woke_a_worker_from_zero_is_a_cold_start() -> None:
    h = Harness(workers_min=0, workers_max=1, cold_start_ms=1500, idle_timeout_s=1.0)
    first = h.submit(sleep_ms=250)
    second = h.submit(sleep_ms=250)  # queued behind it, taken when the first is done
    h.at(1.0)
    assert not first.cold_start  # still waiting on the start-up
    h.at(1.5)
    assert first.cold_start
    assert first.status == "IN_PROGRESS"
    h.at(1.75)
    assert second.status == "IN_PROGRESS"
    assert not second.cold_start
    h.at(2.0)
    third = h.submit(sleep_ms=250)  # the worker is idle: warm
    h.at(4.0)  # the worker retired at 3.0 (idle 1 s)
    fourth = h.submit(sleep_ms=250)
    h.at(10.0)
    assert [j.cold_start for j in (first, second, third, fourth)] == [True, False, False, True]
    assert [r["coldStart"] for r in h.log] == [True, False, False, True]


def test_warm_workers_min_take_jobs_warm_and_scaled_workers_cold() -> None:
    h = Harness(workers_min=1, workers_max=3, cold_start_ms=1000, queue_delay_s=0.25)
    jobs = [h.submit(sleep_ms=4000) for _ in range(3)]
    h.at(10.0)
    assert [j.cold_start for j in jobs] == [False, True, True]


def test_worker_log_counts_each_workers_cold_start_jobs(tmp_path: Path) -> None:
    log_path = tmp_path / "workers.log"
    log = WorkerLog(log_path)
    h = Harness(workers_min=0, workers_max=2, cold_start_ms=500, idle_timeout_s=0.5)
    h.model.on_worker_stopped = log.write
    for start in (0.0, 3.0, 6.0):  # three wake-ups from zero, the worker retiring in between
        h.at(start)
        h.submit(sleep_ms=250)
        h.submit(sleep_ms=250)
    h.at(10.0)
    log.close()
    lines = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    assert sum(line["coldStartJobs"] for line in lines) == 3 == sum(r["coldStart"] for r in h.log)
    since = lines[0]["startedAt"] / 1000
    usage = read_worker_log(log_path, endpoint_id="endpoint-a", since_s=since, span=(0, 1e12))
    assert usage.cold_start_jobs == 3
    assert usage.to_json()["coldStartJobs"] == 3


# ---- the /health estimate


def test_estimate_counts_workers_seen_starting() -> None:
    samples = [
        sample(0),
        sample(1, initializing=1, queued=1),
        sample(2, initializing=1, queued=2),  # the same worker, still starting
        sample(3, running=1, queued=1),
        sample(4, running=1, initializing=1),  # a second one
        sample(5, running=2),
        sample(6, idle=2),
        sample(7),
        sample(8, initializing=2, queued=2),  # two at once
        sample(9, running=2),
    ]
    assert estimate(samples) == 4
    assert estimate(list(reversed(samples))) == 4  # ordered by time, whatever the input order


def test_estimate_sees_a_start_hidden_in_an_unchanged_initializing_count() -> None:
    # One worker finished starting and another began between the samples.
    samples = [
        sample(0, initializing=1, queued=2),
        sample(1, initializing=1, running=1),
        sample(2, running=2),
    ]
    assert estimate(samples) == 2


def test_estimate_leaves_out_a_start_up_the_run_stopped() -> None:
    samples = [
        sample(0, initializing=1, queued=1),
        sample(1, running=1),
        sample(2),
        sample(3, initializing=1, queued=1),  # the run stops with this one still starting
        sample(4, initializing=1),  # the last sample: its job was cancelled
    ]
    assert estimate(samples) == 1


def test_estimate_ignores_workers_initializing_with_nothing_queued_at_the_start() -> None:
    assert estimate([sample(0, initializing=2), sample(1, idle=2)]) == 0
    assert estimate([]) == 0


def test_cold_starts_json_and_line_label_the_estimate() -> None:
    samples = [sample(0), sample(1, initializing=1, queued=1), sample(2, running=1)]
    found = count_cold_starts(samples, exact=1)
    assert found == ColdStarts(estimate=1, samples=3, exact=1)
    document = found.to_json()
    assert document["exact"] == 1
    assert document["exactSource"] == "emulator"
    assert document["estimate"] == 1
    assert document["estimateMethod"] == ESTIMATE_METHOD
    assert "an estimate" in found.line()
    assert "the emulator's accounting" in found.line()
    assert 'id="cold-starts"' in found.html_section()
    assert "estimate" in found.html_section()
    live = count_cold_starts(samples, exact=None)
    assert live is not None
    assert live.to_json()["exactSource"] is None
    assert "accounting" not in live.line()
    assert count_cold_starts([], exact=None) is None
