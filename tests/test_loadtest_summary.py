"""Self-tests of runpod_testkit.loadtest.summary: the end-of-run table, files and exit status."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hdrh.histogram import HdrHistogram

from runpod_testkit.jobstats import INTERRUPTED, JobStats
from runpod_testkit.loadtest.summary import (
    EXIT_THRESHOLD_FAILED,
    exit_status,
    final_table,
    job_stats_document,
    write_outputs,
)
from runpod_testkit.thresholds import evaluate

T0 = 1_700_000_000.0


def sample() -> JobStats:
    stats = JobStats()
    for i in range(10):
        stats.record_submitted(at=T0 + i)
        stats.record_terminal(
            "COMPLETED", delay_time_ms=100 * i, execution_time_ms=500, e2e_ms=600 + 100 * i,
            at=T0 + i,
        )  # fmt: skip
    stats.record_submitted(at=T0)
    stats.record_outcome(INTERRUPTED, at=T0)
    stats.record_stream(4, [100, 0, 120], at=T0)
    return stats


def test_table_has_metrics_outcomes_streams_and_verdicts() -> None:
    stats = sample()
    results = evaluate(["delayTime:p95<2000", "delayTime:max<100"], stats)
    table = final_table(stats, results)
    lines = table.splitlines()
    assert lines[0] == "Job statistics (runpod-testkit)"
    assert lines[1].split()[:3] == ["metric", "(ms)", "count"]
    assert any(line.split()[:2] == ["COMPLETED", "10"] for line in lines)
    assert any(line.split()[:2] == ["interrupted", "1"] for line in lines)
    assert any(line.startswith("streams 1: 4 chunks") for line in lines)
    assert lines[-3:] == [
        "thresholds",
        "PASS  delayTime:p95<2000  (observed 900 ms, limit < 2000 ms)",
        "FAIL  delayTime:max<100  (observed 900 ms, limit < 100 ms)",
    ]


def test_exit_status() -> None:
    stats = sample()
    assert exit_status(evaluate(["delayTime:p95<2000"], stats)) is None
    assert exit_status([]) is None
    assert exit_status(evaluate(["delayTime:max<1"], stats)) == EXIT_THRESHOLD_FAILED == 3


def test_json_document_keeps_the_design_shape_and_adds_interrupted_and_stream() -> None:
    stats = sample()
    results = evaluate(["e2e:p50<=1100"], stats)
    document = job_stats_document(stats, results)
    assert list(document) == [
        "metrics",
        "jobs",
        "thresholds",
        "stream",
        "requests",
        "pacing",
        "histograms",
    ]
    assert document["metrics"] == stats.to_json()["metrics"]
    assert document["metrics"]["chunkGap"]["count"] == 3
    assert document["jobs"] == {"submitted": 11, "COMPLETED": 10, "interrupted": 1}
    assert document["thresholds"] == [{"rule": "e2e:p50<=1100", "value": 1000, "passed": True}]
    assert document["stream"] == {"streams": 1, "chunks": 4, "chunksPerStream": 4.0}
    # Each metric with samples has its HDR histogram, which decodes to the same counts.
    assert set(document["histograms"]) == {"delayTime", "executionTime", "e2e", "chunkGap"}
    for metric, encoded in document["histograms"].items():
        hdr = HdrHistogram.decode(encoded)
        assert hdr.get_total_count() == document["metrics"][metric]["count"]


def test_json_document_adds_the_run_object_and_extra_keys_after_the_others() -> None:
    run = {"host": "embedded", "users": 3}
    document = job_stats_document(sample(), run=run, extra={"baseline": {"file": "b.json"}})
    assert list(document)[-3:] == ["run", "histograms", "baseline"]
    assert document["run"] == run
    assert document["baseline"] == {"file": "b.json"}


def test_write_outputs(tmp_path: Path) -> None:
    stats = sample()
    results = evaluate(["delayTime:p95<2000"], stats)
    paths = {
        "json_path": str(tmp_path / "out" / "stats.json"),
        "csv_path": str(tmp_path / "stats.csv"),
        "html_path": str(tmp_path / "report.html"),
    }
    assert write_outputs(stats, results, **paths) == []
    document = json.loads(Path(paths["json_path"]).read_text(encoding="utf-8"))
    assert document == job_stats_document(stats, results)
    with Path(paths["csv_path"]).open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == stats.csv_rows()
    assert "job-stats-table" in Path(paths["html_path"]).read_text(encoding="utf-8")


def test_unwritable_output_is_reported_not_raised(tmp_path: Path) -> None:
    stats = sample()
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    problems = write_outputs(
        stats, [], json_path=str(blocker / "stats.json"), csv_path=None, html_path=None
    )
    assert len(problems) == 1
    assert problems[0].startswith("--job-stats-json: cannot write ")
