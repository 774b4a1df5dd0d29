"""Self-tests of runpod_testkit.jobstats: percentiles, zeros, merging, transport, series, output."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from runpod_testkit.jobstats import (
    HIGHEST_TRACKABLE_MS,
    INTERRUPTED,
    METRICS,
    REPORTED_PERCENTILES,
    JobStats,
    JobStatsFormatError,
)
from runpod_testkit.slo import Slo

T0 = 1_700_000_000.0
SUMMARY_KEYS = ["count", "min", "max", "mean", "p50", "p90", "p95", "p99", "p99.9"]
HEALTH = {
    "jobs": {"completed": 1, "failed": 0, "inProgress": 2, "inQueue": 7, "retried": 0},
    "workers": {"idle": 1, "running": 2},
}


def nearest_rank(values: list[int], percent: float) -> int:
    """The value at `percent` by the nearest-rank rule HDR uses (rank rounded half up)."""
    ordered = sorted(values)
    rank = max(1, int(percent * len(ordered) / 100 + 0.5))
    return ordered[rank - 1]


def fed(values: Sequence[float], metric: str = "delayTime", **kwargs: Any) -> JobStats:
    stats = JobStats(**kwargs)
    for i, value in enumerate(values):
        stats.record(metric, value, at=T0 + i)
    return stats


def mixed_values(rng: random.Random, n: int) -> list[int]:
    """Zeros, small exact values, and large ones where HDR rounds (to 3 significant digits)."""
    return [
        rng.choice([0, rng.randint(0, 50), rng.randint(0, 5000), rng.randint(0, 50_000_000)])
        for _ in range(n)
    ]


# ---------------------------------------------------------------- percentiles and summaries


def test_percentiles_are_exact_below_2048_ms() -> None:
    values = list(range(1, 1001))
    random.Random(1).shuffle(values)
    summary = fed(values).summary("delayTime")
    assert summary.count == 1000
    assert (summary.min, summary.max, summary.mean) == (1, 1000, 500.5)
    assert dict(summary.percentiles) == {
        "p50": 500,
        "p90": 900,
        "p95": 950,
        "p99": 990,
        "p99.9": 999,
    }


def test_percentiles_match_nearest_rank_on_random_small_values() -> None:
    rng = random.Random(2)
    values = [rng.randint(0, 2047) for _ in range(777)]
    stats = fed(values)
    for label, percent in REPORTED_PERCENTILES:
        assert stats.summary("delayTime").percentiles[label] == nearest_rank(values, percent)


def test_large_values_are_within_hdr_resolution_and_min_max_mean_are_exact() -> None:
    rng = random.Random(3)
    values = [rng.randint(2048, 500_000_000) for _ in range(2000)]
    summary = fed(values, "executionTime").summary("executionTime")
    assert summary.min == min(values)
    assert summary.max == max(values)
    assert summary.mean == round(sum(values) / len(values), 3)
    for label, percent in REPORTED_PERCENTILES:
        reported = summary.percentiles[label]
        expected = nearest_rank(values, percent)
        assert reported is not None
        # HDR reports the top of the value's bucket: never below, at most 0.1% above.
        assert expected <= reported <= expected * 1.001, label


def test_percentiles_never_leave_the_observed_range() -> None:
    stats = fed([123_456])
    summary = stats.summary("delayTime")
    assert summary.min == summary.max == 123_456
    assert set(summary.percentiles.values()) == {123_456}


def test_zero_values_are_counted_and_reported() -> None:
    stats = fed([0, 0, 0, 5])
    summary = stats.summary("delayTime")
    assert summary.count == 4
    assert summary.min == 0
    assert summary.percentiles["p50"] == 0
    assert summary.percentiles["p90"] == 5
    assert summary.max == 5
    assert summary.mean == 1.25


def test_all_zero_values() -> None:
    summary = fed([0, 0, 0]).summary("delayTime")
    assert (summary.count, summary.min, summary.max, summary.mean) == (3, 0, 0, 0.0)
    assert set(summary.percentiles.values()) == {0}


def test_values_are_rounded_and_clamped() -> None:
    stats = fed([1.4, 1.6, -3, HIGHEST_TRACKABLE_MS * 2])
    summary = stats.summary("delayTime")
    assert summary.min == 0
    assert summary.max == HIGHEST_TRACKABLE_MS
    assert stats.percentiles("delayTime", [25, 50]) == {25: 0, 50: 1}
    assert stats.percentile("delayTime", 75) == 2


def test_bad_values_and_metric_names_are_rejected() -> None:
    stats = JobStats()
    with pytest.raises(ValueError, match="unknown metric 'latency'"):
        stats.record("latency", 1)
    with pytest.raises(ValueError, match="NaN"):
        stats.record("e2e", float("nan"))
    with pytest.raises(TypeError):
        stats.record("e2e", "12")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile("e2e", 0)
    assert stats.count("e2e") == 0


def test_empty_metric_summary_is_count_zero_and_nulls() -> None:
    stats = JobStats()
    for name in METRICS:
        assert stats.summary(name).to_json() == {
            key: (0 if key == "count" else None) for key in SUMMARY_KEYS
        }
        assert stats.percentile(name, 50) is None


# ---------------------------------------------------------------- outcomes


def test_outcome_counts_and_failure_rate() -> None:
    stats = JobStats(clock=lambda: T0)
    stats.record_submitted(10)
    stats.record_outcome("dropped", 3)
    stats.record_outcome("late", 2)
    stats.record_terminal("COMPLETED", delay_time_ms=5, execution_time_ms=7, e2e_ms=20)
    for _ in range(5):
        stats.record_terminal("COMPLETED")
    stats.record_terminal("FAILED", delay_time_ms=1)
    stats.record_outcome("TIMED_OUT")
    stats.record_outcome("error")  # client-side failures count as failed jobs
    stats.record_outcome("timeout")
    assert stats.outcomes == {
        "submitted": 10,
        "COMPLETED": 6,
        "FAILED": 1,
        "TIMED_OUT": 1,
        "dropped": 3,
        "error": 1,
        "late": 2,
        "timeout": 1,
    }
    assert next(iter(stats.outcomes)) == "submitted"
    assert stats.submitted == 10
    assert stats.terminal_count == 10
    assert stats.failure_count == 4
    assert stats.failure_rate == 0.4
    assert stats.count("delayTime") == 2
    assert stats.count("executionTime") == 1
    assert stats.count("ttfc") == 0


def test_failure_rate_is_none_without_ended_jobs() -> None:
    stats = JobStats()
    stats.record_submitted(3)
    assert stats.failure_rate is None
    assert stats.failure_count == 0


def test_interrupted_jobs_end_but_are_not_failures() -> None:
    stats = JobStats(clock=lambda: T0)
    stats.record_submitted(6)
    stats.record_terminal("COMPLETED")
    stats.record_terminal("FAILED")
    stats.record_outcome(INTERRUPTED, 4)
    assert stats.outcomes == {"submitted": 6, "COMPLETED": 1, "FAILED": 1, "interrupted": 4}
    assert stats.interrupted == 4
    assert stats.terminal_count == 2
    assert stats.failure_count == 1
    assert stats.failure_rate == 0.5  # not 5 of 6
    only_interrupted = JobStats(clock=lambda: T0)
    only_interrupted.record_outcome(INTERRUPTED, 2)
    assert only_interrupted.failure_rate is None
    assert only_interrupted.to_json()["jobs"] == {"interrupted": 2}


def test_streams_count_chunks_and_record_gaps_as_chunk_gap() -> None:
    stats = JobStats()
    stats.record_stream(3, [100.4, 0.0], at=T0)
    stats.record_stream(5, [250, 90, 0, 1200], at=T0 + 1)
    stats.record_stream(0, at=T0 + 2)  # a stream that carried nothing
    assert (stats.streams, stats.chunks) == (3, 8)
    assert stats.stream_summary() == {"streams": 3, "chunks": 8, "chunksPerStream": 2.667}
    gaps = [100, 0, 250, 90, 0, 1200]
    summary = stats.summary("chunkGap")
    assert (summary.count, summary.min, summary.max) == (6, 0, 1200)
    for label, percent in REPORTED_PERCENTILES:
        assert summary.percentiles[label] == nearest_rank(gaps, percent)
    assert stats.series_json()["metrics"]["chunkGap"]["points"][0]["count"] == 2
    with pytest.raises(ValueError, match="chunk count"):
        stats.record_stream(-1)
    empty = JobStats().stream_summary()
    assert empty == {"streams": 0, "chunks": 0, "chunksPerStream": None}


def test_bad_outcomes_are_rejected() -> None:
    stats = JobStats()
    with pytest.raises(ValueError, match="non-empty"):
        stats.record_outcome("")
    with pytest.raises(ValueError, match="negative"):
        stats.record_outcome("FAILED", -1)


# ---------------------------------------------------------------- to_json and outputs


def test_to_json_has_exactly_the_documented_shape() -> None:
    stats = fed([3, 4])
    stats.record_submitted(2, at=T0)
    stats.record_terminal("COMPLETED", at=T0)
    document = stats.to_json()
    # The keys of docs/interfaces.md#job-stats-json in their order; "stream", "requests",
    # "pacing", "chunkGap" and "webhookDelay" are additions after them.
    assert list(document) == ["metrics", "jobs", "thresholds", "stream", "requests", "pacing"]
    assert list(document["metrics"]) == [
        "delayTime",
        "executionTime",
        "e2e",
        "ttfc",
        "chunkGap",
        "webhookDelay",
    ]
    for summary in document["metrics"].values():
        assert list(summary) == SUMMARY_KEYS
    assert document["metrics"]["delayTime"] == {
        "count": 2,
        "min": 3,
        "max": 4,
        "mean": 3.5,
        "p50": 3,
        "p90": 4,
        "p95": 4,
        "p99": 4,
        "p99.9": 4,
    }
    assert document["metrics"]["ttfc"]["count"] == 0
    assert document["jobs"] == {"submitted": 2, "COMPLETED": 1}
    assert document["thresholds"] == []
    assert document["stream"] == {"streams": 0, "chunks": 0, "chunksPerStream": None}
    assert document["requests"] == {
        "throttled": 0,
        "serverError": 0,
        "connectionError": 0,
        "refused": 0,
        "retried": 0,
    }
    assert document["pacing"] == {"held": 0, "waitS": 0.0}
    assert json.loads(json.dumps(document)) == document


def test_request_counts_merge_across_workers_and_show_apart_from_jobs() -> None:
    """Throttled, server-error, connection-error and refused answers, retries and pacing are
    counted per request, shipped from workers like the rest, and shown in every output."""
    worker_a, worker_b, master = JobStats(), JobStats(), JobStats()
    worker_a.record_request("throttled", 3)
    worker_a.record_request("retried", 3)
    worker_a.record_paced(0.25)
    worker_b.record_request("serverError", 2)
    worker_b.record_request("connectionError")
    worker_b.record_request("refused")
    worker_b.record_paced(0.5)
    worker_b.record_outcome("unknown")
    for worker in (worker_a, worker_b):
        master.merge_transport(json.loads(json.dumps(worker.pop_transport())))
    assert worker_a.request_counts()["throttled"] == 0  # shipped, so reset
    document = master.to_json()
    assert document["requests"] == {
        "throttled": 3,
        "serverError": 2,
        "connectionError": 1,
        "refused": 1,
        "retried": 3,
    }
    assert document["pacing"] == {"held": 2, "waitS": 0.75}
    assert document["jobs"] == {"unknown": 1}
    assert master.failure_count == 1  # an unknown submission is not a success
    table = master.format_table()
    assert (
        "requests: throttled (429) 3, server error (5xx) 2, connection error 1, "
        "refused (401/403) 1; retried 3 (not contract failures)" in table
    )
    assert "pacing: held back 2 requests, 0.8 s in total" in table
    assert "a job may exist; not resubmitted" in table
    rows = {row[0]: row for row in master.csv_rows()}
    assert rows["requests.throttled"][1] == "3"
    assert rows["requests.serverError"][1] == "2"
    assert rows["pacing.held"][1] == "2"
    with pytest.raises(ValueError, match="unknown request count"):
        master.record_request("teapot")
    with pytest.raises(JobStatsFormatError, match=r"payload\.requests"):
        JobStats.from_transport({**JobStats().to_transport(), "requests": {"teapot": 1}})


def test_to_report_json_adds_only_series() -> None:
    stats = fed([1])
    full = stats.to_report_json()
    assert set(full) == {"metrics", "jobs", "thresholds", "stream", "requests", "pacing", "series"}
    assert {k: v for k, v in full.items() if k != "series"} == stats.to_json()


def test_write_json(tmp_path: Path) -> None:
    stats = fed([10, 20, 30])
    target = tmp_path / "stats.json"
    stats.write_json(target)
    assert json.loads(target.read_text(encoding="utf-8")) == stats.to_json()


def test_csv_has_one_row_per_metric_then_the_request_counts(tmp_path: Path) -> None:
    stats = fed([0, 10, 20, 30])
    buffer = io.StringIO()
    stats.write_csv(buffer)
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows[0] == [
        "metric",
        "count",
        "min",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
        "mean",
    ]
    assert rows[1] == ["delayTime", "4", "0", "10", "30", "30", "30", "30", "30", "15.0"]
    assert rows[2] == ["executionTime", "0", *[""] * 8]
    assert [row[0] for row in rows[1 : len(METRICS) + 1]] == list(METRICS)
    assert rows[len(METRICS) + 1 :] == [
        [name, "0", *[""] * 8]
        for name in (
            "requests.throttled",
            "requests.serverError",
            "requests.connectionError",
            "requests.refused",
            "requests.retried",
            "pacing.held",
        )
    ]
    path = tmp_path / "stats.csv"
    stats.write_csv(path)
    with path.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == rows


def test_text_table() -> None:
    stats = fed([0, 10, 20, 30])
    stats.record_submitted(4, at=T0)
    stats.record_terminal("COMPLETED", at=T0)
    stats.record_terminal("FAILED", at=T0)
    table = stats.format_table()
    lines = table.splitlines()
    assert lines[0].split() == [
        "metric",
        "(ms)",
        "count",
        "min",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
        "mean",
    ]
    assert lines[1].split() == ["delayTime", "4", "0", "10", "30", "30", "30", "30", "30", "15.0"]
    assert lines[2].split() == ["executionTime", "0", *["-"] * 8]
    assert lines[-4:] == [
        "submitted     4",
        "COMPLETED     1",
        "FAILED        1",
        "failure rate 50.00% (1 of 2 ended jobs)",
    ]
    assert [line.split()[0] for line in lines[1 : 1 + len(METRICS)]] == list(METRICS)


def test_text_table_explains_interrupted_jobs_and_streams() -> None:
    stats = JobStats()
    stats.record_submitted(3, at=T0)
    stats.record_terminal("COMPLETED", at=T0)
    stats.record_outcome(INTERRUPTED, 2, at=T0)
    stats.record_stream(4, [10, 0, 12], at=T0)
    lines = stats.format_table().splitlines()
    assert lines[-3:] == [
        "interrupted     2  (in flight at stop; cancelled by the run, not a failure)",
        "failure rate 0.00% (0 of 1 ended jobs; interrupted jobs are not counted)",
        "streams 1: 4 chunks, 4 per stream (chunkGap: the time between chunk arrivals)",
    ]


# ---------------------------------------------------------------- merging and transport


def split_feed(
    values: list[int], parts: int, seed: int, **kwargs: Any
) -> tuple[JobStats, list[JobStats]]:
    """One JobStats fed everything, and `parts` fed a random split of the same records."""
    rng = random.Random(seed)
    whole = JobStats(**kwargs)
    shares = [JobStats(**kwargs) for _ in range(parts)]
    for i, value in enumerate(values):
        at = T0 + i * 0.37
        metric = METRICS[i % len(METRICS)]
        status = "COMPLETED" if i % 7 else "FAILED"
        health = {"jobs": {"inQueue": i % 11, "inProgress": i % 3}, "workers": {"running": i % 5}}
        for target in (whole, rng.choice(shares)):
            target.record_submitted(at=at)
            target.record(metric, value, at=at)
            target.record_outcome(status, at=at)
        for target in (whole, rng.choice(shares)):
            target.record_health(health, at=at + 0.1)
    return whole, shares


@pytest.mark.parametrize(("parts", "max_buckets"), [(2, 3600), (3, 3600), (3, 7)])
def test_merge_equals_one_instance_fed_everything(parts: int, max_buckets: int) -> None:
    values = mixed_values(random.Random(parts), 3000)
    whole, shares = split_feed(values, parts, seed=parts, max_buckets=max_buckets)
    merged = JobStats(max_buckets=max_buckets)
    for share in shares:
        merged.merge(share)
    assert merged.to_json() == whole.to_json()
    assert merged.series_json() == whole.series_json()
    for name in METRICS:
        assert merged.summary(name).count > 0
        assert merged.percentiles(name, [50, 90, 95, 99, 99.9, 100]) == whole.percentiles(
            name, [50, 90, 95, 99, 99.9, 100]
        )


def test_merge_through_json_transport_equals_one_instance() -> None:
    values = mixed_values(random.Random(9), 2000)
    whole, shares = split_feed(values, 3, seed=9)
    master = JobStats()
    for share in shares:
        master.merge_transport(json.loads(json.dumps(share.pop_transport())))
        assert share.to_json()["jobs"] == {}  # popped: the worker starts over
    assert master.to_json() == whole.to_json()
    assert master.series_json() == whole.series_json()
    assert master.health_samples() == whole.health_samples()


def test_repeated_reports_add_up() -> None:
    worker, master, reference = JobStats(), JobStats(), JobStats()
    rng = random.Random(5)
    for report in range(4):
        for i in range(50):
            value, at = rng.randint(0, 10_000), T0 + report * 3 + i * 0.05
            worker.record("e2e", value, at=at)
            reference.record("e2e", value, at=at)
        master.merge_transport(worker.pop_transport())
    assert master.to_json() == reference.to_json()
    assert master.series_json() == reference.series_json()


def test_transport_round_trip_of_everything() -> None:
    stats = JobStats()
    for i, metric in enumerate(METRICS):
        stats.record(metric, i * 1000, at=T0 + i)
    stats.record(METRICS[0], 0, at=T0)
    stats.record_outcome("COMPLETED", 3, at=T0)
    stats.record_outcome(INTERRUPTED, 2, at=T0)
    stats.record_stream(7, [5, 6], at=T0)
    stats.record_health(HEALTH, at=T0 + 0.5)
    payload = json.loads(json.dumps(stats.to_transport()))
    again = JobStats.from_transport(payload)
    assert again.to_json() == stats.to_json()
    assert again.series_json() == stats.series_json()
    assert again.health_samples() == stats.health_samples()
    assert again.summary(METRICS[0]).min == 0
    assert (again.streams, again.chunks, again.interrupted) == (1, 7, 2)
    merged = JobStats()
    merged.merge(again)
    merged.merge(again)
    assert (merged.streams, merged.chunks, merged.interrupted) == (2, 14, 4)


def test_empty_transport_round_trip() -> None:
    payload = JobStats().to_transport()
    assert (
        JobStats.from_transport(json.loads(json.dumps(payload))).to_json() == JobStats().to_json()
    )
    assert len(json.dumps(payload)) < 300


def test_a_report_interval_ships_a_small_payload() -> None:
    # About what a Locust worker ships every 3 s: 3 windows of 100 jobs each.
    rng = random.Random(4)
    stats = JobStats()
    for i in range(300):
        at = T0 + i / 100
        stats.record_submitted(at=at)
        stats.record_terminal(
            "COMPLETED",
            delay_time_ms=rng.randint(0, 60_000),
            execution_time_ms=rng.randint(0, 60_000),
            e2e_ms=rng.randint(0, 60_000),
            at=at,
        )
    assert len(json.dumps(stats.pop_transport())) < 20_000


def valid_payload() -> dict[str, Any]:
    stats = fed([1, 2, 3])
    stats.record_outcome("COMPLETED", at=T0)
    stats.record_health(HEALTH, at=T0)
    payload: dict[str, Any] = json.loads(json.dumps(stats.to_transport()))
    return payload


def corrupt(path: list[Any], value: Any) -> dict[str, Any]:
    payload = valid_payload()
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "payload: expected an object"),
        (corrupt(["version"], 99), "payload.version"),
        (corrupt(["metrics", "latency"], {}), "unknown metric"),
        (corrupt(["metrics", "delayTime", "hdr"], "bm90IGEgaGlzdG9ncmFt"), "not an HDR histogram"),
        (corrupt(["metrics", "delayTime", "hdr"], 5), "base64 string"),
        (corrupt(["metrics", "delayTime", "min"], 9), "min 9 > max 3"),
        (corrupt(["metrics", "delayTime", "sum"], -1), "payload.metrics.delayTime.sum"),
        (corrupt(["jobs", "FAILED"], "2"), "payload.jobs.FAILED"),
        (corrupt(["jobs", "FAILED"], True), "payload.jobs.FAILED"),
        (corrupt(["series", "metrics", "delayTime", "width"], 3), "power of two"),
        (corrupt(["series", "metrics", "delayTime", "buckets"], [[1, [1, 1, 1]]]), "histogram]"),
        (
            corrupt(["series", "metrics", "delayTime", "buckets"], [[1, [2, 1, 1, [[1, 1]]]]]),
            "add up",
        ),
        (corrupt(["series", "health", "buckets"], [[1, [1.5, 1, 1, []]]]), "expected an object"),
        (corrupt(["series", "health", "buckets"], [[1, ["x", 1, 1, {}]]]), "expected a number"),
        (corrupt(["series", "jobs"], None), "payload.series.jobs"),
        (corrupt(["stream"], None), "payload.stream: expected an object"),
        (corrupt(["stream", "chunks"], -2), "payload.stream.chunks"),
    ],
)
def test_malformed_transport_is_rejected_and_nothing_is_merged(payload: Any, message: str) -> None:
    master = fed([7])
    before = (master.to_json(), master.series_json())
    with pytest.raises(JobStatsFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        master.merge_transport(payload)
    assert (master.to_json(), master.series_json()) == before
    assert issubclass(JobStatsFormatError, ValueError)


def test_foreign_histogram_layout_is_rejected() -> None:
    from hdrh.histogram import HdrHistogram

    foreign = HdrHistogram(1, 1000, 2)
    foreign.record_value(5)
    payload = corrupt(["metrics", "delayTime", "hdr"], foreign.encode().decode("ascii"))
    with pytest.raises(JobStatsFormatError, match="layout"):
        JobStats.from_transport(payload)


# ---------------------------------------------------------------- time series


def test_per_second_series() -> None:
    stats = JobStats()
    for value in (10, 20, 30, 40):
        stats.record("delayTime", value, at=T0 + 0.2)
    stats.record("delayTime", 5000, at=T0 + 2.9)
    points = stats.series_json()["metrics"]["delayTime"]
    assert points["width"] == 1
    assert points["points"] == [
        {"t": int(T0), "count": 4, "mean": 25.0, "p50": 20, "p95": 40, "max": 40},
        {"t": int(T0) + 2, "count": 1, "mean": 5000.0, "p50": 5000, "p95": 5000, "max": 5000},
    ]


def test_window_percentiles_are_within_a_few_percent() -> None:
    rng = random.Random(11)
    values = [rng.randint(0, 100_000) for _ in range(1000)]
    stats = JobStats()
    for value in values:
        stats.record("e2e", value, at=T0)
    (point,) = stats.series_json()["metrics"]["e2e"]["points"]
    for label, percent in (("p50", 50.0), ("p95", 95.0)):
        expected = nearest_rank(values, percent)
        assert expected <= point[label] <= expected * 1.032
    assert point["max"] == max(values)
    assert point["count"] == 1000


def test_series_downsample_keeps_totals_and_bounds_memory() -> None:
    stats = JobStats(max_buckets=10)
    for second in range(1000):
        stats.record("e2e", second, at=T0 + second)
        stats.record_submitted(at=T0 + second)
        stats.record_health(HEALTH, at=T0 + second)
    series = stats.series_json()
    for part in (series["metrics"]["e2e"], series["jobs"], series["health"]):
        assert len(part["points"]) <= 10
        assert part["width"] in (128, 256)  # 1000 s in at most 10 aligned windows
    assert sum(p["count"] for p in series["metrics"]["e2e"]["points"]) == 1000
    assert sum(p["submitted"] for p in series["jobs"]["points"]) == 1000
    assert max(p["max"] for p in series["metrics"]["e2e"]["points"]) == 999
    coarse = stats.series_json(max_points=3)["metrics"]["e2e"]
    assert len(coarse["points"]) <= 3
    assert sum(p["count"] for p in coarse["points"]) == 1000
    assert stats.summary("e2e").count == 1000  # histograms are untouched by downsampling


def test_series_window_found_last_follows_rekeys_merges_and_resets() -> None:
    """The series remember the window they recorded into last; recording must land in the
    right window after the width doubles, out of time order, after a merge and a reset."""
    stats = JobStats(max_buckets=2)
    stats.record("e2e", 1, at=T0 + 0.5)
    stats.record("e2e", 2, at=T0 + 1.5)
    stats.record("e2e", 3, at=T0 + 1.7)  # the same window as the one before
    stats.record("e2e", 4, at=T0 + 2.5)  # a third window: the width doubles to 2, then 4
    stats.record("e2e", 5, at=T0 + 2.6)  # the window found last was re-keyed
    stats.record("e2e", 6, at=T0 + 0.1)  # back in time (the window [T0, T0 + 2))
    other = JobStats(max_buckets=2)
    for at in (40.0, 50.0, 60.0):
        other.record("e2e", 7, at=T0 + at)
    stats.merge(other)  # takes the other's wider windows
    stats.record("e2e", 8, at=T0 + 0.9)
    series = stats.series_json()["metrics"]["e2e"]
    width = series["width"]
    expected: dict[int, int] = {}
    assert width == 32
    for at in (0.5, 1.5, 1.7, 2.5, 2.6, 0.1, 40.0, 50.0, 60.0, 0.9):
        key = int((T0 + at) // width) * width
        expected[key] = expected.get(key, 0) + 1
    assert {point["t"]: point["count"] for point in series["points"]} == expected
    stats.reset()
    stats.record("e2e", 9, at=T0 + 2.7)
    assert stats.series_json()["metrics"]["e2e"] == {
        "width": 1,
        "points": [{"t": int(T0) + 2, "count": 1, "mean": 9.0, "p50": 9, "p95": 9, "max": 9}],
    }


def test_jobs_series_counts_outcomes_per_window() -> None:
    stats = JobStats()
    stats.record_submitted(3, at=T0 + 0.1)
    stats.record_terminal("COMPLETED", at=T0 + 1.5)
    stats.record_terminal("FAILED", at=T0 + 1.6)
    assert stats.series_json()["jobs"] == {
        "width": 1,
        "points": [
            {"t": int(T0), "submitted": 3},
            {"t": int(T0) + 1, "COMPLETED": 1, "FAILED": 1},
        ],
    }


def test_health_samples() -> None:
    stats = JobStats()
    first = stats.record_health(HEALTH, at=T0 + 0.1)
    later = stats.record_health(
        {"jobs": {"inQueue": 1, "inProgress": 0}, "workers": {"idle": 3, "odd": "x", "neg": -1}},
        at=T0 + 0.9,
    )
    assert first is not None
    assert (first.in_queue, first.in_progress, dict(first.workers)) == (
        7,
        2,
        {"idle": 1, "running": 2},
    )
    assert later is not None
    assert dict(later.workers) == {"idle": 3}  # non-counts are dropped
    # One sample per window: the latest.
    assert stats.health_samples() == [later]
    assert stats.series_json()["health"]["points"] == [
        {"t": T0 + 0.9, "inQueue": 1, "inProgress": 0, "workers": {"idle": 3}}
    ]


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"jobs": {"inQueue": 1, "inProgress": 1}},
        {"jobs": {"inQueue": "1", "inProgress": 1}, "workers": {}},
        {"jobs": {"inQueue": True, "inProgress": 1}, "workers": {}},
        {"jobs": [], "workers": {}},
    ],
)
def test_unusable_health_bodies_are_ignored(body: object) -> None:
    stats = JobStats()
    assert stats.record_health(body, at=T0) is None
    assert stats.health_samples() == []


def test_clock_is_used_when_no_time_is_given() -> None:
    stats = JobStats(clock=lambda: T0 + 42.5)
    stats.record("ttfc", 3)
    stats.record_health(HEALTH)
    assert stats.series_json()["metrics"]["ttfc"]["points"][0]["t"] == int(T0) + 42
    assert stats.health_samples()[0].t == T0 + 42.5


def test_reset_clears_everything() -> None:
    stats = fed([1, 2, 3], max_buckets=2)
    stats.record_health(HEALTH, at=T0)
    stats.record_submitted(at=T0)
    stats.record_stream(2, [3], at=T0)
    stats.reset()
    assert stats.to_json() == JobStats().to_json()
    assert stats.series_json() == JobStats().series_json()


def test_transport_survives_locusts_msgpack_wire_format() -> None:
    # Locust ships report data with msgpack (locust.rpc.protocol.Message); importing locust
    # here would monkey-patch the test process, so use msgpack with the same options.
    import msgpack  # type: ignore[import-untyped]

    values = mixed_values(random.Random(12), 500)
    whole, shares = split_feed(values, 2, seed=12)
    master = JobStats()
    for share in shares:
        wire = msgpack.dumps(("stats", {"job_stats": share.pop_transport()}, "worker-1"))
        _, data, _ = msgpack.loads(wire, raw=False, strict_map_key=False)
        master.merge_transport(data["job_stats"])
    assert master.to_json() == whole.to_json()
    assert master.series_json() == whole.series_json()


def test_terminals_of_one_second_record_as_each_job_does() -> None:
    """The simulation's batch of one second's ended jobs gives what `record_terminal` gives
    job by job: outcomes, SLO, histograms, min/max/sum and windows (clamped values too)."""
    rng = random.Random(5)
    statuses = ["COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"]
    one_by_one, batched = JobStats(max_buckets=4), JobStats(max_buckets=4)
    for stats in (one_by_one, batched):
        stats.slo = Slo(["e2e<3s", "delayTime<1s"])
    for second in range(12):  # more seconds than windows: the width doubles on the way
        at = T0 + second + 0.25
        jobs = [
            (
                rng.choice(statuses),
                rng.choice([None, 0, 7, rng.randint(0, 5000)]),
                rng.choice([None, rng.randint(0, 9000)]),
                rng.choice([rng.uniform(0, 6000), -3.0, 0.4, float(HIGHEST_TRACKABLE_MS) * 2]),
            )
            for _ in range(rng.randint(0, 30))
        ]
        for status, delay, execution, e2e in jobs:
            one_by_one.record_terminal(
                status, delay_time_ms=delay, execution_time_ms=execution, e2e_ms=e2e, at=at
            )
        batched.record_terminals_of_one_second(
            at,
            [job[0] for job in jobs],
            [job[1] for job in jobs],
            [job[2] for job in jobs],
            [job[3] for job in jobs],
        )
    assert batched.to_json() == one_by_one.to_json()
    assert batched.series_json() == one_by_one.series_json()
    assert batched.outcome_windows() == one_by_one.outcome_windows()  # sloMet per window too
    assert batched.slo_met == one_by_one.slo_met > 0
    assert batched.outcomes["TIMED_OUT"] > 0


def test_terminals_of_one_second_refuse_a_bad_batch_and_record_nothing() -> None:
    stats = JobStats()
    with pytest.raises(ValueError, match="one value"):
        stats.record_terminals_of_one_second(T0, ["COMPLETED"], [1], [], [3.0])
    with pytest.raises(ValueError, match="non-empty string"):
        stats.record_terminals_of_one_second(T0, ["COMPLETED", ""], [1, 1], [2, 2], [3.0, 3.0])
    assert stats.to_json() == JobStats().to_json()
