"""Self-tests of runpod_testkit.report: a self-contained, escaped HTML report with charts."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runpod_testkit.jobstats import INTERRUPTED, METRICS, JobStats
from runpod_testkit.report import (
    live_summary,
    render_html_report,
    render_live_fragment,
    render_live_page,
    write_html_report,
)
from runpod_testkit.thresholds import evaluate

T0 = 1_700_000_000.0
GENERATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
VOID = {"meta", "br", "img", "input", "link", "hr", "line", "circle", "polyline", "rect", "path"}
CHART_IDS = [
    *(f"chart-{name}-time" for name in METRICS),
    *(f"chart-{name}-dist" for name in METRICS),
    "chart-jobs-time",
    "chart-queue-time",
    "chart-workers-time",
]
TABLE_IDS = ["job-stats-table", "job-outcomes", "request-counts", "thresholds-table"]


class Outline(HTMLParser):
    """Collects ids, tags, URL-bearing attributes and checks that elements nest properly."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.polylines_in: dict[str, int] = {}
        self._svg_id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if "id" in found and found["id"] is not None:
            if found["id"] in self.ids:
                self.errors.append(f"duplicate id {found['id']}")
            self.ids[found["id"]] = tag
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action")]
        if tag == "svg":
            self._svg_id = found.get("id")
        if tag == "polyline" and self._svg_id:
            self.polylines_in[self._svg_id] = self.polylines_in.get(self._svg_id, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "svg":
            self._svg_id = None


def outline(html: str) -> Outline:
    parsed = Outline()
    parsed.feed(html)
    parsed.close()
    assert parsed.errors == []
    assert parsed.stack == []
    return parsed


def loaded_stats() -> JobStats:
    stats = JobStats()
    for second in range(120):
        at = T0 + second
        workers = min(3, second // 30)
        stats.record_submitted(2, at=at)
        for k in range(2):
            stats.record_terminal(
                "COMPLETED" if (second + k) % 13 else "FAILED",
                delay_time_ms=(second * 37 + k * 11) % 3000,
                execution_time_ms=500 + (second * 7) % 200,
                e2e_ms=800 + (second * 53) % 4000,
                ttfc_ms=100 + second if k else None,
                at=at + 0.5,
            )
        stats.record_stream(4, [40 + second % 25, 0, 35], at=at + 0.5)
        stats.record("webhookDelay", 2 + second % 7, at=at + 0.5)
        stats.record_health(
            {
                "jobs": {"inQueue": max(0, 60 - second), "inProgress": workers},
                "workers": {"idle": 1, "running": workers, "initializing": int(second < 10)},
            },
            at=at + 0.25,
        )
    stats.record_outcome(INTERRUPTED, 3, at=T0 + 119.5)
    return stats


def test_report_has_every_table_and_chart() -> None:
    stats = loaded_stats()
    results = evaluate(["delayTime:p95<2000", "failures:rate<0.5"], stats)
    html = render_html_report(stats, title="Run 7", thresholds=results, generated_at=GENERATED)
    parsed = outline(html)
    for table_id in TABLE_IDS:
        assert parsed.ids[table_id] == "table"
    for chart_id in CHART_IDS:
        assert parsed.ids[chart_id] == "svg", chart_id
        assert parsed.polylines_in.get(chart_id, 0) >= 1, chart_id
    # One line per worker state, one per queue number, p50/p95/max per metric.
    assert parsed.polylines_in["chart-workers-time"] == 3
    assert parsed.polylines_in["chart-queue-time"] == 2
    assert parsed.polylines_in["chart-delayTime-time"] == 3
    assert "<title>Run 7</title>" in html
    assert "Generated 2024-01-02 03:04:05 UTC" in html
    assert "run from 2023-11-14 22:13:20 UTC, 2:00 long" in html


def test_report_tables_show_the_numbers_of_the_stats() -> None:
    stats = loaded_stats()
    results = evaluate(["delayTime:p95<2000", "jobs:count>=1"], stats)
    html = render_html_report(stats, thresholds=results, generated_at=GENERATED)
    table = re.search(r'<table id="job-stats-table".*?</table>', html, re.S)
    assert table is not None
    summary = stats.summary("delayTime")
    expected = [summary.count, summary.min, *summary.percentiles.values(), summary.max]
    row = re.search(r"<th scope=\"row\">delayTime</th>(.*?)</tr>", table.group())
    assert row is not None
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
    assert cells == [*map(str, expected), f"{summary.mean:.1f}"]
    outcomes = re.search(r'<table id="job-outcomes".*?</table>', html, re.S)
    assert outcomes is not None
    for name, n in stats.outcomes.items():
        assert f'<th scope="row">{name}</th><td class="num">{n}</td>' in outcomes.group()
    assert f"{stats.failure_rate:.2%}" in outcomes.group()
    verdicts = re.findall(r'<span class="badge (pass|fail)">(PASS|FAIL)</span>', html)
    assert verdicts == [
        ("pass" if r.passed else "fail", "PASS" if r.passed else "FAIL") for r in results
    ]
    assert "1 / 2" in html  # thresholds passed card


def test_report_is_self_contained() -> None:
    html = render_html_report(loaded_stats(), generated_at=GENERATED)
    parsed = outline(html)
    assert parsed.urls == []
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert "http://" not in html
    assert "https://" not in html
    assert "@import" not in html
    assert "url(" not in html
    assert "script" not in parsed.tags
    assert "link" not in parsed.tags
    assert "default-src 'none'" in html  # the browser enforces it too


def test_all_text_is_escaped() -> None:
    stats = JobStats()
    stats.record_outcome("<img src=x onerror=alert(1)>", at=T0)
    stats.record("e2e", 5, at=T0)
    stats.record_health(
        {"jobs": {"inQueue": 1, "inProgress": 0}, "workers": {"<script>alert(2)</script>": 1}},
        at=T0,
    )
    results = evaluate(["e2e:p95<1"], stats)
    html = render_html_report(
        stats, title='</title><script>alert("t")</script>', thresholds=results
    )
    parsed = outline(html)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    # (Jinja2 writes a quote as &#34;, html.escape as &quot;: the same character.)
    assert "&lt;/title&gt;&lt;script&gt;alert(&#34;t&#34;)" in html


def test_empty_stats_render_with_every_id() -> None:
    html = render_html_report(JobStats(), generated_at=GENERATED)
    parsed = outline(html)
    for element_id in [*CHART_IDS, "job-stats-table", "job-outcomes", "thresholds-table"]:
        assert element_id in parsed.ids
    assert parsed.polylines_in == {}
    assert html.count("no samples</text>") == len(CHART_IDS)
    assert "No thresholds were set." in html


def test_a_single_sample_still_draws() -> None:
    stats = JobStats()
    stats.record("delayTime", 0, at=T0)
    stats.record_health({"jobs": {"inQueue": 0, "inProgress": 0}, "workers": {}}, at=T0)
    html = render_html_report(stats)
    outline(html)
    assert '<svg id="chart-delayTime-time" class="chart" ' in html
    assert "<circle" in html


def test_long_runs_are_downsampled_for_charts() -> None:
    stats = JobStats()
    for second in range(5000):
        stats.record("e2e", second % 100, at=T0 + second)
    parsed = outline(render_html_report(stats))
    assert parsed.polylines_in["chart-e2e-time"] == 3
    html = render_html_report(stats)
    chart = re.search(r'<svg id="chart-e2e-time".*?</svg>', html, re.S)
    assert chart is not None
    points = re.search(r'points="([^"]*)"', chart.group())
    assert points is not None
    assert len(points.group(1).split()) <= 200


def test_write_html_report(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    stats = loaded_stats()
    write_html_report(stats, target, title="Run", generated_at=GENERATED)
    assert target.read_text(encoding="utf-8") == render_html_report(
        stats, title="Run", generated_at=GENERATED
    )


def test_live_fragment_and_summary() -> None:
    stats = loaded_stats()
    fragment = render_live_fragment(stats, evaluate(["e2e:p95<1"], stats))
    parsed = outline(fragment)
    assert {"job-stats-table", "job-outcomes", "thresholds-table", "chart-queue-time"} <= set(
        parsed.ids
    )
    assert "html" not in parsed.tags
    assert "head" not in parsed.tags
    summary = live_summary(stats)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["metrics"] == stats.to_json()["metrics"]
    assert summary["health"] == stats.health_samples()[-1].to_json()
    assert summary["failureRate"] == pytest.approx(stats.failure_rate)
    assert live_summary(JobStats())["health"] is None


def test_interrupted_jobs_are_shown_apart_from_failures() -> None:
    stats = loaded_stats()
    html = render_html_report(stats, generated_at=GENERATED)
    row = re.search(r'<tr class="([^"]*)" title="([^"]*)"><th scope="row">interrupted</th>', html)
    assert row is not None
    assert row.group(1) == "muted"  # grey, not red: the run cancelled them
    assert "not a failure" in row.group(2)
    assert "failure rate (interrupted jobs not counted)" in html
    assert f"{stats.failure_rate:.2%}" in html


def test_streams_are_summarised_under_the_percentile_table() -> None:
    stats = loaded_stats()
    html = render_html_report(stats, generated_at=GENERATED)
    line = re.search(r'<p id="stream-summary"[^>]*>(.*?)</p>', html)
    assert line is not None
    assert "Streams followed to the end: 120, carrying 480 chunks (4 per stream)" in line.group(1)
    table = re.search(r'<table id="job-stats-table".*?</table>', html, re.S)
    assert table is not None
    assert '<th scope="row">chunkGap</th><td class="num">360</td>' in table.group()
    assert "stream-summary" not in render_html_report(JobStats())


def test_live_page_reloads_itself_and_loads_nothing() -> None:
    stats = loaded_stats()
    page = render_live_page(stats, evaluate(["e2e:p95<1"], stats), refresh_s=5)
    parsed = outline(page)
    assert '<meta http-equiv="refresh" content="5">' in page
    assert {"job-stats-table", "job-outcomes", "thresholds-table", "chart-queue-time"} <= set(
        parsed.ids
    )
    assert parsed.urls == []
    assert "script" not in parsed.tags
    assert "refresh" not in render_html_report(stats)  # the saved report stays still


def test_throttling_errors_retries_and_pacing_have_their_own_table() -> None:
    stats = loaded_stats()
    stats.record_request("throttled", 7)
    stats.record_request("serverError", 3)
    stats.record_request("retried", 10)
    stats.record_paced(1.5)
    stats.record_outcome("unknown")
    for html in (render_html_report(stats, generated_at=GENERATED), render_live_fragment(stats)):
        table = re.search(r'<table id="request-counts".*?</table>', html, re.S)
        assert table is not None
        text = table.group()
        assert "requests (not contract failures)" in text
        assert '<th scope="row">throttled (HTTP 429)</th><td class="num">7</td>' in text
        assert '<th scope="row">server error (HTTP 5xx)</th><td class="num">3</td>' in text
        assert '<th scope="row">connection error</th><td class="num">0</td>' in text
        assert '<th scope="row">retried</th><td class="num">10</td>' in text
        assert '<th scope="row">held back by pacing</th><td class="num">1 (1.5 s)</td>' in text
        unknown = re.search(r'title="([^"]*)"><th scope="row">unknown</th>', html)
        assert unknown is not None
        assert "not resubmitted" in unknown.group(1)


def test_slo_cost_and_compare_sections_nest_after_the_thresholds() -> None:
    from runpod_testkit.compare import RunDocument, compare
    from runpod_testkit.cost import estimate_cost
    from runpod_testkit.loadtest.summary import job_stats_document
    from runpod_testkit.slo import Slo, slo_html

    stats = loaded_stats()
    stats.slo = Slo(["e2e<3s"])
    stats.record_terminal("COMPLETED", e2e_ms=100, at=T0 + 119.9)
    cost = estimate_cost(stats.health_samples(), completed_jobs=1, price_per_s=0.001)
    assert cost is not None
    run = RunDocument.from_json(job_stats_document(stats), "run")
    sections = [
        slo_html(stats.slo_summary(120.0) or {}),
        cost.html_section(),
        compare(run, run, ["e2e:p95:+10%"]).html_section(),
    ]
    html = render_html_report(stats, generated_at=GENERATED, sections=sections)
    parsed = outline(html)
    for table_id in ("slo-table", "cost-table", "compare-table"):
        assert parsed.ids[table_id] == "table", table_id
    assert parsed.ids["compare-rules"] == "ul"
    assert html.index('id="thresholds"') < html.index('id="slo"') < html.index('id="percentiles"')
