"""pytest plugin of the contract suite: options, fixtures, drift, the job ledger and the summary.

Every contract test carries `@pytest.mark.contract(operation, check, ref=...)`; the plugin turns
those into JUnit properties and into the operation x check table that ends the run. The API key
is never written anywhere: options hold no key, and the target keeps it out of reprs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest import junitxml  # its stash key: the one way to add to the file's <properties>

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.config import ConfigError, Target, resolve_target
from runpod_testkit.emulator.factory import JOB_FAULTS_NEED_SIMULATION
from runpod_testkit.emulator.faults import FaultConfig, FaultConfigError, load_faults
from runpod_testkit.preflight import PreflightError
from runpod_testkit.schemas import ContractValidator, Finding, OutputSchemaError, load_output_schema
from runpod_testkit.suite.causes import cause_lines, reason_of
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.probe_inputs import ProbeInputs, ProbeInputsError
from runpod_testkit.suite.results import ContractResults
from runpod_testkit.suite.target import Mode, SuiteTarget, open_target

__all__ = ["ContractChecks", "ContractReporter", "SuiteSettings", "settings_of"]

pytest_plugins = ["runpod_testkit.suite.webhooks"]
"""The webhook receiver's options and fixture (loaded with this plugin, however it is loaded)."""

LIVE_DEFAULT_MAX_JOBS = 25


@dataclass
class SuiteSettings:
    mode: Mode
    live: Target | None
    strict: bool
    allow_destructive: bool
    job_timeout_s: float
    probe_inputs: ProbeInputs
    validator: ContractValidator
    ledger: JobLedger
    worker: str | None = None
    """With --emulator --worker: the command line of the emulator's worker processes."""
    faults: FaultConfig | None = None
    """Faults injected into the suite's own emulator (--emulator-faults)."""
    faults_injected: str = ""
    """What they came to, one line, once the target has closed."""
    results: ContractResults = field(default_factory=ContractResults)
    """Every check's outcome: what the summary and `runpod-testkit check` render."""
    target: SuiteTarget | None = None
    preflight_failure: str | None = None
    jobs_in_workers: int = 0
    """Under pytest-xdist (mock or emulator mode): the jobs the worker processes submitted, each
    process to its own target."""
    """Why the preflight stopped the session (then no check ran and no job was submitted)."""


_SETTINGS = pytest.StashKey[SuiteSettings]()
_JOBS_SUBMITTED = "runpod_testkit.jobs_submitted"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runpod", "Runpod endpoint contract (see README: Contract suite)")
    group.addoption(
        "--emulator",
        action="store_true",
        help="run the contract against the emulator over real HTTP on loopback",
    )
    group.addoption(
        "--worker",
        metavar="COMMAND",
        help="with --emulator: run the emulator's workers as real processes of COMMAND, e.g. "
        '"python handler.py" (your handler, through the official runpod SDK)',
    )
    group.addoption(
        "--emulator-faults",
        metavar="JSON|@FILE",
        help="mock and --emulator modes: inject faults into the suite's emulator, as "
        "`runpod-testkit emulator --faults` takes them (README: Fault injection)",
    )
    group.addoption(
        "--endpoint-url",
        metavar="URL",
        help="live mode: the endpoint URL {base}/{endpoint_id}; key from RUNPOD_API_KEY",
    )
    group.addoption(
        "--endpoint-id",
        metavar="ID",
        help="live mode: the endpoint id (base from RUNPOD_ENDPOINT_BASE_URL or production)",
    )
    group.addoption(
        "--allow-destructive",
        action="store_true",
        help="live mode: also run checks that remove other jobs (/purge-queue)",
    )
    group.addoption(
        "--max-jobs",
        type=int,
        metavar="N",
        help=f"most jobs the run may submit (live default {LIVE_DEFAULT_MAX_JOBS}; "
        "otherwise unlimited)",
    )
    group.addoption(
        "--job-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="longest wait for one job or stream, in seconds (default 120)",
    )
    group.addoption(
        "--probe-inputs",
        metavar="FILE",
        help="JSON object of role -> job input for a handler that is not the probe "
        "(roles: fast, slow, stream, fail; a missing role skips its checks)",
    )
    group.addoption(
        "--output-schema",
        metavar="FILE",
        help="JSON Schema of the handler's output; COMPLETED outputs are checked against it",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "contract(operation, check, ref=''): a named contract check of one operation, "
        "citing the reference it encodes",
    )
    url = config.getoption("--endpoint-url", None)
    endpoint_id = config.getoption("--endpoint-id", None)
    emulator = config.getoption("--emulator", False)
    if emulator and (url or endpoint_id):
        raise pytest.UsageError("--emulator and --endpoint-url/--endpoint-id exclude each other")
    worker = config.getoption("--worker", None)
    if worker is not None:
        from runpod_testkit.emulator.workers import WorkerCommandError, parse_worker_command

        if not emulator:
            raise pytest.UsageError("--worker runs the emulator's workers: add --emulator")
        try:
            parse_worker_command(worker)
        except WorkerCommandError as exc:
            raise pytest.UsageError(str(exc)) from None
    live: Target | None = None
    mode: Mode = "emulator" if emulator else "mock"
    if url or endpoint_id:
        mode = "live"
        try:
            live = resolve_target(
                endpoint_url=url,
                endpoint_id=endpoint_id,
                env=os.environ,
                option_names={"endpoint_url": "--endpoint-url", "endpoint_id": "--endpoint-id"},
            )
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if mode == "live" and _distributed(config):
        raise pytest.UsageError(
            "the contract suite runs in one process against a live endpoint (one preflight, "
            "one job budget): leave out -n"
        )
    faults_spec = config.getoption("--emulator-faults", None)
    faults: FaultConfig | None = None
    if faults_spec is not None:
        if mode == "live":
            raise pytest.UsageError(
                "--emulator-faults needs the suite's own emulator (mock or --emulator), "
                "not a live endpoint"
            )
        try:
            faults = load_faults(faults_spec)
        except FaultConfigError as exc:
            raise pytest.UsageError(f"--emulator-faults: {exc}") from None
        if worker is not None and faults.jobs.active:
            raise pytest.UsageError(f"--emulator-{JOB_FAULTS_NEED_SIMULATION[2:]}")
    job_timeout = config.getoption("--job-timeout", 120.0)
    if job_timeout <= 0:
        raise pytest.UsageError(
            f"--job-timeout must be a positive number of seconds, got {job_timeout}"
        )
    max_jobs = config.getoption("--max-jobs", None)
    if max_jobs is not None and max_jobs < 0:
        raise pytest.UsageError(f"--max-jobs must be 0 or more, got {max_jobs}")
    if max_jobs is None and mode == "live":
        max_jobs = LIVE_DEFAULT_MAX_JOBS
    try:
        inputs_file = config.getoption("--probe-inputs", None)
        probe_inputs = ProbeInputs.load(inputs_file) if inputs_file else ProbeInputs()
        schema_file = config.getoption("--output-schema", None)
        output_schema = load_output_schema(schema_file) if schema_file else None
    except (ProbeInputsError, OutputSchemaError) as exc:
        raise pytest.UsageError(str(exc)) from None
    settings = config.stash[_SETTINGS] = SuiteSettings(
        mode=mode,
        live=live,
        # pytest 9 owns `--strict` (its strict mode: markers, config, xfail); the suite reads
        # the same switch as "drift fails", which keeps `pytest contract --strict` working.
        strict=bool(config.getini("strict")),
        allow_destructive=bool(config.getoption("--allow-destructive", False)) or mode != "live",
        job_timeout_s=job_timeout,
        probe_inputs=probe_inputs,
        validator=ContractValidator(output_schema),
        ledger=JobLedger(max_jobs),
        worker=worker,
        faults=faults,
    )
    config.pluginmanager.register(ContractReporter(settings), "runpod-contract-reporter")


def _distributed(config: pytest.Config) -> bool:
    """Whether pytest-xdist spreads this run over processes (each would have its own target)."""
    if hasattr(config, "workerinput"):
        return True
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def settings_of(config: pytest.Config) -> SuiteSettings:
    return config.stash[_SETTINGS]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config) -> SuiteSettings:
    return settings_of(pytestconfig)


@pytest.fixture(scope="session")
def target(suite: SuiteSettings) -> Iterator[SuiteTarget]:
    """The endpoint under test, started on first use (nothing starts for `pytest tests`).
    A failed preflight ends the session here, before any check, with exit status 2."""
    with contextlib.ExitStack() as stack:
        try:
            opened = stack.enter_context(
                open_target(
                    suite.mode,
                    suite.live,
                    job_timeout_s=suite.job_timeout_s,
                    worker=suite.worker,
                    faults=suite.faults,
                )
            )
        except PreflightError as exc:
            suite.preflight_failure = str(exc)
            pytest.exit(f"preflight: {exc} (no job was submitted)", returncode=2)
        suite.target = opened
        try:
            yield opened
        finally:
            suite.ledger.cancel_in_flight()
            opened.close()
            if suite.faults is not None and opened.fault_counts is not None:
                suite.faults_injected = opened.fault_counts.describe()
            suite.target = None


@pytest.fixture(scope="session")
def client(target: SuiteTarget) -> RunpodClient:
    return target.client()


@pytest.fixture(scope="session")
def ledger(suite: SuiteSettings) -> JobLedger:
    return suite.ledger


@pytest.fixture(scope="session")
def probe_inputs(suite: SuiteSettings) -> ProbeInputs:
    return suite.probe_inputs


@pytest.fixture
def contract(request: pytest.FixtureRequest, suite: SuiteSettings) -> ContractChecks:
    return ContractChecks(suite, request.node)


@pytest.fixture
def job_input(probe_inputs: ProbeInputs) -> Any:
    """`job_input("stream")`: the input for a role, or skip the check if the target has none."""

    def pick(role: str) -> dict[str, Any]:
        value = probe_inputs.get(role)
        if value is None:
            pytest.skip(f"--probe-inputs gives no {role!r} input, so this check cannot run")
        return value

    return pick


# --- checks -----------------------------------------------------------------------------------


class ContractChecks:
    """Schema and drift checks for one test; violations fail it naming operation and rule."""

    def __init__(self, suite: SuiteSettings, item: pytest.Item) -> None:
        self.suite = suite
        self.item = item

    def shape(self, response: ApiResponse, *, schema: str | None = None) -> Any:
        """Validate the body against the schema of its operation and status code; return it."""
        where = f"{response.operation} -> HTTP {response.status_code}"
        if not response.is_json:
            content_type = response.headers.get("content-type", "")
            pytest.fail(
                f"{where}: body is not JSON (content type {content_type!r}): "
                f"{response.text[:120]!r}",
                pytrace=False,
            )
        body = response.json
        validator = self.suite.validator
        if schema is None:
            result = validator.check_response(response.operation, response.status_code, body)
        else:
            result = validator.check(schema, body)
        self.drift(where, result.drift)
        if result.violations:
            rules = "; ".join(finding.message for finding in result.violations)
            pytest.fail(f"{where}: {rules}", pytrace=False)
        return body

    def drift(self, where: str, findings: list[Finding] | list[str]) -> None:
        """Record differences the contract tolerates; under --strict they fail the check."""
        messages = [f.message if isinstance(f, Finding) else f for f in findings]
        for message in messages:
            self.item.user_properties.append(("drift", f"{where}: {message}"))
        if messages and self.suite.strict:
            pytest.fail(f"{where}: drift (--strict): {'; '.join(messages)}", pytrace=False)

    def json_content_type(self, response: ApiResponse) -> None:
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type.lower():
            pytest.fail(
                f"{response.operation} -> HTTP {response.status_code}: content type "
                f"{content_type!r} on a JSON body, expected application/json (clients that go "
                "by the header do not parse it)",
                pytrace=False,
            )


# --- reporting --------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("contract")
        if marker is None:
            continue
        operation, check = marker.args[:2]
        item.user_properties.append(("contract.operation", operation))
        item.user_properties.append(("contract.check", check))
        ref = marker.kwargs.get("ref", "")
        if ref:
            item.user_properties.append(("contract.ref", ref))


class ContractReporter:
    """Collects one outcome per test into the operation x check rows, and cleans up at the end."""

    def __init__(self, suite: SuiteSettings) -> None:
        self.suite = suite

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.suite.results.record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.suite.results.record_problem(report.nodeid or "collection", reason_of(report))

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.suite.results.record_problem("internal error", str(excrepr))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Ctrl-C or a crash still ends here: cancel whatever the run left in flight. Before
        --junitxml writes its file: say there how its tests relate to the checks."""
        if self.suite.target is not None:
            self.suite.ledger.cancel_in_flight()
        results = self.suite.results
        worker_output = getattr(session.config, "workeroutput", None)
        if worker_output is not None:  # a pytest-xdist worker: tell the controller
            worker_output[_JOBS_SUBMITTED] = self.suite.ledger.submitted
        xml = session.config.stash.get(junitxml.xml_key, None)
        if xml is not None and results.rows:
            xml.add_global_property("contract.checks", str(len(results.rows)))
            xml.add_global_property("contract.tests", str(len(results.tests)))
            xml.add_global_property("contract.summary", results.checks_from_tests())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist: a worker process ended; count the jobs its target was sent."""
        self.suite.jobs_in_workers += int(getattr(node, "workeroutput", {}).get(_JOBS_SUBMITTED, 0))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        suite = self.suite
        results = suite.results
        if not results.rows:
            return
        write = terminalreporter.write_line
        terminalreporter.section("Runpod contract", sep="=")
        write(f"target: {suite.mode} mode")
        for line in cause_lines(results.failures()):
            write(line)
        width = max(len(row.check) for row in results.rows.values()) + 2
        current = None
        for row in results.sorted_rows():
            if row.operation != current:
                write(row.operation)
                current = row.operation
            write(f"  {row.check.ljust(width)}{row.outcome}")
        tally = results.tally()
        if results.count("DRIFT") and not suite.strict:
            tally += " (drift fails under --strict)"
        write(f"checks: {tally}")
        write(results.checks_from_tests())
        submitted = suite.ledger.submitted + suite.jobs_in_workers
        budget = suite.ledger.budget_text + (" per process" if suite.jobs_in_workers else "")
        write(f"jobs submitted: {submitted} (budget: {budget})")
        if suite.faults_injected:
            write(suite.faults_injected)
        if suite.ledger.cancelled_at_end:
            write(f"jobs cancelled at the end: {len(suite.ledger.cancelled_at_end)}")
