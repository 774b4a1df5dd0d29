"""Browser tests in headless chromium: the web UI's "Job stats" tab while a real Locust run
goes, and the HTML report of a real headless run.

Debian's chromium (`which chromium`; .ci/run installs it with apt-get), driven by Playwright's
sync API; Playwright's own browser download is never used. Without chromium these tests fail
and say so. Screenshots are kept as artifacts in artifacts/ (gitignored). Every process and
wait is bounded; everything talks to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.polling import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = str(ROOT / "loadtests" / "locustfile.py")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 30_000
PAGE_POLL_S = 0.2
"""How often a wait looks at the page again."""
VARIED_INPUTS = json.dumps(
    [{"sleep_ms": 150 + 40 * i, "chunks": 3, "chunk_interval_ms": 60} for i in range(8)]
)
RUN_OPTIONS = (
    "--poll-interval", "0.1", "--health-interval", "0.5", "--probe-input", VARIED_INPUTS,
    "--emulator-workers-max", "3", "--emulator-cold-start-ms", "400",
    "--threshold", "delayTime:p95<30s", "--threshold", "e2e:p50<1",
)  # fmt: skip
METRIC_ROWS = ("delayTime (ms)", "executionTime (ms)", "e2e (ms)", "ttfc (ms)", "chunkGap (ms)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # CHROMIUM names another Chromium-family browser (GitHub's runners ship google-chrome).
    executable = shutil.which(os.environ.get("CHROMIUM", "chromium"))
    if executable is None:
        pytest.fail(
            "chromium is not installed, and the browser tests need it: install Debian's "
            "package (apt-get install chromium; .ci/run does this) or set CHROMIUM to a "
            "Chromium-family browser, then run them again"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def locust_web_ui(tmp_path: Path, *args: str) -> Iterator[str]:
    """A Locust web UI run on loopback (its own emulator); yields the UI's URL. Stopped at the
    end with a Ctrl-C (which cancels the jobs in flight), killed if that does not work."""
    port = free_port()
    output = (tmp_path / "locust.out").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-host", "127.0.0.1",
         "--web-port", str(port), *args],
        cwd=tmp_path,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
        os.killpg(process.pid, signal.SIGINT)
        process.wait(60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        output.close()


def job_stats_rows(web: str) -> list[dict[str, Any]]:
    """The tab's rows as /stats/requests carries them (empty before the UI answers)."""
    try:
        body = httpx.get(f"{web}/stats/requests", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return []
    for entry in body.get("extended_stats") or []:
        if entry.get("key") == "job-stats":
            rows: list[dict[str, Any]] = entry["data"]
            return rows
    return []


def row_cells(page: Page, statistic: str) -> list[str]:
    row = page.locator("tr").filter(has=page.get_by_role("cell", name=statistic, exact=True))
    expect(row).to_have_count(1)
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def count_of(page: Page, statistic: str) -> int:
    return int(row_cells(page, statistic)[1])


# --------------------------------------------------------------------------- tests


def test_web_ui_job_stats_tab_shows_live_numbers(page: Page, tmp_path: Path) -> None:
    with locust_web_ui(
        tmp_path, "--autostart", "-u", "6", "-r", "6", "--run-time", "90s", *RUN_OPTIONS
    ) as web:

        def completed_jobs() -> bool:
            rows = {row["statistic"]: row for row in job_stats_rows(web)}
            return rows.get("delayTime (ms)", {}).get("count", 0) >= 5

        wait_until(completed_jobs, 60, "the run's first completed jobs", interval_s=PAGE_POLL_S)
        page.goto(web)
        page.get_by_role("tab", name="Job stats").click()
        expect(page).to_have_url(re.compile(r"[?&]tab=job-stats"))
        table = page.get_by_role("table")
        expect(table).to_be_visible()
        headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
        assert headers == [
            "Job statistic", "count", "min", "p50", "p90", "p95", "p99", "p99.9", "max", "mean",
            "detail",
        ]  # fmt: skip

        delay = row_cells(page, "delayTime (ms)")
        assert int(delay[1]) >= 5
        numbers = [int(cell) for cell in delay[2:9]]  # min, p50 ... p99.9, max
        assert numbers == sorted(numbers)
        assert float(delay[9]) > 0  # mean
        for statistic in METRIC_ROWS:
            row_cells(page, statistic)
        assert count_of(page, "jobs COMPLETED") >= 5
        assert row_cells(page, "threshold delayTime:p95<30s")[-1].startswith("PASS: observed")
        assert row_cells(page, "threshold e2e:p50<1")[-1].startswith("FAIL: observed")
        queue = row_cells(page, "/health inQueue")
        assert int(queue[1]) >= 1
        assert re.fullmatch(r"now \d+ +[▁▂▃▄▅▆▇█]+", queue[-1]), queue[-1]
        assert int(row_cells(page, "/health workers")[8]) >= 1  # max workers seen

        # It follows the run: the tab updates at the UI's own polling, without a reload.
        first = count_of(page, "e2e (ms)")
        wait_until(
            lambda: count_of(page, "e2e (ms)") > first,
            30,
            "the tab to update",
            interval_s=PAGE_POLL_S,
        )
        page.screenshot(path=artifact("webui-job-stats-tab.png"), full_page=True)

        # The UI's Reset button resets the job statistics too.
        before = count_of(page, "jobs submitted")
        page.get_by_role("button", name="Reset").click()
        wait_until(
            lambda: count_of(page, "jobs submitted") < before,
            30,
            "the tab to reset",
            interval_s=PAGE_POLL_S,
        )

        downloads = {path: httpx.get(f"{web}/{path}", timeout=10) for path in ("job-stats/json",
                     "job-stats/csv", "job-stats/report")}  # fmt: skip
        assert all(reply.status_code == 200 for reply in downloads.values())
        document = downloads["job-stats/json"].json()
        assert list(document)[:3] == ["metrics", "jobs", "thresholds"]
        assert downloads["job-stats/csv"].text.startswith("metric,count,min,p50,")
        assert 'id="chart-workers-time"' in downloads["job-stats/report"].text

        page.get_by_role("tab", name="Download Data").click()
        for title, href in (
            ("Download job statistics CSV", "./job-stats/csv"),
            ("Download job statistics JSON", "./job-stats/json"),
            ("Download job statistics HTML report", "./job-stats/report"),
            ("Job statistics: live page with queue and worker charts", "./job-stats/live"),
        ):
            expect(page.get_by_role("link", name=title)).to_have_attribute("href", href)

        page.goto(f"{web}/job-stats/live")
        expect(page.locator("#job-stats-table")).to_be_visible()
        expect(page.locator("svg#chart-queue-time")).to_be_visible()
        # (A flat line has no height, so "visible" does not apply to the lines themselves.)
        expect(page.locator("svg#chart-queue-time polyline")).not_to_have_count(0)
        page.screenshot(path=artifact("webui-job-stats-live.png"), full_page=True)


def test_html_report_renders_its_tables_and_charts(page: Page, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "-u", "6", "-r", "6",
         "--run-time", "8s", *RUN_OPTIONS, "--job-stats-html", str(report)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    # Exit 3: the e2e:p50<1 threshold fails on purpose (the report shows a FAIL too).
    assert result.returncode == 3, result.stderr[-3000:]
    page.goto(report.as_uri())
    for element_id in ("job-stats-table", "job-outcomes", "thresholds-table", "stream-summary"):
        expect(page.locator(f"#{element_id}")).to_be_visible()
    cells = page.locator("#job-stats-table tr", has_text="delayTime").locator("td")
    assert int(cells.first.inner_text()) > 0
    charts = [
        *(f"chart-{metric}-{kind}" for metric in ("delayTime", "executionTime", "e2e",
                                                  "ttfc", "chunkGap") for kind in ("time", "dist")),
        "chart-jobs-time", "chart-queue-time", "chart-workers-time",
    ]  # fmt: skip
    for chart_id in charts:
        chart = page.locator(f"svg#{chart_id}")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100, chart_id
        expect(chart.locator("polyline").first).to_be_attached()
    expect(page.locator(".badge.fail")).to_have_text("FAIL")
    page.screenshot(path=artifact("job-stats-report.png"), full_page=True)
