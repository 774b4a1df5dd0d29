"""Self-tests of the contract suite: does it judge endpoints correctly?

The suite runs as a user runs it, in subprocesses in live mode (`pytest contract --endpoint-url
URL`), against endpoint variants on loopback (tests/targets/): every BREAK must fail
with a failing row of what it broke, every FAITHFUL variant must pass. Besides: the runpod-python
dev server (the preflight stops the run: it has no /health), a canary key (written nowhere),
Ctrl-C (jobs cancelled, summary printed), --max-jobs (counted in the emulator's job log), and the
`runpod-testkit check` command. The subprocess runs share one pool (`runs`), so the whole module
takes about as long as its slowest run.
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
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from runpod_testkit.check_command import (
    EXIT_BROKEN,
    EXIT_HELD,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ContractReport,
    render_report,
)
from runpod_testkit.cli import main
from runpod_testkit.emulator.server import EmulatorProcess, running_emulator
from runpod_testkit.suite.results import CheckRow
from tests.devserver import running_devserver
from tests.targets import (
    ECHO_KEY_VARIANT,
    VARIANT_CONFIG,
    VARIANTS,
    ForwardingProxy,
    Variant,
    serving,
    serving_apps,
    variant,
)

# The shared pool of suite runs takes a minute or two (more on a busy machine): more than
# pytest-timeout's default allows the first test, which waits for it.
pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parent.parent
CONTRACT = REPO / "contract"
TEST_KEY = "rpa_SUITE_SELFTEST_0123456789"
CANARY = "canary-9f3b2c7e-SECRET"
RUN_DEADLINE_S = 200.0
"""A suite run that has not ended by then has hung: its tests fail instead of waiting on."""
PARALLEL_RUNS = 16
"""Suite subprocesses at once: they mostly wait on jobs, so many fit on 2 cores; but each
starts a pytest session (seconds of CPU), and 32 at once starved each other past their deadline
on a loaded CI machine."""

LONG_RUNS = frozenset(
    {
        "slow-cold-start",
        "status-lowercase",
        "health-frozen",
        "stream-repeats-chunks",
        "terminal-status-flips-back",
        "devserver",
    }
)
"""Runs that take longest (cold starts, or checks that wait out --job-timeout): started first."""

BREAKS = [each for each in VARIANTS if each.kind == "break"]
FAITHFUL = [each for each in VARIANTS if each.kind == "faithful"]


# --- running the suite and reading its JUnit ---------------------------------------------------


_WORST_FIRST = ("FAIL", "DRIFT", "PASS", "SKIP")


@dataclass
class Row:
    """One operation x check of a run: the outcomes of its tests, and their messages."""

    outcomes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The worst outcome, as the suite's own summary shows it."""
        return next(name for name in _WORST_FIRST if name in self.outcomes)


@dataclass
class SuiteRun:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    rows: dict[tuple[str, str], Row]
    cwd: Path
    junit: Path | None
    timed_out: bool = False

    def with_outcome(self, outcome: str) -> set[tuple[str, str]]:
        return {key for key, row in self.rows.items() if row.outcome == outcome}

    @property
    def failing(self) -> set[tuple[str, str]]:
        return self.with_outcome("FAIL")

    def describe(self) -> str:
        """For assertion messages: how it ended, and every row with its first message."""
        ending = "TIMED OUT" if self.timed_out else f"exit {self.returncode}"
        lines = [f"{self.name}: {ending} after {self.seconds:.1f} s"]
        for key in sorted(self.rows):
            row = self.rows[key]
            message = (row.failures or row.skips or row.drift or [""])[0][:300]
            lines.append(f"  {key[0]}/{key[1]}: {row.outcome} {message}".rstrip())
        if not self.rows:
            lines.append(self.stdout[-3000:] + self.stderr[-3000:])
        return "\n".join(lines)


def read_junit(path: Path | None) -> dict[tuple[str, str], Row]:
    """The operation x check rows of a JUnit file the suite wrote (none if it wrote none)."""
    rows: dict[tuple[str, str], Row] = {}
    if path is None or not path.exists():
        return rows
    for case in ET.parse(path).getroot().iter("testcase"):
        props = [(prop.get("name", ""), prop.get("value", "")) for prop in case.iter("property")]
        named = dict(props)
        key = (
            named.get("contract.operation", "(unmarked)"),
            named.get("contract.check", case.get("name", "")),
        )
        row = rows.setdefault(key, Row())
        drift = [value for name, value in props if name == "drift"]
        problems = [element for element in case if element.tag in ("failure", "error")]
        skipped = case.find("skipped")
        if problems:
            row.outcomes.append("FAIL")
            row.failures += [element.get("message", "") for element in problems]
        elif skipped is not None:
            row.outcomes.append("SKIP")
            row.skips.append(skipped.get("message", ""))
        else:
            row.outcomes.append("DRIFT" if drift else "PASS")
        row.drift += drift
    return rows


def child_env(api_key: str | None) -> dict[str, str]:
    """This environment without any Runpod setting, plus the key to use."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("RUNPOD_") and name != "ENDPOINT_ID"
    }
    if api_key is not None:
        env["RUNPOD_API_KEY"] = api_key
    env["PYTHONUNBUFFERED"] = "1"
    return env


def pytest_contract(*options: str, junit: Path, cache_dir: Path | None = None) -> list[str]:
    """`pytest contract` as a user types it, writing JUnit (and its cache only where told)."""
    cache = ["-o", f"cache_dir={cache_dir}"] if cache_dir else ["-p", "no:cacheprovider"]
    junit_option = ["--junitxml", str(junit)]
    return [sys.executable, "-m", "pytest", str(CONTRACT), *cache, *junit_option, *options]


def check_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "runpod_testkit", "check", *options]


def live(endpoint_url: str, *more: str, job_timeout_s: float = 20.0) -> list[str]:
    """Live-mode options for a target of the self-tests' own (destructive checks allowed)."""
    timeout = f"{job_timeout_s:g}"
    return ["--endpoint-url", endpoint_url, "--job-timeout", timeout, "--allow-destructive", *more]


@dataclass(frozen=True)
class Planned:
    name: str
    command: list[str]
    api_key: str | None = TEST_KEY
    junit: Path | None = None
    cwd: Path = REPO
    deadline_s: float = RUN_DEADLINE_S


def execute(plan: Planned) -> SuiteRun:
    """Run one planned command to its end or its deadline (then it is killed)."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            plan.command,
            cwd=plan.cwd,
            env=child_env(plan.api_key),
            capture_output=True,
            text=True,
            timeout=plan.deadline_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return SuiteRun(
            plan.name,
            -1,
            _text(exc.stdout),
            _text(exc.stderr),
            time.monotonic() - started,
            read_junit(plan.junit),
            plan.cwd,
            plan.junit,
            timed_out=True,
        )
    return SuiteRun(
        plan.name,
        done.returncode,
        done.stdout,
        done.stderr,
        time.monotonic() - started,
        read_junit(plan.junit),
        plan.cwd,
        plan.junit,
    )


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def matches(broken: Variant, key: tuple[str, str]) -> bool:
    """Whether a failing row names what the variant broke: its operation, or a check whose
    name carries one of its words (`key-401` for no-key-401 and wrong-key-401, say)."""
    operation, check = key
    if not broken.caught_by:
        return True
    return any(word == operation or word in check for word in broken.caught_by)


def files_containing(folder: Path, secret: str) -> list[str]:
    """Every file under `folder` whose bytes contain `secret`."""
    needle = secret.encode()
    return [
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    ]


# --- every subprocess run, in one pool ---------------------------------------------------------


SERVED = {
    **{each.name: each for each in VARIANTS},
    # Runs beyond the first against one variant get an endpoint of their own.
    "extra-fields-strict": variant("extra-fields"),
    "extra-fields-check": variant("extra-fields"),
    "extra-fields-check-strict": variant("extra-fields"),
    "completed-without-timings-check": variant("completed-without-timings"),
}
"""Endpoint name -> variant, for the one server of the pooled runs."""


def _plans(folder: Path, variants_url: str, canary_url: str, dev_url: str) -> list[Planned]:
    plans: list[Planned] = []
    for each in VARIANTS:
        junit = folder / f"{each.name}.xml"
        options = live(f"{variants_url}/{each.name}", job_timeout_s=each.job_timeout_s)
        plans.append(Planned(each.name, pytest_contract(*options, junit=junit), junit=junit))
        if each.drift:
            junit = folder / f"{each.name}-strict.xml"
            options = live(f"{variants_url}/{each.name}-strict", "--strict")
            command = pytest_contract(*options, junit=junit)
            plans.append(Planned(f"{each.name} --strict", command, junit=junit))
    junit = folder / "devserver.xml"
    command = pytest_contract("--endpoint-url", f"{dev_url}/dev", "--job-timeout", "5", junit=junit)
    plans.append(Planned("devserver", command, junit=junit))
    plans += _canary_plans(folder, canary_url)
    plans += _check_plans(folder, variants_url)
    plans += _fault_plans(folder)
    return plans


TRANSIENT_FAULTS = json.dumps(
    {
        "operations": {
            "status": {"503": 0.1, "502": 0.05, "reset": 0.05},
            "health": {"500": 0.1},
            "stream": {"503": 0.1},
        }
    }
)
"""Faults on reads that the client's retries ride out within --job-timeout."""
PERMANENT_FAULTS = json.dumps({"operations": {"status": {"503": 1.0}}})
ONE_STATUS_CHECK = "test_every_status_answer_has_the_job_shape and completed_trace"
"""The permanent-fault run runs one check: every status call backs off for about 8 s."""


def _fault_plans(folder: Path) -> list[Planned]:
    """The suite against its own emulator with faults injected (--emulator-faults)."""
    plans = []
    for name, options in (
        ("faults transient emulator", ["--emulator", "--emulator-faults", TRANSIENT_FAULTS]),
        ("faults transient mock", ["--emulator-faults", TRANSIENT_FAULTS]),
        (
            "faults permanent emulator",
            ["--emulator", "--emulator-faults", PERMANENT_FAULTS, "-k", ONE_STATUS_CHECK],
        ),
    ):
        junit = folder / f"{name.replace(' ', '-')}.xml"
        plans.append(Planned(name, pytest_contract(*options, junit=junit), junit=junit))
    return plans


def _canary_plans(folder: Path, canary_url: str) -> list[Planned]:
    """Runs with the canary key, each in a folder of its own (scanned afterwards), with
    failures present: mock mode with an output schema nothing meets, live mode (with -vv)
    against an endpoint that echoes the key back, and the check command against it."""
    mock, live_run, check = (
        folder / name for name in ("canary-mock", "canary-live", "canary-check")
    )
    for each in (mock, live_run, check):
        each.mkdir()
    impossible = mock / "output.schema.json"
    impossible.write_text(json.dumps({"type": "string", "pattern": "^never$"}), encoding="utf-8")
    echo_url = f"{canary_url}/{ECHO_KEY_VARIANT.name}"
    return [
        Planned(
            "canary mock",
            pytest_contract(
                "--output-schema",
                str(impossible),
                junit=mock / "junit.xml",
                cache_dir=mock / "cache",
            ),
            api_key=CANARY,
            junit=mock / "junit.xml",
            cwd=mock,
        ),
        Planned(
            "canary live",
            pytest_contract(
                *live(echo_url), "-vv", junit=live_run / "junit.xml", cache_dir=live_run / "cache"
            ),
            api_key=CANARY,
            junit=live_run / "junit.xml",
            cwd=live_run,
        ),
        Planned(
            "canary check",
            check_command(*live(echo_url), "--junitxml", str(check / "junit.xml")),
            api_key=CANARY,
            junit=check / "junit.xml",
            cwd=check,
        ),
    ]


def _check_plans(folder: Path, variants_url: str) -> list[Planned]:
    wheel = folder / "wheel" / "site-packages" / "runpod_testkit" / "_data" / "contract"
    wheel.parent.mkdir(parents=True)
    shutil.copytree(CONTRACT, wheel, ignore=shutil.ignore_patterns("__pycache__"))
    as_from_a_wheel = (
        "import sys\n"
        "from pathlib import Path\n"
        "from runpod_testkit.check_command import run_check\n"
        "from runpod_testkit.cli import build_parser\n"
        "args = build_parser().parse_args(['check', '--emulator'])\n"
        "sys.exit(run_check(args, suite_dir=Path(sys.argv[1])))\n"
    )
    emulator_junit = folder / "check-emulator.xml"
    return [
        Planned(
            "check emulator",
            check_command("--emulator", "--junitxml", str(emulator_junit)),
            junit=emulator_junit,
        ),
        Planned(
            "check break",
            check_command(*live(f"{variants_url}/completed-without-timings-check")),
        ),
        Planned("check drift", check_command(*live(f"{variants_url}/extra-fields-check"))),
        Planned(
            "check strict",
            check_command(*live(f"{variants_url}/extra-fields-check-strict", "--strict")),
        ),
        Planned(
            "check wheel layout",
            [sys.executable, "-c", as_from_a_wheel, str(wheel)],
            cwd=folder / "wheel",
        ),
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """Every subprocess run of this module, in parallel: the suite against each variant (and
    under --strict against the drift ones), the dev server, the canary runs, and the check
    command. Variants are served by one loopback server; the dev server sits behind a proxy
    that gives it an endpoint URL."""
    folder = tmp_path_factory.mktemp("runs")
    with ExitStack() as stack:
        variants_url = stack.enter_context(serving(SERVED, api_key=TEST_KEY))
        canary_url = stack.enter_context(serving([ECHO_KEY_VARIANT], api_key=CANARY))
        dev_server = stack.enter_context(running_devserver())
        dev_url = stack.enter_context(serving_apps({"dev": ForwardingProxy(dev_server)}))
        plans = _plans(folder, variants_url, canary_url, dev_url)
        plans.sort(key=lambda plan: plan.name not in LONG_RUNS)  # so that none starts last
        with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
            futures = {plan.name: pool.submit(execute, plan) for plan in plans}
            return {name: future.result() for name, future in futures.items()}


# --- breaks and faithful variants --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("broken", BREAKS, ids=lambda each: each.name)
def test_suite_fails_a_break_naming_what_broke(broken: Variant, runs: dict[str, SuiteRun]) -> None:
    run = runs[broken.name]
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, (
        f"{broken.name} ({broken.what}) was not failed:\n{run.describe()}"
    )
    named = {key for key in run.failing if matches(broken, key)}
    assert named, (
        f"{broken.name} ({broken.what}): no failing check of {broken.caught_by}:\n{run.describe()}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("faithful", FAITHFUL, ids=lambda each: each.name)
def test_suite_passes_a_faithful_endpoint(faithful: Variant, runs: dict[str, SuiteRun]) -> None:
    run = runs[faithful.name]
    assert run.returncode == pytest.ExitCode.OK, (
        f"{faithful.name} ({faithful.what}) was failed:\n{run.describe()}"
    )
    assert run.with_outcome("PASS"), f"nothing passed:\n{run.describe()}"
    drifted = run.with_outcome("DRIFT")
    if faithful.drift:
        assert drifted, f"{faithful.name}: unknown fields were not reported as drift"
        assert "drift fails under --strict" in run.stdout
    else:
        assert not drifted, f"{faithful.name}: drift reported:\n{run.describe()}"


@pytest.mark.slow
def test_strict_fails_the_drift_and_names_it(runs: dict[str, SuiteRun]) -> None:
    run = runs["extra-fields --strict"]
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.describe()
    messages = [message for key in run.failing for message in run.rows[key].failures]
    assert messages, run.describe()
    for message in messages:
        assert "--strict" in message, message
        assert "requestId" in message or "stale" in message or "seq" in message, message


@pytest.mark.slow
def test_every_variant_run_ends_with_the_summary(runs: dict[str, SuiteRun]) -> None:
    for each in VARIANTS:
        run = runs[each.name]
        assert not run.timed_out, run.describe()
        assert "Runpod contract" in run.stdout, f"{each.name}: no summary:\n{run.stdout[-2000:]}"
        match = re.search(r"jobs submitted: (\d+) \(budget: 25\)", run.stdout)
        assert match, f"{each.name}: no job count:\n{run.stdout[-2000:]}"
        assert int(match.group(1)) <= 25
        assert "INTERNALERROR" not in run.stdout + run.stderr, each.name


# --- the runpod-python dev server --------------------------------------------------------------


@pytest.mark.slow
def test_dev_server_run_stops_at_the_preflight(runs: dict[str, SuiteRun]) -> None:
    """The dev server serves no endpoint URL and no /health: the preflight's 404 on /health
    (no endpoint with that id) stops the run before any check, exit status 2, one line."""
    run = runs["devserver"]
    assert not run.timed_out, run.describe()
    assert run.returncode == 2, run.describe()
    output = run.stdout + run.stderr
    assert "INTERNALERROR" not in output
    assert "preflight: no endpoint 'dev'" in output, output[-2000:]
    assert "(HTTP 404 on /health)" in output
    assert not run.rows, run.describe()  # no check ran


# --- the key never leaks -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["canary mock", "canary live", "canary check"])
def test_canary_key_is_written_nowhere(name: str, runs: dict[str, SuiteRun]) -> None:
    run = runs[name]
    assert not run.timed_out, run.describe()
    assert run.returncode == 1, f"expected failures present:\n{run.describe()}"
    assert run.failing, run.describe()
    assert CANARY not in run.stdout, f"{name}: the key is in stdout"
    assert CANARY not in run.stderr, f"{name}: the key is in stderr"
    # Its own folder holds its JUnit XML (and the pytest cache, for the pytest runs).
    assert run.junit is not None
    assert run.junit.exists()
    assert run.cwd != REPO
    written = files_containing(run.cwd, CANARY)
    assert not written, f"{name}: the key is in {written}"


# --- injected faults -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["emulator", "mock"])
def test_transient_faults_on_reads_are_ridden_out(mode: str, runs: dict[str, SuiteRun]) -> None:
    run = runs[f"faults transient {mode}"]
    assert run.returncode == 0, run.describe()
    assert run.rows
    assert all(row.outcome in ("PASS", "SKIP") for row in run.rows.values()), run.describe()
    # The faults did happen, and the run says how many.
    summary = re.search(r"^faults injected: (.+)$", run.stdout, re.M)
    assert summary, run.stdout[-2000:]
    assert re.search(r"status\.(503|502|reset)=[1-9]", summary.group(1)), summary.group(1)


@pytest.mark.slow
def test_permanent_faults_fail_naming_the_operation(runs: dict[str, SuiteRun]) -> None:
    run = runs["faults permanent emulator"]
    assert run.returncode == 1, run.describe()
    assert run.failing == {("status", "shape")}, run.describe()
    message = " ".join(run.rows[("status", "shape")].failures)
    assert "status: GET" in message
    assert "503" in message
    assert "after 6 attempts" in message  # retried with backoff, then given up
    assert re.search(r"^faults injected: status\.503=\d+$", run.stdout, re.M), run.stdout[-2000:]


# --- runpod-testkit check ------------------------------------------------------------------------


@pytest.mark.slow
def test_check_command_self_check_holds(runs: dict[str, SuiteRun]) -> None:
    run = runs["check emulator"]
    assert run.returncode == EXIT_HELD, run.stdout + run.stderr
    assert "target: the emulator (self-check)" in run.stdout
    assert "verdict: the contract HELD" in run.stdout
    assert re.search(r"^jobs submitted: [1-9]\d* \(budget: unlimited\)$", run.stdout, re.M)
    for operation in ("run", "runsync", "status", "stream", "cancel", "retry", "health"):
        assert re.search(rf"^{re.escape(operation)}$", run.stdout, re.M), operation
    assert re.search(r"^  PASS  \S+ +\[docs/", run.stdout, re.M)
    assert run.rows, "--junitxml was not passed through"
    assert all(row.outcome in ("PASS", "SKIP") for row in run.rows.values())


@pytest.mark.slow
def test_check_command_names_the_failing_check_and_why(runs: dict[str, SuiteRun]) -> None:
    run = runs["check break"]
    assert run.returncode == EXIT_BROKEN, run.stdout + run.stderr
    report = run.stdout
    assert "verdict: the contract did NOT hold" in report
    assert re.search(r"^jobs submitted: \d+ \(budget: 25\)", report, re.M)
    status = report[report.index("\nstatus\n") :]
    failing = re.search(r"^  FAIL  (\S+).*\n {8}(.+)$", status, re.M)
    assert failing, report
    assert "executionTime" in failing.group(2) or "delayTime" in failing.group(2), report
    assert "Traceback" not in report + run.stderr


@pytest.mark.slow
def test_check_command_reports_drift_and_strict_fails_it(runs: dict[str, SuiteRun]) -> None:
    drift, strict = runs["check drift"], runs["check strict"]
    assert drift.returncode == EXIT_HELD, drift.stdout + drift.stderr
    assert re.search(r"^  DRIFT .*\n {8}.*requestId", drift.stdout, re.M), drift.stdout
    assert "--strict makes them fail" in drift.stdout
    assert strict.returncode == EXIT_BROKEN, strict.stdout + strict.stderr
    assert re.search(r"^  FAIL  .*\n {8}.*drift \(--strict\)", strict.stdout, re.M)


@pytest.mark.slow
def test_check_command_runs_the_suite_as_a_wheel_installs_it(runs: dict[str, SuiteRun]) -> None:
    """runpod_testkit/_data/contract, no repository conftest.py or pyproject.toml around it."""
    run = runs["check wheel layout"]
    assert run.returncode == EXIT_HELD, run.stdout[-3000:] + run.stderr[-3000:]
    assert "verdict: the contract HELD" in run.stdout


def _no_runpod_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RUNPOD_") or name == "ENDPOINT_ID":
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["check"], {}, ["--endpoint-url", "RUNPOD_ENDPOINT_URL", "--emulator"]),
        (["check", "--endpoint-url", "http://127.0.0.1:9/v2/ep"], {}, ["RUNPOD_API_KEY"]),
        (["check", "--endpoint-id", "ep"], {}, ["RUNPOD_API_KEY"]),
        (["check", "--endpoint-url", "not a url"], {"RUNPOD_API_KEY": "k"}, ["--endpoint-url"]),
        (
            ["check", "--endpoint-url", "http://127.0.0.1:9/v2/ep/run"],
            {"RUNPOD_API_KEY": "k"},
            ["--endpoint-url", "operation"],
        ),
        (
            ["check", "--emulator", "--probe-inputs", "/nonexistent/inputs.json"],
            {},
            ["--probe-inputs", "inputs.json"],
        ),
        (
            ["check", "--emulator", "--output-schema", "/nonexistent/out.json"],
            {},
            ["output schema", "no such file"],
        ),
        (
            ["check", "--emulator", "--junitxml", "/nonexistent/folder/out.xml"],
            {},
            ["--junitxml", "does not exist"],
        ),
        (
            ["check", "--emulator", "--webhook-url", "https://tunnel.example.test/hooks"],
            {},
            ["--webhook-url", "--webhook-listen"],
        ),
    ],
)
def test_check_command_usage_errors_are_one_line(
    argv: list[str],
    env: dict[str, str],
    names: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_runpod_settings(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("runpod-testkit check: error: ")
    for name in names:
        assert name in lines[0], lines[0]


def test_check_command_unreachable_endpoint_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_runpod_settings(monkeypatch)
    monkeypatch.setenv("RUNPOD_API_KEY", CANARY)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there now.
    assert main(["check", "--endpoint-url", f"http://127.0.0.1:{port}/v2/ep"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot reach" in err
    assert "connection refused" in err
    assert f"127.0.0.1:{port}" in err
    assert CANARY not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--emulator", "--endpoint-url", "http://127.0.0.1:9/v2/ep"],
        ["check", "--emulator", "--max-jobs", "-1"],
        ["check", "--emulator", "--job-timeout", "0"],
        ["check", "--emulator", "--bogus"],
    ],
)
def test_check_command_bad_options_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err


def test_report_groups_rows_by_operation_with_reasons_and_verdict() -> None:
    report = ContractReport(target="http://127.0.0.1:9/v2/ep", jobs_submitted=4, job_budget="25")
    rows = [
        ("status", "shape", "FAIL", ["status -> HTTP 200: /delayTime: expected an integer"]),
        ("status", "timings", "PASS", []),
        ("run", "shape", "DRIFT", ["run -> HTTP 200: unknown field /requestId"]),
        ("stream", "drains", "SKIP", ["--probe-inputs gives no 'stream' input"]),
    ]
    ref = "docs/job-states.md#order"
    for operation, check, outcome, reasons in rows:
        report.results.add(operation, check, outcome, reasons, ref=ref)
    text = render_report(report)
    assert text.splitlines()[:3] == ["Runpod contract check", f"  target: {report.target}", ""]
    assert f"run\n  DRIFT shape    [{ref}]\n        run -> HTTP 200: unknown field" in text
    assert f"status\n  FAIL  shape    [{ref}]\n        status -> HTTP 200: /delayTime" in text
    assert f"  PASS  timings  [{ref}]\n" in text
    assert f"  SKIP  drains   [{ref}]\n        --probe-inputs gives no" in text
    assert text.index("\nrun\n") < text.index("\nstatus\n") < text.index("\nstream\n")
    verdict = "verdict: the contract did NOT hold (1 fail, 1 drift, 1 pass, 1 skip)"
    assert f"\nfailed: status/shape\n{verdict}\n" in text
    assert text.endswith("jobs submitted: 4 (budget: 25)\n")
    assert not report.held


def test_report_row_shows_the_worst_outcome_of_its_tests() -> None:
    row = CheckRow("status", "shape")
    row.add("PASS", [])
    row.add("SKIP", ["no stream"])
    assert row.outcome == "PASS"
    assert row.shown_reasons == []
    row.add("DRIFT", ["unknown field"])
    assert row.outcome == "DRIFT"
    row.add("FAIL", ["bad"])
    row.add("FAIL", ["bad"])
    assert row.outcome == "FAIL"
    assert row.shown_reasons == ["no stream", "unknown field", "bad"]


def test_an_interrupted_run_is_reported_as_such() -> None:
    report = ContractReport(target="t", interrupted=True, cancelled_at_end=2, jobs_submitted=3)
    text = render_report(report)
    assert "(no checks ran)" in text
    assert "verdict: INTERRUPTED" in text
    assert "jobs submitted: 3 (budget: unlimited); cancelled at the end: 2" in text
    assert not report.held


# --- live-run safety: Ctrl-C and the job budget ------------------------------------------------


def _health(endpoint_url: str) -> dict[str, int]:
    answer = httpx.get(
        f"{endpoint_url}/health", headers={"authorization": f"Bearer {TEST_KEY}"}, timeout=5
    )
    answer.raise_for_status()
    jobs: dict[str, int] = answer.json()["jobs"]
    return jobs


def _job_log(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _long_job_inputs(folder: Path) -> Path:
    """--probe-inputs where every role runs a minute: whatever check runs first, it waits."""
    minute = {"sleep_ms": 60_000}
    inputs = {
        "fast": minute,
        "slow": minute,
        "stream": {**minute, "chunks": 2, "chunk_interval_ms": 100},
        "fail": {**minute, "fail": "probe failure"},
    }
    path = folder / "inputs.json"
    path.write_text(json.dumps(inputs), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["pytest contract", "runpod-testkit check"])
def test_ctrl_c_cancels_the_jobs_in_flight_and_still_reports(entry: str, tmp_path: Path) -> None:
    """SIGINT while a check waits on a long job: the run ends, prints its summary, and leaves
    nothing queued or running on the endpoint (the job log shows the cancellations)."""
    job_log = tmp_path / "jobs.jsonl"
    args = ["--api-key", TEST_KEY, "--cold-start-ms", "0", "--workers-max", "2"]
    with EmulatorProcess(args, job_log=job_log) as emulator:
        endpoint_url = f"{emulator.base_url}/ctrl-c"
        options = [
            "--endpoint-url",
            endpoint_url,
            "--probe-inputs",
            str(_long_job_inputs(tmp_path)),
        ]
        if entry == "pytest contract":
            command = pytest_contract(*options, junit=tmp_path / "junit.xml")
        else:
            command = check_command(*options)
        with (tmp_path / "out.txt").open("w+") as out:
            suite = subprocess.Popen(
                command, cwd=REPO, env=child_env(TEST_KEY), stdout=out, stderr=subprocess.STDOUT
            )
            try:
                deadline = time.monotonic() + 60
                while _health(endpoint_url)["inProgress"] < 1:
                    assert suite.poll() is None, "the run ended before any job ran"
                    assert time.monotonic() < deadline, "no job was seen running within 60 s"
                    time.sleep(0.1)  # polling /health, bounded by the deadline
                suite.send_signal(signal.SIGINT)
                returncode = suite.wait(timeout=30)
            finally:
                if suite.poll() is None:
                    suite.kill()
                    suite.wait(timeout=10)
            out.seek(0)
            output = out.read()
        after = _health(endpoint_url)
    if entry == "pytest contract":
        assert returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
        assert "KeyboardInterrupt" in output
        assert "Runpod contract" in output, output[-3000:]
    else:
        assert returncode == EXIT_INTERRUPTED, output[-3000:]
        assert "verdict: INTERRUPTED" in output, output[-3000:]
        assert "Traceback" not in output
    submitted = re.search(r"jobs submitted: (\d+)", output)
    cancelled = re.search(r"cancelled at the end: (\d+)", output)
    assert submitted, output[-3000:]
    assert cancelled, output[-3000:]
    assert (after["inQueue"], after["inProgress"]) == (0, 0), after
    log = _job_log(job_log)
    cancelled_ids = {entry["id"] for entry in log if entry["status"] == "CANCELLED"}
    assert len(cancelled_ids) >= int(cancelled.group(1)) >= 1, log
    assert len(log) <= int(submitted.group(1))


@pytest.mark.slow
def test_max_jobs_caps_what_the_run_submits_and_skips_the_rest(tmp_path: Path) -> None:
    job_log = tmp_path / "jobs.jsonl"
    junit = tmp_path / "junit.xml"
    with running_emulator(VARIANT_CONFIG, api_key=TEST_KEY, job_log=job_log) as emulator:
        command = pytest_contract(
            *live(emulator.endpoint_url("budget")), "--max-jobs", "3", junit=junit
        )
        run = execute(Planned("max-jobs", command, junit=junit))
    assert run.returncode == pytest.ExitCode.OK, run.describe()
    submitted = re.search(r"jobs submitted: (\d+) \(budget: 3\)", run.stdout)
    assert submitted, run.stdout[-2000:]
    count = int(submitted.group(1))
    assert 1 <= count <= 3
    # Every job the run started reached an end (finished or cancelled) exactly once.
    ran = _job_log(job_log)
    assert len(ran) == count, (
        f"the summary says {count} jobs submitted, the endpoint ran {len(ran)}: "
        f"{[entry['id'] for entry in ran]}"
    )
    budget_skips = [
        message for row in run.rows.values() for message in row.skips if "--max-jobs" in message
    ]
    assert budget_skips, run.describe()
    assert run.with_outcome("PASS"), run.describe()
