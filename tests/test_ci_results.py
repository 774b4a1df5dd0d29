"""CI results: --junitxml of a load run's thresholds, and the Markdown appended to
$GITHUB_STEP_SUMMARY by a load run and by `runpod-testkit check`."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runpod_testkit.check_command import ContractReport, markdown_report
from runpod_testkit.ci_results import (
    append_step_summary,
    load_run_markdown,
    thresholds_junit,
    write_thresholds_junit,
)
from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.workers import WorkerLedger
from runpod_testkit.thresholds import Threshold, evaluate

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = str(ROOT / "loadtests" / "locustfile.py")


def sample_stats() -> JobStats:
    stats = JobStats()
    for delay in (100, 200, 300, 400):
        stats.record_submitted()
        stats.record_terminal("COMPLETED", delay_time_ms=delay, execution_time_ms=50)
    return stats


def test_junit_has_one_testcase_per_rule_and_fails_the_failed_ones(tmp_path: Path) -> None:
    stats = sample_stats()
    rules = [Threshold.parse(text) for text in ("delayTime:p95<2000", "delayTime:max<150")]
    results = evaluate(rules, stats)
    path = tmp_path / "out" / "thresholds.xml"
    write_thresholds_junit(path, results)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == ["delayTime:p95<2000", "delayTime:max<150"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert "400" in (failure.get("message") or "")  # the observed value is named


def test_junit_fails_a_lost_worker() -> None:
    tree = thresholds_junit([], ["host_abc123"])
    cases = tree.getroot().findall("testsuite/testcase")
    assert [(case.get("classname"), case.get("name")) for case in cases] == [
        ("workers", "worker host_abc123")
    ]
    assert cases[0].find("failure") is not None


def test_load_run_markdown_shows_verdict_rules_and_metrics() -> None:
    stats = sample_stats()
    results = evaluate([Threshold.parse("delayTime:p95<2000")], stats)
    text = load_run_markdown(stats, results)
    assert text.startswith("## Load run: ✅ passed\n")
    assert "| `delayTime:p95<2000` |" in text
    assert "| delayTime | 4 | 200 | 400 | 400 | 400 |" in text
    assert "Jobs: submitted 4, COMPLETED 4" in text
    failed = load_run_markdown(stats, results, ["host_1"])
    assert failed.startswith("## Load run: ❌ failed\n")
    assert "worker `host_1` was lost" in failed


def test_step_summary_is_appended_only_when_set(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert append_step_summary("## one", {}) is None
    assert not summary.exists()
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    assert append_step_summary("## one", env) is None
    assert append_step_summary("## two\n", env) is None
    assert summary.read_text(encoding="utf-8") == "## one\n\n## two\n\n"
    problem = append_step_summary("x", {"GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "dir.md")})
    assert problem is not None
    assert "GITHUB_STEP_SUMMARY" in problem


def test_check_markdown_lists_what_did_not_pass() -> None:
    report = ContractReport(target="http://127.0.0.1:9/v2/ep", jobs_submitted=4, job_budget="25")
    for operation, check, outcome, reasons in (
        ("status", "shape", "FAIL", ["status -> HTTP 200: /delayTime | expected an integer"]),
        ("status", "timings", "PASS", []),
        ("run", "shape", "DRIFT", ["unknown field /requestId"]),
    ):
        report.results.add(operation, check, outcome, reasons)
    text = markdown_report(report)
    assert text.startswith("## Contract check: ❌ the contract did not hold\n")
    assert "Checks: 1 fail, 1 drift, 1 pass, 0 skip." in text
    assert "| status | shape | FAIL | status -> HTTP 200: /delayTime \\| expected" in text
    assert "| run | shape | DRIFT | unknown field /requestId |" in text
    assert "timings" not in text
    assert text.endswith("Jobs submitted: 4 (budget: 25).\n")


@pytest.mark.slow
def test_check_command_appends_its_summary(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_tiny.py").write_text(
        "def test_holds():\n    assert True\n\ndef test_breaks():\n    assert False, 'broken'\n",
        encoding="utf-8",
    )
    summary = tmp_path / "summary.md"
    summary.write_text("## an earlier step\n", encoding="utf-8")
    program = (
        "import sys\n"
        "from pathlib import Path\n"
        "from runpod_testkit.check_command import run_check\n"
        "from runpod_testkit.cli import build_parser\n"
        "args = build_parser().parse_args(['check', '--emulator'])\n"
        "sys.exit(run_check(args, suite_dir=Path(sys.argv[1])))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, str(suite)],
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## an earlier step\n## Contract check: ❌ the contract did not hold")
    assert "test_breaks | FAIL |" in text
    assert "broken" in text
    assert "test_holds" not in text


@pytest.mark.slow
def test_a_load_run_writes_junit_and_its_summary(tmp_path: Path) -> None:
    junit, summary = tmp_path / "reports" / "thresholds.xml", tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env.update(
        GITHUB_STEP_SUMMARY=str(summary),
        LOCUST_JUNITXML=str(junit),
        LOCUST_THRESHOLD='["delayTime:p95<60s", "executionTime:max<1"]',
        LOCUST_PROBE_INPUT='{"sleep_ms": 20}',
        LOCUST_POLL_INTERVAL="0.05",
        LOCUST_HEALTH_INTERVAL="0",
    )
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "-u", "2", "-r", "2",
         "--run-time", "2s", "--only-summary", "RunPollUser"],
        env=env, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-3000:]
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert [case.get("name") for case in cases] == ["delayTime:p95<60s", "executionTime:max<1"]
    assert [case.find("failure") is None for case in cases] == [True, False]
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## Load run: ❌ failed\n")
    assert "| `executionTime:max<1` |" in text
    assert "❌ FAIL" in text
    assert "| executionTime |" in text


def test_worker_ledger_keeps_what_each_worker_shipped_and_names_the_lost() -> None:
    ledger = WorkerLedger()
    first = JobStats()
    first.record_submitted(3)
    first.record_terminal("COMPLETED", delay_time_ms=10)
    assert ledger.note_report("w1", first) is True
    assert ledger.note_report("w1", first) is False  # not its first jobs any more
    assert ledger.note_report("w2", JobStats()) is False  # nothing shipped yet
    assert ledger.note_lost("w1") is True
    assert ledger.note_lost("w1") is False
    assert ledger.to_json() == {
        "reported": [
            {"id": "w1", "submitted": 6, "ended": 2},
            {"id": "w2", "submitted": 0, "ended": 0},
        ],
        "lost": [{"id": "w1", "submitted": 6, "ended": 2}],
    }
    (line,) = ledger.verdict_lines()
    assert line.startswith("LOST  worker w1: ")
    assert "6 jobs submitted, 2 ended" in line
    ledger.clear()
    assert ledger.lost == []
    assert ledger.verdict_lines() == []
