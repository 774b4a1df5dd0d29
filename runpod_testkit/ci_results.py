"""Results for CI systems: a load run's thresholds as JUnit XML, and Markdown for the run
summary of GitHub Actions (`$GITHUB_STEP_SUMMARY`: a file that every step may append to, shown
on the run's page).

Written with the standard library (xml.etree); nothing here imports Locust.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
from runpod_testkit.stats.thresholds import ThresholdResult

__all__ = [
    "ENV_STEP_SUMMARY",
    "append_step_summary",
    "load_run_markdown",
    "markdown_cell",
    "thresholds_junit",
    "write_thresholds_junit",
]

ENV_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
JUNIT_SUITE = "runpod-testkit load run"
_PERCENTILES = ("p50", "p95", "p99")


def thresholds_junit(
    results: Sequence[ThresholdResult], lost_workers: Sequence[str] = ()
) -> ET.ElementTree[ET.Element]:
    """One <testcase> per --threshold rule (failed rules carry a <failure> with the observed
    value), and one failing testcase per worker lost during a distributed run."""
    failures = sum(1 for result in results if not result.passed) + len(lost_workers)
    attributes = {
        "name": JUNIT_SUITE,
        "tests": str(len(results) + len(lost_workers)),
        "failures": str(failures),
        "errors": "0",
        "skipped": "0",
    }
    suites = ET.Element("testsuites", attributes)
    suite = ET.SubElement(suites, "testsuite", attributes)
    for result in results:
        case = ET.SubElement(suite, "testcase", classname="thresholds", name=result.rule)
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.message, type="threshold")
            failure.text = result.message
    for worker in lost_workers:
        case = ET.SubElement(suite, "testcase", classname="workers", name=f"worker {worker}")
        message = "lost during the run: its last seconds and the jobs it had in flight are missing"
        failure = ET.SubElement(case, "failure", message=message, type="lost-worker")
        failure.text = message
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_thresholds_junit(
    path: str | Path, results: Sequence[ThresholdResult], lost_workers: Sequence[str] = ()
) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    thresholds_junit(results, lost_workers).write(target, encoding="utf-8", xml_declaration=True)


def markdown_cell(text: object) -> str:
    """A value as one table cell: pipes escaped, line breaks flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def load_run_markdown(
    stats: JobStats | RunSnapshot,
    results: Sequence[ThresholdResult],
    lost_workers: Sequence[str] = (),
) -> str:
    """The run summary of a load run: verdict, thresholds, job metrics and outcomes (of the
    run's snapshot; a JobStats is read into one)."""
    snapshot = stats if isinstance(stats, RunSnapshot) else take_snapshot(stats, charts=False)
    failed = [result for result in results if not result.passed]
    if failed or lost_workers:
        verdict = "❌ failed"
    elif results:
        verdict = "✅ passed"
    else:
        verdict = "done (no thresholds)"
    lines = [f"## Load run: {verdict}", ""]
    if results:
        lines += ["| threshold | observed | result |", "|---|---|---|"]
        for result in results:
            mark = "✅ PASS" if result.passed else "❌ FAIL"
            lines.append(
                f"| `{markdown_cell(result.rule)}` | {markdown_cell(result.message)} | {mark} |"
            )
        lines.append("")
    for worker in lost_workers:
        lines.append(f"- ❌ worker `{markdown_cell(worker)}` was lost during the run")
    if lost_workers:
        lines.append("")
    lines += ["| metric (ms) | count | " + " | ".join(_PERCENTILES) + " | max |", "|---|---:|"]
    lines[-1] += "---:|" * (len(_PERCENTILES) + 1)
    for metric in ("delayTime", "executionTime", "e2e", "ttfc"):
        summary = snapshot.metrics[metric]
        if summary.count == 0:
            continue
        values = [_ms(summary.percentiles.get(label)) for label in _PERCENTILES]
        lines.append(
            f"| {metric} | {summary.count} | " + " | ".join(values) + f" | {_ms(summary.max)} |"
        )
    lines += ["", _outcomes_line(snapshot.outcomes.counts), ""]
    return "\n".join(lines)


def _ms(value: int | None) -> str:
    return "-" if value is None else str(value)


def _outcomes_line(outcomes: Mapping[str, int]) -> str:
    parts = [f"{name} {count}" for name, count in outcomes.items()]
    return "Jobs: " + (", ".join(parts) if parts else "none")


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Append to $GITHUB_STEP_SUMMARY when it is set; returns a problem message, or None."""
    env = os.environ if environ is None else environ
    path = env.get(ENV_STEP_SUMMARY, "").strip()
    if not path:
        return None
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        return f"{ENV_STEP_SUMMARY}: cannot append to {path!r}: {exc.strerror or exc}"
    return None
