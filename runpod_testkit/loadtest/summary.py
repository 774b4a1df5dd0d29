"""The end of a load run: the printed table, the --job-stats-* files and the exit status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.decisions import write_csv
from runpod_testkit.report import write_html_report
from runpod_testkit.thresholds import ThresholdResult, all_passed

__all__ = [
    "EXIT_BAD_SETUP",
    "EXIT_THRESHOLD_FAILED",
    "exit_status",
    "final_table",
    "job_stats_document",
    "write_outputs",
]

EXIT_THRESHOLD_FAILED = 3
"""A --threshold rule failed (Locust's own request failures exit with 1)."""
EXIT_BAD_SETUP = 2
"""A bad option value, or the embedded emulator would not start."""


def final_table(stats: JobStats, results: Sequence[ThresholdResult] = ()) -> str:
    """The job-statistics block printed at the end of a run: JobStats' table (metrics,
    outcomes, failure rate, streams), then one PASS/FAIL line per threshold."""
    lines = ["Job statistics (runpod-testkit)", stats.format_table(results).rstrip("\n")]
    return "\n".join(lines) + "\n"


def job_stats_document(
    stats: JobStats,
    results: Sequence[ThresholdResult] = (),
    workers: dict[str, Any] | None = None,
    *,
    run: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The --job-stats-json document: JobStats' shape (docs/interfaces.md#job-stats-json;
    "interrupted" among the "jobs" when any, and a "stream" object), then "run" (the run's
    settings, see loadtest/runinfo.py) when given, "histograms" (each metric's encoded HDR
    histogram, for `runpod-testkit compare`), "workers" in a distributed run's master
    (loadtest/workers.py: every worker that reported, and the lost ones) and any `extra`
    keys."""
    document = stats.to_json(results)
    if run is not None:
        document["run"] = dict(run)
    document["histograms"] = stats.encoded_histograms()
    if workers is not None:
        document["workers"] = workers
    document.update(extra or {})
    return document


def write_outputs(
    stats: JobStats,
    results: Sequence[ThresholdResult],
    *,
    workers: dict[str, Any] | None = None,
    warnings: Sequence[str] = (),
    json_path: str | None,
    csv_path: str | None,
    html_path: str | None,
    run: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    html_sections: Sequence[str] = (),
) -> list[str]:
    """Write the files asked for; returns one message per file that could not be written.
    `run` and `extra` go into the JSON document (see `job_stats_document`)."""
    problems: list[str] = []
    document = (
        job_stats_document(stats, results, workers, run=run, extra=extra) if json_path else {}
    )
    writers = (
        (
            "--job-stats-json",
            json_path,
            lambda path: Path(path).write_text(
                json.dumps(document, indent=2) + "\n",
                encoding="utf-8",
            ),
        ),
        ("--job-stats-csv", csv_path, lambda path: write_csv(stats, path, extra or {})),
        (
            "--job-stats-html",
            html_path,
            lambda path: write_html_report(
                stats,
                path,
                title="Load run: job statistics",
                thresholds=results,
                warnings=warnings,
                sections=html_sections,
            ),
        ),
    )
    for flag, path, write in writers:
        if not path:
            continue
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write(path)
        except OSError as exc:
            problems.append(f"{flag}: cannot write {path!r}: {exc.strerror or exc}")
    return problems


def exit_status(results: Sequence[ThresholdResult]) -> int | None:
    """EXIT_THRESHOLD_FAILED when a rule failed, else None (Locust decides)."""
    return None if all_passed(results) else EXIT_THRESHOLD_FAILED
