"""The end of a load run: the printed table, the --job-stats-* files and the exit status."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runpod_testkit.loadtest.decisions import write_csv
from runpod_testkit.report import write_html_report
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
from runpod_testkit.stats.thresholds import ThresholdResult, all_passed
from runpod_testkit.stats.views import format_table, json_document

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


def _snapshot(
    stats: JobStats | RunSnapshot, results: Sequence[ThresholdResult], *, charts: bool = False
) -> RunSnapshot:
    """A JobStats is read into a snapshot (`charts`: for the HTML report)."""
    if isinstance(stats, RunSnapshot):
        return stats
    return take_snapshot(stats, results, charts=charts)


def final_table(stats: JobStats | RunSnapshot, results: Sequence[ThresholdResult] = ()) -> str:
    """The job-statistics block printed at the end of a run: the snapshot's table (metrics,
    outcomes, failure rate, streams), then one PASS/FAIL line per threshold. `results` only
    with a JobStats (a snapshot carries its own)."""
    table = format_table(_snapshot(stats, results))
    return "\n".join(["Job statistics (runpod-testkit)", table.rstrip("\n")]) + "\n"


def job_stats_document(
    stats: JobStats | RunSnapshot,
    results: Sequence[ThresholdResult] = (),
    workers: dict[str, Any] | None = None,
    *,
    run: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The --job-stats-json document: the snapshot's shape (docs/interfaces.md#job-stats-json;
    "interrupted" among the "jobs" when any, and a "stream" object), then "run" (the run's
    settings, see loadtest/runinfo.py) when given, "histograms" (each metric's encoded HDR
    histogram, for `runpod-testkit compare`), "workers" in a distributed run's master
    (loadtest/workers.py: every worker that reported, and the lost ones) and any `extra`
    keys."""
    snapshot = _snapshot(stats, results)
    document = json_document(snapshot)
    if run is not None:
        document["run"] = dict(run)
    document["histograms"] = dict(snapshot.histograms)
    if workers is not None:
        document["workers"] = workers
    document.update(extra or {})
    return document


def write_outputs(
    stats: JobStats | RunSnapshot,
    results: Sequence[ThresholdResult] = (),
    *,
    workers: dict[str, Any] | None = None,
    json_path: str | None,
    csv_path: str | None,
    html_path: str | None,
    run: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write the files asked for, each a view of `snapshot`; returns one message per file that
    could not be written. `run` and `extra` go into the JSON document (see
    `job_stats_document`). `results` only with a JobStats (a snapshot carries its own)."""
    snapshot = _snapshot(stats, results, charts=bool(html_path))
    problems: list[str] = []
    document = job_stats_document(snapshot, workers=workers, run=run, extra=extra)
    writers: tuple[tuple[str, str | None, Callable[[str], object]], ...] = (
        (
            "--job-stats-json",
            json_path,
            lambda path: Path(path).write_text(
                json.dumps(document, indent=2) + "\n", encoding="utf-8"
            ),
        ),
        ("--job-stats-csv", csv_path, lambda path: write_csv(snapshot, path, extra or {})),
        (
            "--job-stats-html",
            html_path,
            lambda path: write_html_report(snapshot, path, title="Load run: job statistics"),
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
