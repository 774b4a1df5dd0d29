"""Headless chromium on the views of one run snapshot (issue 12): the web UI's Job stats tab
with its charts mid-run (the SLO's among them), the start form's custom-parameter labels, and
the HTML report with its compare (latency, and cost, SLO and cold starts side by side), cost,
cold-start and SLO sections and charts. Screenshots are kept in artifacts/ (gitignored), as
tests/test_browser.py keeps its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from runpod_testkit.compare_figures import fixed_point, format_figure
from tests.polling import wait_until
from tests.test_browser import (  # noqa: F401  # browser, page: fixtures
    LOCUSTFILE,
    PAGE_POLL_S,
    RUN_OPTIONS,
    artifact,
    browser,
    job_stats_rows,
    locust_web_ui,
    page,
)

pytestmark = pytest.mark.slow

TAB_CHARTS = (
    "chart-queue-time",
    "chart-workers-time",
    "chart-delayTime-time",
    "chart-e2e-time",
    "chart-slo-time",
    "chart-goodput-time",
)
REPORT_RUN = (
    "--headless", "-u", "4", "-r", "4", "--run-time", "4s", "--poll-interval", "0.1",
    "--health-interval", "0.5", "--probe-input", '{"sleep_ms": 150}',
    "--emulator-workers-max", "2", "--emulator-cold-start-ms", "200",
)  # fmt: skip


def test_web_ui_tab_shows_its_charts_mid_run(page: Page, tmp_path: Path) -> None:  # noqa: F811
    with locust_web_ui(
        tmp_path,
        *("--autostart", "-u", "6", "-r", "6", "--run-time", "60s", "--slo", "e2e<5s"),
        *RUN_OPTIONS,
    ) as web:

        def jobs_ended() -> bool:
            rows = {row["statistic"]: row for row in job_stats_rows(web)}
            return rows.get("e2e (ms)", {}).get("count", 0) >= 3

        wait_until(jobs_ended, 60, "the run's first ended jobs", interval_s=PAGE_POLL_S)
        page.goto(web)
        page.get_by_role("tab", name="Job stats").click()
        charts = page.locator("#rp-job-stats-charts")
        expect(charts.locator("svg#chart-queue-time")).to_be_visible(timeout=15_000)
        for chart_id in TAB_CHARTS:
            chart = charts.locator(f"svg#{chart_id}")
            expect(chart).to_be_visible()
            expect(chart.locator("polyline")).not_to_have_count(0)
        # Under the tab's own table, in the tab itself (not behind a link).
        table_bottom = page.get_by_role("table").first.bounding_box()
        charts_top = charts.bounding_box()
        assert table_bottom is not None
        assert charts_top is not None
        assert charts_top["y"] >= table_bottom["y"] + table_bottom["height"] - 1
        # The p95 and max lines each have their own key in the legend.
        legend = charts.locator("svg#chart-e2e-time + .legend")
        expect(legend.locator(".key")).to_have_text(["max", "p50", "p95"])
        # The SLO's attainment on a 0-100% axis, with the run's overall level beside it.
        slo = charts.locator("svg#chart-slo-time")
        expect(slo.locator("text.tick").filter(has_text="100%")).to_have_count(1)
        expect(charts.locator("svg#chart-slo-time + .legend .key")).to_have_text(
            ["overall", "attainment per window"]
        )
        page.screenshot(path=artifact("webui-tab-charts.png"), full_page=True)
        assert artifact("webui-tab-charts.png").stat().st_size > 0

        # Another tab: the charts go; back: they come again.
        page.get_by_role("tab", name="Statistics").click()
        expect(page.locator("#rp-job-stats-charts")).to_have_count(0)
        page.get_by_role("tab", name="Job stats").click()
        charts_again = page.locator("#rp-job-stats-charts svg#chart-queue-time")
        expect(charts_again).to_be_visible(timeout=15_000)


def test_the_start_forms_custom_parameter_labels_are_not_cut_off(
    page: Page,  # noqa: F811  # the fixture imported above
    tmp_path: Path,
) -> None:
    with locust_web_ui(tmp_path, *RUN_OPTIONS) as web:
        wait_until(lambda: bool(job_stats_rows(web)), 60, "the web UI", interval_s=PAGE_POLL_S)
        page.goto(web)
        custom = page.locator(".MuiAccordion-root", has_text="Custom parameters")
        custom.get_by_text("Custom parameters").click()
        labels = custom.locator(".MuiAccordionDetails-root .MuiInputLabel-root")
        expect(labels.first).to_be_visible()
        count = labels.count()
        assert count >= 5
        cut = []
        for i in range(count):
            label = labels.nth(i)
            if not label.is_visible():
                continue
            # A cut-off label is wider inside than its box (MUI's nowrap + ellipsis).
            if label.evaluate("e => e.scrollWidth > e.clientWidth + 1"):
                cut.append(label.inner_text())
        assert cut == []
        page.screenshot(path=artifact("webui-start-form.png"), full_page=True)
        probe = labels.filter(has_text="Probe input")
        expect(probe).to_have_count(1)
        expect(probe).to_contain_text("(")  # the help text is there, whole
        box = probe.bounding_box()
        assert box is not None
        assert box["height"] > 20  # it wraps onto more lines rather than being cut


def run_headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *REPORT_RUN, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


DECISIONS = ("--slo", "e2e<5s", "--gpu-price-per-s", "0.0004")
FIGURE_RULES = ("cost.dollarsPerJob:+1000%", "slo.attainment:-50pp")


def test_html_report_shows_compare_cost_and_slo(page: Page, tmp_path: Path) -> None:  # noqa: F811
    baseline = tmp_path / "baseline.json"
    first = run_headless(tmp_path, *DECISIONS, "--job-stats-json", str(baseline))
    assert first.returncode == 0, first.stderr[-3000:]
    report = tmp_path / "report.html"
    second = run_headless(
        tmp_path, "--baseline", str(baseline), *DECISIONS,
        *(item for rule in FIGURE_RULES for item in ("--regression", rule)),
        "--job-stats-html", str(report), "--job-stats-json", str(tmp_path / "run.json"),
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    document = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    before = json.loads(baseline.read_text(encoding="utf-8"))
    assert {"slo", "cost", "coldStarts", "baseline"} <= set(document)

    page.goto(report.as_uri())
    for heading in ("SLO", "Cost", "Cold starts", "Compared with the baseline",
                    "Cost, SLO and cold starts", "Latency percentiles (ms)", "Over time",
                    "Distributions"):  # fmt: skip
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    for table_id in ("slo-table", "cost-table", "cold-starts-table", "compare-table",
                     "compare-figures", "job-stats-table"):  # fmt: skip
        expect(page.locator(f"#{table_id}")).to_be_visible()
    attainment = page.locator("#slo-table tr", has_text="attainment").locator("td")
    expect(attainment).to_have_text(f"{document['slo']['attainment'] * 100:.2f}%")
    per_1000 = page.locator("#cost-table tr", has_text="dollarsPer1000Jobs").locator("td")
    expect(per_1000).to_have_text(fixed_point(document["cost"]["dollarsPer1000Jobs"], 6))
    exact = page.locator("#cold-starts-table tr", has_text="exact").locator("td")
    expect(exact).to_have_text(str(document["coldStarts"]["exact"]))
    # The comparison sets the two runs' cost, SLO and cold starts side by side.
    figures = page.locator("#compare-figures")
    for figure, key in (("cost.dollarsPerJob", "dollarsPerJob"), ("cost.workerSeconds", None),
                        ("coldStarts.exact", None), ("slo.attainment", "attainment")):  # fmt: skip
        row = figures.locator("tr", has=page.locator("td", has_text=re.compile(f"^{figure}$")))
        expect(row).to_have_count(1)
        if key == "dollarsPerJob":
            cells = [format_figure(run["cost"][key], "$") for run in (before, document)]
            expect(row.locator("td").nth(1)).to_have_text(cells[0])
            expect(row.locator("td").nth(2)).to_have_text(cells[1])
        if key == "attainment":
            expect(row.locator("td").nth(1)).to_contain_text(f"{before['slo'][key] * 100:.2f}%")
    rules = page.locator("#compare-rules li")
    expect(rules).to_have_count(len(FIGURE_RULES))
    for rule in FIGURE_RULES:
        expect(rules.filter(has_text=rule)).to_have_class("ok")
    figures.screenshot(path=artifact("report-compare-figures.png"))
    # The SLO's own charts: attainment per window (0-100%) and goodput.
    for chart_id in ("chart-slo-time", "chart-goodput-time"):
        chart = page.locator(f"svg#{chart_id}")
        expect(chart).to_be_visible()
        expect(chart.locator("polyline")).not_to_have_count(0)
    page.locator("svg#chart-slo-time").screenshot(path=artifact("report-slo-chart.png"))
    # The percentile chart's axis names p99, so the value there can be read.
    axis = page.locator("svg#chart-e2e-dist text.tick")
    for label in ("50%", "90%", "99%", "99.9%"):
        expect(axis.filter(has_text=label).first).to_be_visible()
    expect(page.locator("svg#chart-e2e-dist polyline")).to_have_count(1)
    for chart_id in ("chart-queue-time", "chart-workers-time", "chart-e2e-time"):
        expect(page.locator(f"svg#{chart_id}")).to_be_visible()
    page.screenshot(path=artifact("report-compare-cost-slo.png"), full_page=True)
    assert artifact("report-compare-cost-slo.png").stat().st_size > 0
