"""Self-tests of runpod_testkit.loadtest.extrastats: stream chunks and gaps, interrupted jobs."""

from __future__ import annotations

import json
import random

import pytest

from runpod_testkit.loadtest.extrastats import ExtraStats, ExtraStatsFormatError


def nearest_rank(values: list[int], percent: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, int(percent * len(ordered) / 100 + 0.5)) - 1]


def test_streams_chunks_and_gap_percentiles() -> None:
    stats = ExtraStats()
    stats.record_stream(3, [100.4, 0.0])
    stats.record_stream(5, [250, 90, 0, 1200])
    assert (stats.streams, stats.chunks, stats.gap_count) == (2, 8, 6)
    gaps = [100, 0, 250, 90, 0, 1200]
    for percent in (50.0, 95.0, 99.0):
        assert stats.gap_percentile(percent) == nearest_rank(gaps, percent)
    summary = stats.stream_summary()
    assert summary["chunksPerStream"] == 4.0
    assert summary["gap"]["max"] == 1200
    assert summary["gap"]["count"] == 6


def test_empty_summary_has_no_numbers() -> None:
    summary = ExtraStats().stream_summary()
    assert summary == {
        "streams": 0,
        "chunks": 0,
        "chunksPerStream": None,
        "gap": {"count": 0, "p50": None, "p95": None, "p99": None, "max": None},
    }
    assert ExtraStats().format_lines() == []


def test_workers_merge_to_the_single_process_result() -> None:
    rng = random.Random(7)
    records = [
        (
            rng.randint(1, 9),
            [rng.choice([0, rng.randint(1, 3000)]) for _ in range(rng.randint(0, 8))],
        )
        for _ in range(200)
    ]
    single, master = ExtraStats(), ExtraStats()
    workers = [ExtraStats(), ExtraStats(), ExtraStats()]
    for index, (chunks, gaps) in enumerate(records):
        single.record_stream(chunks, gaps)
        workers[index % 3].record_stream(chunks, gaps)
    single.record_interrupted(4)
    workers[1].record_interrupted(4)
    for worker in workers:
        master.merge_transport(json.loads(json.dumps(worker.pop_transport())))
        assert worker.streams == worker.chunks == worker.interrupted == worker.gap_count == 0
    assert master.stream_summary() == single.stream_summary()
    assert master.interrupted == single.interrupted == 4


def test_format_lines() -> None:
    stats = ExtraStats()
    stats.record_stream(2, [40])
    stats.record_interrupted(3)
    lines = stats.format_lines()
    assert lines[0].startswith("streams 1: 2 chunks (2.0 per stream); gap between chunks (ms):")
    assert lines[1] == "interrupted 3 (in flight at stop; cancelled)"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "payload: expected an object"),
        ({"interrupted": -1, "streams": 0, "chunks": 0, "gapMax": 0}, "payload.interrupted"),
        ({"interrupted": 0, "streams": "2", "chunks": 0, "gapMax": 0}, "payload.streams"),
        ({"interrupted": 0, "streams": 0, "chunks": 0, "gapMax": 0, "gaps": 5}, "payload.gaps"),
        (
            {"interrupted": 0, "streams": 0, "chunks": 0, "gapMax": 0, "gaps": "bm90IGhkcg=="},
            "not an HDR histogram",
        ),
    ],
)
def test_malformed_payloads_are_refused(payload: object, message: str) -> None:
    stats = ExtraStats()
    with pytest.raises(ExtraStatsFormatError, match=message):
        stats.merge_transport(payload)
    assert stats.stream_summary() == ExtraStats().stream_summary()
