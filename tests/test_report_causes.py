"""Reports that name causes: failures grouped by what the endpoint did
(runpod_testkit.suite.causes), printed before the per-check detail by `pytest contract` and by
`runpod-testkit check`; how the verdict's checks relate to pytest's tests; and no false pass for
/cancel and /retry on a server that has no such route (tests/targets/:
no-cancel-or-retry-route)."""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from runpod_testkit.check_command import ContractReport, render_report
from runpod_testkit.client import ApiResponse
from runpod_testkit.suite.causes import cause_lines, cause_of, checks_from_tests, group_causes
from runpod_testkit.suite.plugin import ContractChecks
from tests.targets import serving, variant
from tests.test_contract_suite import CONTRACT, TEST_KEY, Planned, execute, live, pytest_contract

DEV_SERVER_405 = (
    "{op}: {check} (read 1 of 'test-{n}1f0e'): status: POST http://127.0.0.1:{port}/v2/dev/status/"
    "test-{n}1f0e answered 405 Method Not Allowed{tries}: expected a 2xx answer; body: "
    '\'{{"detail":"Method Not Allowed"}}\''
)


def dev_server_reason(op: str, check: str, n: int, port: int = 8000, tries: str = "") -> str:
    return DEV_SERVER_405.format(op=op, check=check, n=n, port=port, tries=tries)


def test_the_same_answer_under_many_checks_is_one_cause() -> None:
    reasons = [
        dev_server_reason("status", "shape", 1),
        dev_server_reason("status", "lifecycle", 2, port=8123, tries=" after 3 attempts"),
        dev_server_reason("stream", "drains", 3),
    ]
    causes = {cause_of(reason) for reason in reasons}
    assert causes == {"POST .../status/<id> answered 405 Method Not Allowed"}


def test_a_cause_keeps_status_codes_and_words_and_drops_ids_and_numbers() -> None:
    first = cause_of(
        "status: timings of 'job-1a': executionTime 1500 ms is more than 1200.5 ms passed",
        "status",
        "timings",
    )
    second = cause_of(
        "status: timings of 'job-2b': executionTime 90 ms is more than 12 ms passed",
        "status",
        "timings",
    )
    assert first == second == "executionTime N ms is more than N ms passed"
    shape = cause_of(
        "status: shape: status -> HTTP 200: /delayTime: 1.5 is not of type 'integer'",
        "status",
        "shape",
    )
    assert shape == "HTTP 200: /delayTime: N is not of type 'integer'"
    same_on_runsync = cause_of(
        "runsync: shape: runsync -> HTTP 200: /delayTime: 2.5 is not of type 'integer'",
        "runsync",
        "shape",
    )
    assert same_on_runsync == shape
    other = cause_of("cancel: queued-job: POST http://h/v2/e/cancel/x answered 404 Not Found")
    assert other == "POST .../cancel/<id> answered 404 Not Found"
    assert cause_of("GET http://h/v2/e/health answered 500 Internal Server Error") == (
        "GET .../health answered 500 Internal Server Error"
    )


def test_causes_count_distinct_checks_most_first() -> None:
    failures = [
        ("status", "shape", dev_server_reason("status", "shape", 1)),
        ("status", "shape", dev_server_reason("status", "shape", 2)),  # same check twice
        ("status", "lifecycle", dev_server_reason("status", "lifecycle", 3)),
        ("run", "shape", "run: shape: run -> HTTP 200: /status: 'in_queue' is not a job state"),
    ]
    causes = group_causes(failures)
    assert [cause.checks for cause in causes] == [
        ["status/shape", "status/lifecycle"],
        ["run/shape"],
    ]
    lines = cause_lines(failures)
    assert lines[0] == "failures by cause: 2 distinct causes of 3 failing checks, most first"
    assert lines[1] == "  2 checks: POST .../status/<id> answered 405 Method Not Allowed"
    assert lines[2] == "      status/shape, status/lifecycle"
    assert lines[3].startswith("  1 check: HTTP 200: /status:")
    assert cause_lines([]) == []


def test_a_long_reason_seen_by_several_checks_is_one_cause() -> None:
    """Reasons are cut for display only after grouping: cut first, each check's prefix (of its
    own length) would leave a different tail and one defect would read as several causes."""
    from runpod_testkit.suite.results import ContractResults

    defect = "HTTP 200: /delayTime: expected the required property 'delayTime' " + "x" * 300
    results = ContractResults()
    for n, (operation, check) in enumerate([("runsync", "shape"), ("status", "completed-output")]):
        prefix = (
            f"{operation} -> " if check == "shape" else f"{operation}: {check}: {operation} -> "
        )
        results.record(
            pytest.TestReport(
                f"contract/test_x.py::test_{n}",
                ("contract/test_x.py", n, f"test_{n}"),
                {},
                "failed",
                "Failed: " + prefix + defect,
                "call",
                user_properties=[("contract.operation", operation), ("contract.check", check)],
            )
        )
    lines = cause_lines(results.failures())
    assert lines[0].startswith("failures by cause: 1 distinct cause of 2 failing checks"), lines
    assert len(lines[1]) < 260, lines[1]  # the printed cause is still one capped line
    for row in results.rows.values():
        assert all(len(reason) <= 240 for reason in row.shown_reasons)


def test_check_report_names_the_causes_before_the_rows() -> None:
    report = ContractReport(target="http://127.0.0.1:1/v2/x")
    for n, (operation, check) in enumerate([("status", "shape"), ("stream", "drains")]):
        reason = dev_server_reason(operation, check, n)
        report.results.add(operation, check, "FAIL", [reason], ref="docs/job-states.md#order")
        report.results.tests.add(f"contract/test_x.py::test_{n}")
    report.results.tests.add("contract/test_x.py::test_extra")
    text = render_report(report)
    cause = "  2 checks: POST .../status/<id> answered 405 Method Not Allowed"
    assert cause in text
    assert text.index(cause) < text.index("\nstatus\n  FAIL  shape")
    assert "\n2 checks from 3 tests (a check is one operation x rule;" in text


def test_checks_from_tests_says_how_they_relate() -> None:
    assert checks_from_tests(1, 1).startswith("1 check from 1 test (")
    assert checks_from_tests(53, 64).startswith("53 checks from 64 tests (")


def _answer(content_type: str, content: bytes) -> ApiResponse:
    request = httpx.Request("GET", "http://127.0.0.1:1/v2/e/health")
    response = httpx.Response(
        200, headers={"content-type": content_type}, content=content, request=request
    )
    return ApiResponse("health", response, elapsed_ms=1.0)


def _status_answer(status_code: int, body: bytes) -> ApiResponse:
    request = httpx.Request("GET", "http://127.0.0.1:1/v2/e/status/a1")
    response = httpx.Response(
        status_code, headers={"content-type": "application/json"}, content=body, request=request
    )
    return ApiResponse("status", response, elapsed_ms=1.0)


def test_a_queued_job_skip_gives_no_cause_it_did_not_see() -> None:
    """cancel/queued-job is skipped when its job was not queued; against the dev server /status
    answered 405, and the reason said a warm worker had taken the job."""
    from contract.test_cancel import _how_it_left_the_queue

    unreadable = _status_answer(405, b'{"detail":"Method Not Allowed"}')
    running = _status_answer(200, b'{"id":"a1","status":"IN_PROGRESS"}')
    ended = _status_answer(200, b'{"id":"a1","status":"COMPLETED"}')
    assert _how_it_left_the_queue(unreadable) == ""
    assert _how_it_left_the_queue(running) == " (a worker took it at once)"
    assert _how_it_left_the_queue(ended) == " (it had run and ended already)"


def test_a_json_body_under_a_text_plain_content_type_is_named() -> None:
    checks = ContractChecks(SimpleNamespace(strict=False), SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(pytest.fail.Exception) as failed:
        checks.json_content_type(_answer("text/plain; charset=utf-8", b'{"jobs": {}}'))
    assert "content type 'text/plain; charset=utf-8' on a JSON body" in str(failed.value)
    assert "expected application/json" in str(failed.value)
    checks.json_content_type(_answer("application/json", b"{}"))  # no failure


BROKEN = variant("no-cancel-or-retry-route")
SELECTED = "unknown or cancel or retry"
"""The checks of /cancel and /retry (and their unknown-job siblings): enough for this variant."""

_CHECK_A_FOLDER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from runpod_testkit.check_command import run_check\n"
    "from runpod_testkit.cli import build_parser\n"
    "args = build_parser().parse_args(['check', *sys.argv[2:]])\n"
    "sys.exit(run_check(args, suite_dir=Path(sys.argv[1])))\n"
)


def _suite_of(folder: Path, *modules: str) -> Path:
    """A copy of the contract suite holding only `modules` (and what they share)."""
    folder.mkdir()
    for name in ("__init__.py", "conftest.py", "_support.py", *modules):
        shutil.copy(CONTRACT / name, folder / name)
    return folder


@pytest.mark.slow
def test_a_server_without_cancel_or_retry_routes_fails_their_unknown_job_checks(
    tmp_path: Path,
) -> None:
    """Both reports name the missing routes as causes; `unknown-job-404` no longer passes just
    because every path is 404; the JUnit file says how its tests relate to the checks."""
    junit = tmp_path / "junit.xml"
    suite_copy = _suite_of(tmp_path / "suite", "test_cancel.py", "test_retry.py")
    with serving([BROKEN], api_key=TEST_KEY) as base_url:
        endpoint = live(f"{base_url}/{BROKEN.name}", job_timeout_s=BROKEN.job_timeout_s)
        pytest_run = Planned(
            "pytest", pytest_contract(*endpoint, "-k", SELECTED, junit=junit), junit=junit
        )
        check_run = Planned(
            "check", [sys.executable, "-c", _CHECK_A_FOLDER, str(suite_copy), *endpoint]
        )
        with ThreadPoolExecutor(2) as pool:  # both mostly wait on the slow probe jobs
            run, check = pool.map(execute, [pytest_run, check_run])
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.describe()
    for operation in ("cancel", "retry"):
        row = run.rows[(operation, "unknown-job-404")]
        assert row.outcome == "FAIL", run.describe()
        assert "the route is not served" in row.failures[0]
    assert run.rows[("status", "unknown-job-404")].outcome == "PASS", run.describe()
    for output in (run.stdout, check.stdout):
        assert "failures by cause: " in output, output[-3000:]
        causes = output[output.index("failures by cause: ") :]
        assert "POST .../cancel/<id> answered 404 Not Found\n" in causes, causes
        assert "POST .../retry/<id> answered 404 Not Found\n" in causes, causes
        cancel_line = causes.index("POST .../cancel/<id> answered 404 Not Found")
        assert "cancel/unknown-job-404" in causes[cancel_line:].splitlines()[1]
    assert run.stdout.index("failures by cause: ") < run.stdout.index("\ncancel\n")
    assert check.returncode == 1, check.stdout + check.stderr
    assert check.stdout.index("failures by cause: ") < check.stdout.index("\ncancel\n")
    properties = {
        prop.get("name"): prop.get("value") for prop in ET.parse(junit).getroot().iter("property")
    }
    tests = sum(1 for _ in ET.parse(junit).getroot().iter("testcase"))
    assert properties["contract.tests"] == str(tests)
    assert properties["contract.checks"] == str(len(run.rows))
    summary = f"{len(run.rows)} checks from {tests} tests ("
    assert str(properties["contract.summary"]).startswith(summary)
    assert f"\n{summary}" in run.stdout


@pytest.mark.slow
def test_a_misspelled_state_fails_at_once_naming_the_documented_one(tmp_path: Path) -> None:
    """status-lowercase answers `in_queue`, `completed`: a violation, reported as the documented
    state spelled another way, and without waiting out --job-timeout for a job that "never ends"."""
    lowercase = variant("status-lowercase")
    junit = tmp_path / "junit.xml"
    with serving([lowercase], api_key=TEST_KEY) as base_url:
        options = live(f"{base_url}/{lowercase.name}", job_timeout_s=30)
        run = execute(
            Planned(
                "lowercase", pytest_contract(*options, "-k", "own_id", junit=junit), junit=junit
            )
        )
    row = run.rows[("run", "unique-ids")]
    assert row.outcome == "FAIL", run.describe()
    assert "reads 'in_queue', the documented 'IN_QUEUE' spelled another way" in row.failures[0]
    assert run.seconds < 25, run.describe()  # it did not wait for the job to "end"
