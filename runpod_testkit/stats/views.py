"""Plain views of a `RunSnapshot`: the --job-stats-json document, the CSV rows and the
terminal table. They only lay out what the snapshot holds."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

from runpod_testkit.stats.names import (
    CONNECTION_ERROR,
    INTERRUPTED,
    METRICS,
    REFUSED,
    REPORTED_PERCENTILES,
    RETRIED,
    SERVER_ERROR,
    THROTTLED,
    UNKNOWN_OUTCOME,
)
from runpod_testkit.stats.snapshot import RunSnapshot

__all__ = ["csv_rows", "format_table", "json_document", "write_csv"]


def json_document(snapshot: RunSnapshot) -> dict[str, Any]:
    """The --job-stats-json document (a stable interface: docs/interfaces.md#job-stats-json),
    plus "stream", "requests" and "pacing" objects after the keys that page names."""
    return {
        "metrics": {name: snapshot.metrics[name].to_json() for name in METRICS},
        "jobs": dict(snapshot.outcomes.counts),
        "thresholds": [result.to_json() for result in snapshot.thresholds],
        "stream": dict(snapshot.stream),
        "requests": dict(snapshot.requests),
        "pacing": dict(snapshot.pacing),
    }


def csv_rows(snapshot: RunSnapshot) -> list[list[str]]:
    """Header plus one row per metric; empty cells where a metric has no samples. Then one row
    per request count (`requests.throttled`, ..., `pacing.held`) with its number in the count
    column."""
    header = ["metric", "count", "min", *(label for label, _ in REPORTED_PERCENTILES)]
    rows = [[*header, "max", "mean"]]
    for name in METRICS:
        summary = snapshot.metrics[name]
        cells: list[int | float | None] = [
            summary.count,
            summary.min,
            *(summary.percentiles[label] for label, _ in REPORTED_PERCENTILES),
            summary.max,
            summary.mean,
        ]
        rows.append([name, *("" if c is None else str(c) for c in cells)])
    blank = [""] * (len(rows[0]) - 2)
    counts = [(f"requests.{kind}", n) for kind, n in snapshot.requests.items()]
    counts.append(("pacing.held", snapshot.paced))
    rows += [[name, str(n), *blank] for name, n in counts]
    return rows


def write_csv(snapshot: RunSnapshot, target: str | Path | IO[str]) -> None:
    """Write `csv_rows()` to a path or an open text file."""
    if isinstance(target, (str, Path)):
        with Path(target).open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(csv_rows(snapshot))
    else:
        csv.writer(target).writerows(csv_rows(snapshot))


def format_table(snapshot: RunSnapshot) -> str:
    """Plain-text summary for the end of a headless run."""
    rows = csv_rows(snapshot)[: len(METRICS) + 1]
    rows[0][0] = "metric (ms)"
    display = [[cell if cell else "-" for cell in row] for row in rows]
    for row in display[1:]:
        if row[-1] != "-":
            row[-1] = f"{float(row[-1]):.1f}"
    widths = [max(len(row[i]) for row in display) for i in range(len(display[0]))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in display
    ]
    outcomes = snapshot.outcomes
    shown = outcomes.rows
    name_width = max(len("outcome"), *(len(name) for name in shown))
    count_width = max(len("jobs"), *(len(str(n)) for n in shown.values()))
    lines += ["", f"{'outcome'.ljust(name_width)}  {'jobs'.rjust(count_width)}"]
    for name, n in shown.items():
        note = outcomes.note(name) if name in _TABLE_NOTES else ""
        lines.append(f"{name.ljust(name_width)}  {n:>{count_width}}{f'  ({note})' if note else ''}")
    rate = outcomes.failure_rate
    if rate is not None:
        ended = f"{outcomes.failures} of {outcomes.ended} ended jobs"
        if outcomes.interrupted:
            ended += "; interrupted jobs are not counted"
        lines.append(f"failure rate {rate:.2%} ({ended})")
    if outcomes.e2e_note:
        lines.append(outcomes.e2e_note)
    streams = snapshot.stream
    if streams["streams"]:
        lines.append(
            f"streams {streams['streams']}: {streams['chunks']} chunks, "
            f"{streams['chunksPerStream']:g} per stream (chunkGap: the time between chunk "
            "arrivals)"
        )
    lines += _request_lines(snapshot)
    if snapshot.thresholds:
        lines += ["", "thresholds"]
        lines += [
            f"{'PASS' if r.passed else 'FAIL'}  {r.rule}  ({r.message})"
            for r in snapshot.thresholds
        ]
    return "\n".join(lines) + "\n"


# Outcomes the terminal table explains inline ("submitted" needs no word there).
_TABLE_NOTES = frozenset({INTERRUPTED, UNKNOWN_OUTCOME})


def _request_lines(snapshot: RunSnapshot) -> list[str]:
    """Requests that did not get a usable answer, apart from contract failures, and what
    pacing did; nothing when all is zero."""
    counts = snapshot.requests
    lines: list[str] = []
    if any(counts.values()):
        lines.append(
            f"requests: throttled (429) {counts[THROTTLED]}, server error (5xx) "
            f"{counts[SERVER_ERROR]}, connection error {counts[CONNECTION_ERROR]}, "
            f"refused (401/403) {counts[REFUSED]}; retried {counts[RETRIED]} "
            "(not contract failures)"
        )
    if snapshot.paced:
        held = snapshot.paced
        lines.append(
            f"pacing: held back {held} request{'' if held == 1 else 's'}, "
            f"{snapshot.pacing['waitS']:.1f} s in total (under the endpoint's rate limits)"
        )
    health = snapshot.health_requests
    if health.requests:
        lines.append(
            f"/health sampler: {health.requests} requests, {health.failures} failed, mean "
            f"{health.mean_ms:g} ms (kept out of Locust's request table)"
        )
    return lines
