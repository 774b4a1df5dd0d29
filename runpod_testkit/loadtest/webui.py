"""The "Job stats" tab of Locust's web UI, and the job statistics as downloads.

Built on the extension points Locust documents for its web UI (its examples/extend_web_ui.py):

- `template_args["extended_tabs"]` and `["extended_tables"]` add a tab that shows one table
  with the columns given here;
- the rows ride along in every `/stats/requests` answer under `"extended_stats"` (an
  `after_request` hook), so the tab follows the run at the UI's own polling rate;
- `template_args["extended_csv_files"]` adds links to the "Download Data" tab: the job
  statistics as CSV and JSON, the HTML report, and a live page with the queue and worker charts
  (`job-stats/live`, which reloads itself).

Locust's tab shows a table only, so the UI's page also loads `job-stats/ui.js` and
`job-stats/ui.css` (added to Locust's index page by an `after_request` hook): the script puts the
report's SVG charts (queue depth, workers by state, delayTime and e2e over time, with --slo the
SLO attainment and goodput over time; and the lost workers of a distributed run) under the
tab's table, fetched from `job-stats/charts` every 5 s (the table follows the UI's own
polling); the stylesheet lets the start form's custom-parameter labels wrap instead of being
cut off.

The table has one row per latency metric (count, min, percentiles, max, mean), then the job
outcomes and the failure rate (and why e2e has fewer samples than jobs ended, when it does),
the thresholds with PASS/FAIL, workers lost in a distributed run, the /health series (queue
depth and workers by state over the samples, with the latest value and a sparkline) and the
sampler's own requests. Every row is read from one `RunSnapshot`. Only the process that serves
the UI (the master, or a single process) installs it: its `LoadRun.stats` are the merged
statistics of the whole run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from flask import Blueprint, Response, make_response, request

from runpod_testkit.loadtest.decisions import decision_tab_rows, live_estimates
from runpod_testkit.report import live_charts, render_html_report, render_live_page
from runpod_testkit.stats.names import METRICS, REPORTED_PERCENTILES
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
from runpod_testkit.stats.thresholds import ThresholdResult
from runpod_testkit.stats.views import json_document, write_csv
from runpod_testkit.templating import asset, templates

if TYPE_CHECKING:
    from locust.web import WebUI

    from runpod_testkit.loadtest.health import SamplerRequests
    from runpod_testkit.loadtest.runinfo import RunInfo
    from runpod_testkit.loadtest.settings import Settings
    from runpod_testkit.loadtest.workers import WorkerLedger

__all__ = [
    "COLUMNS",
    "DOWNLOADS",
    "TAB_KEY",
    "TAB_TITLE",
    "install_web_ui",
    "run_snapshot",
    "tab_rows",
]

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


def tab_rows(
    stats: JobStats | RunSnapshot, thresholds: Sequence[ThresholdResult] = ()
) -> list[Row]:
    """The rows of the tab's table (keys from COLUMNS; a missing key is an empty cell).
    `thresholds` only with a JobStats (a snapshot carries its own)."""
    snap = stats if isinstance(stats, RunSnapshot) else take_snapshot(stats, thresholds)
    rows = [_metric_row(snap, name) for name in METRICS]
    rows += _outcome_rows(snap)
    rows += [
        {
            "statistic": f"threshold {result.rule}",
            "detail": f"{'PASS' if result.passed else 'FAIL'}: {result.message}",
        }
        for result in snap.thresholds
    ]
    rows += [{"statistic": "worker lost", "detail": line} for line in snap.lost_workers]
    rows += _health_rows(snap)
    return rows


def _metric_row(snap: RunSnapshot, name: str) -> Row:
    summary = snap.metrics[name]
    row: Row = {
        "statistic": f"{name} (ms)",
        "count": summary.count,
        "min": summary.min,
        **{key: summary.percentiles[label] for key, label, _ in _PERCENTILE_KEYS},
        "max": summary.max,
        "mean": None if summary.mean is None else round(summary.mean, 1),
        "detail": _METRIC_NOTES.get(name, ""),
    }
    stream = snap.stream
    if name == "chunkGap" and stream["streams"]:
        row["detail"] = (
            f"{row['detail']}; {stream['streams']} streams, {stream['chunks']} chunks "
            f"({stream['chunksPerStream']:g} per stream)"
        )
    if name == "e2e" and snap.outcomes.e2e_note:
        row["detail"] = f"{row['detail']}; {snap.outcomes.e2e_note}"
    return row


def _outcome_rows(snap: RunSnapshot) -> list[Row]:
    outcomes = snap.outcomes
    rows: list[Row] = [
        {"statistic": f"jobs {name}", "count": n, "detail": outcomes.note(name)}
        for name, n in outcomes.rows.items()
    ]
    rate = outcomes.failure_rate
    if rate is not None:
        detail = f"{rate:.2%} of {outcomes.ended} ended jobs did not complete"
        if outcomes.interrupted:
            detail += " (interrupted jobs not counted)"
        rows.append({"statistic": "failure rate", "count": outcomes.failures, "detail": detail})
    return rows


def _health_rows(snap: RunSnapshot) -> list[Row]:
    samples = snap.health
    if not samples:
        return [{"statistic": "/health", "count": 0, "detail": "no sample yet"}]
    series: dict[str, list[int]] = {
        "/health inQueue": [s.in_queue for s in samples],
        "/health inProgress": [s.in_progress for s in samples],
        "/health workers": [s.worker_count for s in samples],
    }
    for state in sorted({state for s in samples for state in s.workers}):
        values = [s.workers.get(state, 0) for s in samples]
        if any(values):  # states that never had a worker would only fill the table
            series[f"/health workers {state}"] = values
    rows = [_gauge_row(name, values) for name, values in series.items()]
    rows[2]["detail"] = f"{rows[2]['detail']}   (ready repeats idle: counted once)"
    sampler = snap.health_requests
    if sampler.requests:
        rows.append(
            {
                "statistic": "/health sampler requests",
                "count": sampler.requests,
                "mean": sampler.mean_ms,
                "detail": f"{sampler.failures} failed; kept out of Locust's request statistics",
            }
        )
    return rows


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


class LoadRunView(Protocol):
    """What the web UI reads of a run: `runpod_testkit.loadtest.run.LoadRun`, which installs
    the UI (so the UI names only what it reads, and imports nothing back)."""

    stats: JobStats
    settings: Settings
    run_info: RunInfo
    health_requests: SamplerRequests
    workers: WorkerLedger

    def threshold_results(self) -> list[ThresholdResult]: ...


def run_snapshot(run: LoadRunView, *, charts: bool = True) -> RunSnapshot:
    """The run as it stands, with its SLO, cost and cold starts so far: what every view the UI
    serves renders (`charts`: with the chart series; the table polled every couple of seconds
    does without)."""
    info = run.run_info
    duration, cost, cold_starts = live_estimates(
        run.stats, run.settings, info.started_at, info.ended_at
    )
    return take_snapshot(
        run.stats,
        run.threshold_results(),
        duration_s=duration,
        cost=cost,
        cold_starts=cold_starts,
        lost_workers=run.workers.verdict_lines(),
        health_requests=run.health_requests.counts(),
        charts=charts,
    )


def install_web_ui(web_ui: WebUI, run: LoadRunView, base_path: str | None = None) -> None:
    """Add the tab, its data, the charts, the downloads and the live page to this process's
    web UI. `base_path` is Locust's --web-base-path (the UI's own routes live under it)."""
    _add_template_args(web_ui.template_args)
    blueprint = Blueprint("runpod_testkit_job_stats", __name__, url_prefix=base_path or None)
    guard: Callable[[Callable[[], Response]], Any] = web_ui.auth_required_if_enabled

    def live() -> Response:
        return _no_store(render_live_page(run_snapshot(run)), "text/html; charset=utf-8")

    def charts() -> Response:
        html = (
            templates()
            .get_template("tab_charts.html.j2")
            .render(snap=(snap := run_snapshot(run)), charts=live_charts(snap))
        )
        return _no_store(html, "text/html; charset=utf-8")

    def ui_script() -> Response:
        return _no_store(asset("webui.js"), "text/javascript; charset=utf-8")

    def ui_style() -> Response:
        return _no_store(asset("webui.css"), "text/css; charset=utf-8")

    def csv_download() -> Response:
        buffer = io.StringIO()
        write_csv(run_snapshot(run), buffer)
        return _attachment(buffer.getvalue(), "text/csv", "csv")

    def json_download() -> Response:
        text = json.dumps(json_document(run_snapshot(run)), indent=2) + "\n"
        return _attachment(text, "application/json", "json")

    def report_download() -> Response:
        html = render_html_report(run_snapshot(run), title="Load run: job statistics")
        return _attachment(html, "text/html; charset=utf-8", "html")

    for path, view in (
        ("/job-stats/live", live),
        ("/job-stats/charts", charts),
        ("/job-stats/ui.js", ui_script),
        ("/job-stats/ui.css", ui_style),
        ("/job-stats/csv", csv_download),
        ("/job-stats/json", json_download),
        ("/job-stats/report", report_download),
    ):
        blueprint.add_url_rule(path, view.__name__, guard(view))

    app = web_ui.app
    assert app is not None
    app.register_blueprint(blueprint)

    @app.after_request
    def extend_locust(response: Response) -> Response:
        if response.status_code != 200:
            return response
        if request.endpoint == "locust.index":
            return _with_assets(response)
        if request.endpoint == "locust.request_stats":
            snap = run_snapshot(run, charts=False)
            # The SLO, cost and cold starts so far follow (loadtest/decisions.py).
            return _with_tab_rows(response, tab_rows(snap) + decision_tab_rows(snap))
        return response


def _with_tab_rows(response: Response, rows: list[Row]) -> Response:
    # Locust's own stats route (the UI polls it while a run goes); memoized, so the body may
    # already carry our rows from an earlier answer: they are replaced, not added.
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return response
    extended = [
        entry
        for entry in body.get("extended_stats") or []
        if not (isinstance(entry, dict) and entry.get("key") == TAB_KEY)
    ]
    extended.append({"key": TAB_KEY, "data": rows})
    body["extended_stats"] = extended
    response.set_data(json.dumps(body))
    return response


_ASSET_TAGS = (
    '<link rel="stylesheet" href="./job-stats/ui.css">'
    '<script src="./job-stats/ui.js" defer></script>'
)


def _with_assets(response: Response) -> Response:
    """Locust's page with our stylesheet and script in its head (once)."""
    if response.direct_passthrough or response.mimetype != "text/html":
        return response
    page = response.get_data(as_text=True)
    if "./job-stats/ui.js" not in page and "</head>" in page:
        response.set_data(page.replace("</head>", f"{_ASSET_TAGS}</head>", 1))
    return response


def _no_store(text: str, content_type: str) -> Response:
    response = make_response(text)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
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
