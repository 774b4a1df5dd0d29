"""Self-tests of runpod_testkit.cost: worker-seconds from /health samples, and dollars."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from runpod_testkit.cost import EmulatorUsage, estimate_cost, read_worker_log, worker_seconds
from runpod_testkit.jobstats import HealthSample, JobStats


def sample(t: float, **workers: int) -> HealthSample:
    return HealthSample(t=t, in_queue=0, in_progress=0, workers=workers)


def test_trapezoid_between_samples_and_ready_repeats_idle() -> None:
    samples = [
        sample(10.0, idle=1, ready=1),  # one worker
        sample(12.0, initializing=2, idle=1, ready=1),  # three: (1 + 3) / 2 for 2 s
        sample(13.0, running=2, throttled=1, unhealthy=1),  # four: (3 + 4) / 2 for 1 s
        sample(13.5),  # none: (4 + 0) / 2 for 0.5 s; the last sample ends the span
    ]
    assert worker_seconds(samples) == pytest.approx(4 + 3.5 + 1)
    assert worker_seconds(list(reversed(samples))) == pytest.approx(8.5)  # any order
    assert worker_seconds(samples[:1]) == 0


def test_estimate_with_a_price() -> None:
    samples = [sample(0.0, running=2), sample(10.0, running=2), sample(20.0, idle=2)]
    cost = estimate_cost(samples, completed_jobs=40, price_per_s=0.0005, duration_s=20.0)
    assert cost is not None
    assert cost.to_json() == {
        "source": "health",
        "workerSeconds": 40.0,
        "spanS": 20.0,
        "samples": 3,
        "peakWorkers": 2,
        "completedJobs": 40,
        "workerSecondsPerJob": 1.0,
        "pricePerS": 0.0005,
        "dollars": 0.02,
        "dollarsPerJob": 0.0005,
        "dollarsPer1000Jobs": 0.5,
        "dollarsPerDayAtThisRate": 86.4,
        "emulator": None,
        "priceSource": None,  # given with --gpu-price-per-s, not --gpu
    }
    assert cost.line() == (
        "cost (estimated from 3 /health samples over 20.0 s): 40.0 worker-seconds, peak 2 "
        "workers, 1.000 per completed job; $0.0200 at $0.0005/s, $0.000500 per completed job, "
        "$0.5000 per 1,000 jobs\n"
    )


def test_estimate_without_price_or_jobs_leaves_those_out() -> None:
    cost = estimate_cost([sample(0.0, idle=1), sample(4.0, idle=1)], completed_jobs=0)
    assert cost is not None
    document = cost.to_json()
    assert document["workerSeconds"] == 4.0
    assert (
        document["dollars"] is document["dollarsPerJob"] is document["workerSecondsPerJob"] is None
    )
    assert "$" not in cost.line()
    assert estimate_cost([sample(0.0, idle=1)], completed_jobs=3) is None


def test_the_emulator_log_is_summed_for_its_endpoint_since_the_run_started(
    tmp_path: Path,
) -> None:
    def line(endpoint: str, started: float, stopped: float) -> str:
        seconds = stopped - started
        billed = math.ceil(seconds)
        return json.dumps(
            {
                "endpointId": endpoint,
                "workerId": "w",
                "startedAt": round(started * 1000),
                "stoppedAt": round(stopped * 1000),
                "seconds": seconds,
                "billedSeconds": billed,
            }
        )

    log = tmp_path / "workers.log"
    lines = [
        line("loadtest", 50.0, 60.0),  # an earlier run's: left out
        line("other", 100.0, 105.0),  # another endpoint's: left out
        line("loadtest", 100.0, 102.5),  # 2.5 s, 3 billed; 1.5 s in the span
        line("loadtest", 101.0, 110.2),  # 9.2 s, 10 billed; 4 s in the span
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    usage = read_worker_log(log, endpoint_id="loadtest", since_s=99.0, span=(101.0, 105.0))
    assert usage.to_json() == {
        "workers": 2,
        "workerSeconds": 11.7,
        "billedSeconds": 13,
        "workerSecondsInSpan": 5.5,
        "coldStartJobs": 0,  # a log written before the emulator counted them
    }
    cost = estimate_cost(
        [sample(101.0, idle=2), sample(105.0, idle=1)],
        completed_jobs=10,
        price_per_s=0.01,
        emulator=usage,
    )
    assert cost is not None
    assert cost.to_json()["source"] == "emulator"
    assert cost.dollars == pytest.approx(0.13)  # the billed seconds are priced
    assert "13 billed seconds in all (2 workers)" in cost.line()


def test_estimate_from_the_samples_jobstats_keeps() -> None:
    stats = JobStats()
    for t, running in ((100.2, 1), (101.3, 3), (102.1, 2), (103.4, 0)):
        body = {"jobs": {"inQueue": 0, "inProgress": running}, "workers": {"running": running}}
        stats.record_health(body, at=t)
    cost = estimate_cost(stats.health_samples(), completed_jobs=1)
    assert cost is not None
    assert cost.worker_seconds == pytest.approx(2 * 1.1 + 2.5 * 0.8 + 1 * 1.3)


def test_report_section_lists_the_estimate_and_the_emulators_accounting() -> None:
    usage = EmulatorUsage(workers=2, worker_seconds=11.7, billed_seconds=13, seconds_in_span=5.5)
    cost = estimate_cost(
        [sample(0.0, idle=1), sample(4.0, idle=1)], completed_jobs=2, emulator=usage
    )
    assert cost is not None
    section = cost.html_section()
    assert '<table id="cost-table" class="data">' in section
    assert "<tr><th>workerSeconds</th><td>4</td></tr>" in section
    assert "<tr><th>emulator.billedSeconds</th><td>13</td></tr>" in section
    assert "<tr><th>dollars</th><td>-</td></tr>" in section
    # Rendered by an autoescaping template: a price source from the user's table is text.
    priced = dataclasses.replace(cost, price_per_s=0.001, price_source="<b>our deal</b>")
    assert "<td>&lt;b&gt;our deal&lt;/b&gt;</td>" in priced.html_section()


def test_report_shows_small_dollar_figures_in_fixed_point() -> None:
    """$ per job on a cheap GPU is a few millionths: the table says 0.0000764, never 7.64e-05."""
    samples = [sample(0.0, running=1), sample(10.0, running=1)]
    cost = estimate_cost(samples, completed_jobs=100, price_per_s=0.000764)
    assert cost is not None
    shown = dict(cost.html_rows())
    assert shown["dollarsPerJob"] == "0.0000764"
    assert shown["pricePerS"] == "0.000764"
    assert not any("e-" in value for value in shown.values()), shown
