"""Self-tests of runpod_testkit.loadtest.webui: the "Job stats" tab's rows, and its wiring into
a Flask app shaped like Locust's (the browser tests in test_browser.py use the real web UI)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, jsonify

from runpod_testkit.jobstats import INTERRUPTED, METRICS, JobStats
from runpod_testkit.loadtest.decisions import decision_tab_rows
from runpod_testkit.loadtest.settings import Settings
from runpod_testkit.loadtest.webui import (
    COLUMNS,
    DOWNLOADS,
    TAB_KEY,
    install_web_ui,
    run_snapshot,
    sparkline,
    tab_rows,
)
from runpod_testkit.loadtest.workers import WorkerLedger
from runpod_testkit.stats.snapshot import HealthRequests
from runpod_testkit.thresholds import ThresholdResult, evaluate

T0 = 1_700_000_000.0
COLUMN_KEYS = [key for key, _ in COLUMNS]


def sample_stats() -> JobStats:
    stats = JobStats()
    for i in range(20):
        at = T0 + i
        stats.record_submitted(at=at)
        stats.record_terminal(
            "COMPLETED" if i % 10 else "FAILED",
            delay_time_ms=10 * i, execution_time_ms=500, e2e_ms=600 + 10 * i, at=at,
        )  # fmt: skip
        stats.record_health(
            {
                "jobs": {"inQueue": 20 - i, "inProgress": min(i, 3)},
                "workers": {"running": min(i, 3), "idle": 0, "throttled": 0},
            },
            at=at,
        )
    stats.record_outcome(INTERRUPTED, 2, at=T0 + 19)
    stats.record_stream(3, [40, 0], at=T0 + 19)
    return stats


def rows_by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(row["statistic"]): row for row in rows}


# --------------------------------------------------------------------------- the rows


def test_metric_rows_carry_the_summaries() -> None:
    stats = sample_stats()
    rows = rows_by_name(tab_rows(stats))
    for name in METRICS:
        row = rows[f"{name} (ms)"]
        summary = stats.summary(name)
        assert row["count"] == summary.count
        assert (row["min"], row["max"]) == (summary.min, summary.max)
        assert [row["p50"], row["p90"], row["p95"], row["p99"], row["p999"]] == list(
            summary.percentiles.values()
        )
        assert set(row) <= set(COLUMN_KEYS)
    assert rows["delayTime (ms)"]["mean"] == 95.0
    assert "1 streams, 3 chunks (3 per stream)" in rows["chunkGap (ms)"]["detail"]
    assert rows["ttfc (ms)"]["min"] is None  # an empty cell, not a zero


def test_outcomes_failure_rate_and_thresholds() -> None:
    stats = sample_stats()
    results = evaluate(["delayTime:p95<1000", "e2e:max<1"], stats)
    rows = rows_by_name(tab_rows(stats, results))
    assert rows["jobs submitted"]["count"] == 20
    assert rows["jobs COMPLETED"]["count"] == 18
    assert rows["jobs FAILED"]["count"] == 2
    assert rows["jobs interrupted"]["count"] == 2
    assert "not a failure" in rows["jobs interrupted"]["detail"]
    rate = rows["failure rate"]
    assert rate["count"] == 2
    assert rate["detail"] == (
        "10.00% of 20 ended jobs did not complete (interrupted jobs not counted)"
    )
    assert rows["threshold delayTime:p95<1000"]["detail"].startswith("PASS: observed 180 ms")
    assert rows["threshold e2e:max<1"]["detail"].startswith("FAIL: observed 790 ms")


def test_health_rows_show_the_series_and_skip_states_never_seen() -> None:
    rows = rows_by_name(tab_rows(sample_stats()))
    queue = rows["/health inQueue"]
    assert (queue["count"], queue["min"], queue["max"], queue["p50"]) == (20, 1, 20, 10)
    assert queue["mean"] == 10.5
    assert queue["detail"] == f"now 1   {sparkline(list(range(20, 0, -1)))}"
    assert rows["/health workers running"]["max"] == 3
    assert rows["/health workers"]["max"] == 3
    assert "/health workers idle" not in rows  # always 0: left out
    assert "/health workers throttled" not in rows
    empty = rows_by_name(tab_rows(JobStats()))
    assert empty["/health"]["detail"] == "no sample yet"
    assert empty["jobs submitted"]["count"] == 0


def test_sparkline() -> None:
    assert sparkline([0, 4, 8]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""
    assert len(sparkline(list(range(40)))) == 40


def test_rows_are_json() -> None:
    rows = tab_rows(sample_stats(), evaluate(["e2e:p99<5s"], sample_stats()))
    assert json.loads(json.dumps(rows)) == rows


# --------------------------------------------------------------------------- Flask wiring


@dataclass
class StubWebUI:
    """The parts of locust.web.WebUI that install_web_ui uses."""

    app: Flask
    template_args: dict[str, Any] = field(default_factory=dict)
    allow: bool = True

    def auth_required_if_enabled(self, view: Callable[[], Any]) -> Callable[[], Any]:
        def guarded() -> Any:
            return view() if self.allow else Response("login first", status=401)

        guarded.__name__ = view.__name__
        return guarded


@dataclass
class StubSampler:
    """LoadRun.health_requests (loadtest/health.py's SamplerRequests imports Locust)."""

    seen: HealthRequests = field(default_factory=HealthRequests)

    def counts(self) -> HealthRequests:
        return self.seen


@dataclass
class StubRunInfo:
    started_at: float | None = T0
    ended_at: float | None = T0 + 20


@dataclass
class StubRun:
    """The parts of LoadRun that the web UI reads."""

    stats: JobStats
    rules: tuple[str, ...] = ("delayTime:p95<1000",)
    workers: WorkerLedger = field(default_factory=WorkerLedger)
    health_requests: StubSampler = field(default_factory=StubSampler)
    settings: Settings = field(default_factory=Settings)
    run_info: StubRunInfo = field(default_factory=StubRunInfo)

    def threshold_results(self) -> list[ThresholdResult]:
        return evaluate(self.rules, self.stats)


def locust_like_app(base_path: str | None = None) -> Flask:
    """A Flask app with Locust's stats route: blueprint "locust", view "request_stats"."""
    app = Flask(__name__)
    blueprint = Blueprint("locust", __name__, url_prefix=base_path)

    @blueprint.route("/stats/requests")
    def request_stats() -> Response:
        return jsonify({"stats": [], "extended_stats": [{"key": "theirs", "data": [{"a": 1}]}]})

    @blueprint.route("/")
    def index() -> str:
        return "<!doctype html><html><head><title>Locust</title></head><body></body></html>"

    @blueprint.route("/other")
    def other() -> Response:
        return jsonify({"stats": []})

    app.register_blueprint(blueprint)
    return app


def installed(base_path: str | None = None, **args: Any) -> tuple[StubWebUI, StubRun, Any]:
    web_ui = StubWebUI(locust_like_app(base_path), dict(args))
    run = StubRun(sample_stats())
    install_web_ui(web_ui, run, base_path)  # type: ignore[arg-type]
    return web_ui, run, web_ui.app.test_client()


def test_template_args_add_the_tab_after_the_users_own() -> None:
    web_ui, _, _ = installed(
        extended_tabs=[{"title": "Mine", "key": "mine"}],
        extended_csv_files=[{"href": "./mine.csv", "title": "Mine"}],
    )
    args = web_ui.template_args
    assert args["extended_tabs"] == [
        {"title": "Mine", "key": "mine"},
        {"title": "Job stats", "key": TAB_KEY},
    ]
    (table,) = args["extended_tables"]
    assert table["key"] == TAB_KEY
    assert [column["key"] for column in table["structure"]] == COLUMN_KEYS
    assert [column["title"] for column in table["structure"]][7] == "p99.9"
    hrefs = [entry["href"] for entry in args["extended_csv_files"]]
    assert hrefs == ["./mine.csv", *(f"./{path}" for path, _ in DOWNLOADS)]


def test_stats_requests_carries_the_rows_once_next_to_other_extensions() -> None:
    _, run, client = installed()
    for _ in range(2):  # Locust memoizes this response: the rows must replace, not pile up
        body = client.get("/stats/requests").get_json()
        keys = [entry["key"] for entry in body["extended_stats"]]
        assert keys == ["theirs", TAB_KEY]
    snapshot = run_snapshot(run, charts=False)
    decisions = decision_tab_rows(snapshot)
    assert [row["statistic"] for row in decisions] == [
        "cost (worker-seconds, estimate)",
        "cold starts (estimate)",
    ]
    expected = tab_rows(run.stats, run.threshold_results()) + decisions
    assert body["extended_stats"][1]["data"] == expected
    assert "extended_stats" not in client.get("/other").get_json()


def test_downloads_and_the_live_page() -> None:
    _, run, client = installed()
    csv_reply = client.get("/job-stats/csv")
    assert csv_reply.status_code == 200
    assert csv_reply.headers["Content-Type"].startswith("text/csv")
    assert csv_reply.headers["Content-Disposition"].startswith("attachment; filename=job-stats-")
    assert list(csv.reader(io.StringIO(csv_reply.get_data(as_text=True)))) == run.stats.csv_rows()
    json_reply = client.get("/job-stats/json")
    assert json.loads(json_reply.get_data(as_text=True)) == run.stats.to_json(
        run.threshold_results()
    )
    report = client.get("/job-stats/report")
    assert report.headers["Content-Disposition"].endswith(".html")
    report_html = report.get_data(as_text=True)
    assert 'id="chart-queue-time"' in report_html
    # The downloaded report carries the cost and cold starts so far, as the tab's rows do.
    assert '<section id="cost">' in report_html
    assert '<section id="cold-starts">' in report_html
    live = client.get("/job-stats/live")
    assert live.headers["Content-Type"] == "text/html; charset=utf-8"
    assert live.headers["Cache-Control"] == "no-store"
    page = live.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="3">' in page
    assert 'id="job-stats-table"' in page


def test_routes_follow_the_web_base_path() -> None:
    _, _, client = installed("/locust")
    assert client.get("/locust/job-stats/csv").status_code == 200
    assert client.get("/job-stats/csv").status_code == 404
    keys = [e["key"] for e in client.get("/locust/stats/requests").get_json()["extended_stats"]]
    assert keys == ["theirs", TAB_KEY]


@pytest.mark.parametrize("path", [f"/{path}" for path, _ in DOWNLOADS])
def test_routes_are_behind_the_web_uis_login(path: str) -> None:
    web_ui, _, client = installed()
    web_ui.allow = False
    assert client.get(path).status_code == 401


# --------------------------------------------------------------------------- charts in the tab


def test_locusts_page_loads_the_tabs_script_and_stylesheet_once() -> None:
    _, _, client = installed()
    page = client.get("/").get_data(as_text=True)
    head = page[: page.index("</head>")]
    assert head.count('<script src="./job-stats/ui.js" defer></script>') == 1
    assert head.count('<link rel="stylesheet" href="./job-stats/ui.css">') == 1
    script = client.get("/job-stats/ui.js")
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "./job-stats/charts" in script.get_data(as_text=True)
    style = client.get("/job-stats/ui.css").get_data(as_text=True)
    # The start form's custom-parameter labels wrap instead of being cut off.
    assert re.search(
        r"\.MuiAccordionDetails-root \.MuiInputLabel-root \{[^}]*white-space: normal", style
    )


def test_the_tab_charts_are_the_reports_svg_charts() -> None:
    _, run, client = installed()
    run.workers.note_lost("worker-7")
    reply = client.get("/job-stats/charts")
    assert reply.headers["Cache-Control"] == "no-store"
    html = reply.get_data(as_text=True)
    for chart_id in ("chart-queue-time", "chart-workers-time", "chart-delayTime-time",
                     "chart-e2e-time"):  # fmt: skip
        assert re.search(rf'<svg id="{chart_id}" class="chart" [^>]*>.*?<polyline ', html, re.S)
    assert '<section id="lost-workers">' in html
    assert "worker worker-7" in html
    rows = client.get("/stats/requests").get_json()["extended_stats"][1]["data"]
    assert any(row.get("statistic") == "worker lost" for row in rows)


@pytest.mark.parametrize("path", ["/job-stats/charts", "/job-stats/ui.js", "/job-stats/ui.css"])
def test_the_tab_assets_are_behind_the_web_uis_login(path: str) -> None:
    web_ui, _, client = installed()
    web_ui.allow = False
    assert client.get(path).status_code == 401
