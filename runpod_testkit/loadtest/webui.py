"""The "Job stats" tab of Locust's web UI, and the job statistics as downloads.

Built on the extension points Locust documents for its web UI (its examples/extend_web_ui.py):

- `template_args["extended_tabs"]` and `["extended_tables"]` add a tab that shows one table
  with the columns given here;
- the rows ride along in every `/stats/requests` answer under `"extended_stats"` (an
  `after_request` hook), so the tab follows the run at the UI's own polling rate;
- `template_args["extended_csv_files"]` adds links to the "Download Data" tab: the job
  statistics as CSV and JSON, the HTML report, and a live page with the queue and worker charts
  (`job-stats/live`, which reloads itself).

The table has one row per latency metric (count, min, percentiles, max, mean), then the job
outcomes and the failure rate, the thresholds with PASS/FAIL, and the /health series: queue
depth and workers by state over the samples, with the latest value and a sparkline. Only the
process that serves the UI (the master, or a single process) installs it: its `LoadRun.stats`
are the merged statistics of the whole run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, make_response, request

from runpod_testkit.jobstats import (
    INTERRUPTED,
    METRICS,
    REPORTED_PERCENTILES,
    SUBMITTED,
    JobStats,
)
from runpod_testkit.loadtest.decisions import decision_tab_rows
from runpod_testkit.report import render_html_report, render_live_page
from runpod_testkit.thresholds import ThresholdResult

if TYPE_CHECKING:
    from locust.web import WebUI

    from runpod_testkit.loadtest.run import LoadRun

__all__ = ["COLUMNS", "DOWNLOADS", "TAB_KEY", "TAB_TITLE", "install_web_ui", "tab_rows"]

TAB_KEY = "job-stats"
TAB_TITLE = "Job stats"
_PERCENTILE_KEYS: tuple[tuple[str, str, float], ...] = tuple(
    (label.replace(".", ""), label, percent) for label, percent in REPORTED_PERCENTILES
)
"""(row key, label, percentile) of each reported percentile: "p99.9" is keyed "p999"."""
COLUMNS: tuple[tuple[str, str], ...] = (
    ("statistic", "Job statistic"),
    ("count", "count"),
    ("min", "min"),
    *((key, label) for key, label, _ in _PERCENTILE_KEYS),
    ("max", "max"),
    ("mean", "mean"),
    ("detail", "detail"),
)
"""(row key, column title). Keys are plain lower-case words: the UI camel-cases keys."""
_METRIC_NOTES = {
    "delayTime": "queue wait, as the endpoint reports it",
    "executionTime": "run time, as the endpoint reports it",
    "e2e": "submission to terminal state seen (client)",
    "ttfc": "submission to first stream chunk (client)",
    "chunkGap": "between stream chunk arrivals (client)",
    "webhookDelay": "job end to webhook arrival (WebhookUser)",
}
SPARK_SAMPLES = 40
_SPARKS = "▁▂▃▄▅▆▇█"

DOWNLOADS: tuple[tuple[str, str], ...] = (
    ("job-stats/live", "Job statistics: live page with queue and worker charts"),
    ("job-stats/csv", "Download job statistics CSV"),
    ("job-stats/json", "Download job statistics JSON"),
    ("job-stats/report", "Download job statistics HTML report"),
)

Row = dict[str, str | int | float | None]


# --------------------------------------------------------------------------- the table


def tab_rows(stats: JobStats, thresholds: Sequence[ThresholdResult] = ()) -> list[Row]:
    """The rows of the tab's table (keys from COLUMNS; a missing key is an empty cell)."""
    rows = [_metric_row(stats, name) for name in METRICS]
    rows += _outcome_rows(stats)
    rows += [
        {
            "statistic": f"threshold {result.rule}",
            "detail": f"{'PASS' if result.passed else 'FAIL'}: {result.message}",
        }
        for result in thresholds
    ]
    rows += _health_rows(stats)
    return rows


def _metric_row(stats: JobStats, name: str) -> Row:
    summary = stats.summary(name)
    row: Row = {
        "statistic": f"{name} (ms)",
        "count": summary.count,
        "min": summary.min,
        **{key: summary.percentiles[label] for key, label, _ in _PERCENTILE_KEYS},
        "max": summary.max,
        "mean": None if summary.mean is None else round(summary.mean, 1),
        "detail": _METRIC_NOTES.get(name, ""),
    }
    if name == "chunkGap" and stats.streams:
        per_stream = stats.stream_summary()["chunksPerStream"]
        row["detail"] = (
            f"{row['detail']}; {stats.streams} streams, {stats.chunks} chunks "
            f"({per_stream:g} per stream)"
        )
    return row


def _outcome_rows(stats: JobStats) -> list[Row]:
    outcomes = stats.outcomes or {SUBMITTED: 0}
    rows: list[Row] = [
        {
            "statistic": f"jobs {name}",
            "count": n,
            "detail": "cancelled by the run when it stopped; not a failure"
            if name == INTERRUPTED
            else "",
        }
        for name, n in outcomes.items()
    ]
    rate = stats.failure_rate
    if rate is not None:
        detail = f"{rate:.2%} of {stats.terminal_count} ended jobs did not complete"
        if stats.interrupted:
            detail += " (interrupted jobs not counted)"
        rows.append({"statistic": "failure rate", "count": stats.failure_count, "detail": detail})
    return rows


def _health_rows(stats: JobStats) -> list[Row]:
    samples = stats.health_samples()
    if not samples:
        return [{"statistic": "/health", "count": 0, "detail": "no sample yet"}]
    series: dict[str, list[int]] = {
        "/health inQueue": [s.in_queue for s in samples],
        "/health inProgress": [s.in_progress for s in samples],
        "/health workers": [sum(s.workers.values()) for s in samples],
    }
    for state in sorted({state for s in samples for state in s.workers}):
        values = [s.workers.get(state, 0) for s in samples]
        if any(values):  # states that never had a worker would only fill the table
            series[f"/health workers {state}"] = values
    return [_gauge_row(name, values) for name, values in series.items()]


def _gauge_row(name: str, values: list[int]) -> Row:
    """A sampled gauge: its distribution over the samples, its latest value and a sparkline."""
    ordered = sorted(values)
    row: Row = {
        "statistic": name,
        "count": len(values),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": round(sum(values) / len(values), 1),
        "detail": f"now {values[-1]}   {sparkline(values[-SPARK_SAMPLES:])}",
    }
    for key, _, percent in _PERCENTILE_KEYS:
        rank = max(1, int(percent * len(ordered) / 100 + 0.5))
        row[key] = ordered[rank - 1]
    return row


def sparkline(values: Sequence[int]) -> str:
    """One block character per value, scaled to the largest (all zeros: the lowest block)."""
    top = max(values, default=0)
    if top <= 0:
        return _SPARKS[0] * len(values)
    steps = len(_SPARKS) - 1
    return "".join(_SPARKS[round(value / top * steps)] for value in values)


# --------------------------------------------------------------------------- Flask wiring


def install_web_ui(web_ui: WebUI, run: LoadRun, base_path: str | None = None) -> None:
    """Add the tab, its data, the downloads and the live page to this process's web UI.

    `base_path` is Locust's --web-base-path (the UI's own routes live under it)."""
    _add_template_args(web_ui.template_args)
    blueprint = Blueprint("runpod_testkit_job_stats", __name__, url_prefix=base_path or None)
    guard: Callable[[Callable[[], Response]], Any] = web_ui.auth_required_if_enabled

    def results() -> list[ThresholdResult]:
        return run.threshold_results()

    def live() -> Response:
        response = make_response(render_live_page(run.stats, results()))
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Cache-Control"] = "no-store"
        return response

    def csv_download() -> Response:
        buffer = io.StringIO()
        run.stats.write_csv(buffer)
        return _attachment(buffer.getvalue(), "text/csv", "csv")

    def json_download() -> Response:
        text = json.dumps(run.stats.to_json(results()), indent=2) + "\n"
        return _attachment(text, "application/json", "json")

    def report_download() -> Response:
        html = render_html_report(run.stats, title="Load run: job statistics", thresholds=results())
        return _attachment(html, "text/html; charset=utf-8", "html")

    for path, view in (
        ("/job-stats/live", live),
        ("/job-stats/csv", csv_download),
        ("/job-stats/json", json_download),
        ("/job-stats/report", report_download),
    ):
        blueprint.add_url_rule(path, view.__name__, guard(view))

    app = web_ui.app
    assert app is not None
    app.register_blueprint(blueprint)

    @app.after_request
    def add_tab_rows(response: Response) -> Response:
        # Locust's own stats route (the UI polls it while a run goes); memoized, so the body
        # may already carry our rows from an earlier answer: they are replaced, not added.
        if request.endpoint != "locust.request_stats" or response.status_code != 200:
            return response
        body = response.get_json(silent=True)
        if not isinstance(body, dict):
            return response
        extended = [
            entry
            for entry in body.get("extended_stats") or []
            if not (isinstance(entry, dict) and entry.get("key") == TAB_KEY)
        ]
        info = run.run_info  # SLO, cost and cold starts so far (loadtest/decisions.py)
        rows = tab_rows(run.stats, results())
        rows += decision_tab_rows(run.stats, run.settings, info.started_at, info.ended_at)
        extended.append({"key": TAB_KEY, "data": rows})
        body["extended_stats"] = extended
        response.set_data(json.dumps(body))
        return response


def _add_template_args(args: dict[str, Any]) -> None:
    """Our entries, after any a locustfile of the user's added before us."""
    args["extended_tabs"] = [
        *_without(args.get("extended_tabs"), TAB_KEY),
        {"title": TAB_TITLE, "key": TAB_KEY},
    ]
    args["extended_tables"] = [
        *_without(args.get("extended_tables"), TAB_KEY),
        {
            "key": TAB_KEY,
            "structure": [{"key": key, "title": title} for key, title in COLUMNS],
        },
    ]
    ours = {f"./{path}" for path, _ in DOWNLOADS}
    others = [
        entry
        for entry in args.get("extended_csv_files") or []
        if not (isinstance(entry, dict) and entry.get("href") in ours)
    ]
    args["extended_csv_files"] = [
        *others,
        *({"href": f"./{path}", "title": title} for path, title in DOWNLOADS),
    ]


def _without(entries: object, key: str) -> list[Any]:
    if not isinstance(entries, list):
        return []
    return [e for e in entries if not (isinstance(e, dict) and e.get("key") == key)]


def _attachment(text: str, content_type: str, extension: str) -> Response:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    response = make_response(text)
    response.headers["Content-Type"] = content_type
    response.headers["Content-Disposition"] = f"attachment; filename=job-stats-{stamp}.{extension}"
    response.headers["Cache-Control"] = "no-store"
    return response
