"""`runpod-testkit check`: run the contract suite against an endpoint and print a report for
people who do not live in pytest.

    runpod-testkit check --endpoint-url https://api.runpod.ai/v2/abc123   # key: RUNPOD_API_KEY
    runpod-testkit check --endpoint-id abc123 --max-jobs 10 --junitxml contract.xml
    runpod-testkit check --emulator                                       # a self-check

It runs the same `contract/` tests as `pytest contract` (in this process, through `pytest.main`)
and renders the results the suite collected (`runpod_testkit.suite.results`): per operation,
each check's verdict (FAIL, DRIFT, PASS, SKIP) with the one-line reason and the reference it
encodes, then the jobs it submitted.
Before any job, a preflight (`runpod_testkit.preflight`: one /health with the key) makes sure
the endpoint answers and takes the key. Exit status: 0 the contract held, 1 it did not, 2 a
usage error or a failed preflight (one line naming what is wrong and what to do; no job was
submitted), 130 interrupted (jobs still in flight were cancelled first).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from runpod_testkit.ci_results import append_step_summary, markdown_cell
from runpod_testkit.config import ConfigError, Target, resolve_target
from runpod_testkit.suite.causes import cause_lines
from runpod_testkit.suite.results import ContractResults

if TYPE_CHECKING:
    import pytest

__all__ = [
    "EXIT_BROKEN",
    "EXIT_HELD",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "ContractReport",
    "SessionEnd",
    "UsageProblem",
    "add_check_command",
    "contract_dir",
    "render_report",
    "run_check",
]

EXIT_HELD = 0
EXIT_BROKEN = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PROG = "runpod-testkit check"
_PLUGIN = "runpod_testkit.suite.plugin"


class UsageProblem(Exception):
    """Bad input to the command; the message is the one line to print."""


# --- where the contract tests are ------------------------------------------------------------


def contract_dir() -> Path:
    """The contract tests, read from one place: the package data `runpod_testkit/_data/contract`
    (in a wheel the files themselves; in a checkout a link to the top-level `contract/` that
    `pytest contract` runs, which the wheel build follows)."""
    folder = importlib.resources.files("runpod_testkit") / "_data" / "contract"
    if not isinstance(folder, Path) or not (folder / "conftest.py").is_file():
        raise UsageProblem(
            f"the contract tests are not installed as files at {folder}: reinstall runpod-testkit"
        )
    # The link resolved: in a checkout, the very files `pytest contract` imports as `contract`.
    return folder.resolve()


@contextlib.contextmanager
def _importable(folder: Path) -> Iterator[Path]:
    """The contract tests import each other as the package `contract`: a folder of them under
    another name (a trimmed copy in a test) runs as a copy named `contract` in a scratch folder."""
    if folder.name == "contract":
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="runpod-testkit-check-") as scratch:
        staged = Path(scratch) / "contract"
        shutil.copytree(folder, staged, ignore=shutil.ignore_patterns("__pycache__"))
        yield staged


# --- the command line -------------------------------------------------------------------------


def add_check_command(commands: Any) -> None:
    """Register `check` on the `runpod-testkit` subcommands (an argparse subparsers action)."""
    from runpod_testkit.argtypes import bounded

    parser = commands.add_parser(
        "check",
        help="check that an endpoint keeps the queue API contract, operation by operation",
        description=(
            "Run the contract suite against an endpoint and report, per operation, each check "
            "(PASS, FAIL, SKIP, DRIFT) with its reason and reference, and the jobs it submitted. "
            "The key comes from RUNPOD_API_KEY and is never printed. Before any job, one /health "
            "with the key checks that the endpoint answers and takes it. Exit status: 0 the "
            "contract held, 1 it did not, 2 bad usage or a failed check of key and endpoint "
            "(no job submitted), 130 interrupted."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint-url", metavar="URL", help="the endpoint, {base}/{endpoint_id}")
    where.add_argument(
        "--endpoint-id",
        metavar="ID",
        help="an endpoint id on RUNPOD_ENDPOINT_BASE_URL (default https://api.runpod.ai/v2)",
    )
    where.add_argument(
        "--emulator", action="store_true", help="self-check: the suite against its own emulator"
    )
    parser.add_argument(
        "--worker",
        metavar="COMMAND",
        help="with --emulator: the emulator's workers are real processes of COMMAND, e.g. "
        '"python handler.py" (your handler, through the official runpod SDK)',
    )
    parser.add_argument(
        "--allow-destructive",
        action="store_true",
        help="also run checks that remove other jobs from the queue (/purge-queue)",
    )
    parser.add_argument(
        "--max-jobs",
        type=bounded(int, 0),
        metavar="N",
        help="most jobs the run may submit (default 25 on a live endpoint); checks beyond it "
        "are skipped",
    )
    parser.add_argument(
        "--job-timeout",
        type=bounded(float, 0.001),
        metavar="S",
        help="longest wait for one job or stream, in seconds (default 120)",
    )
    parser.add_argument("--strict", action="store_true", help="drift (undocumented) fails too")
    parser.add_argument(
        "--probe-inputs",
        metavar="FILE",
        help="JSON object of role (fast, slow, stream, fail) -> job input, for an endpoint "
        "that does not run the probe handler",
    )
    parser.add_argument(
        "--output-schema", metavar="FILE", help="JSON Schema that COMPLETED outputs must match"
    )
    parser.add_argument(
        "--webhook-url",
        metavar="PUBLIC_URL",
        help="live: a public URL forwarded to --webhook-listen; enables the webhook checks",
    )
    parser.add_argument(
        "--webhook-listen", metavar="HOST:PORT", help="live: where the webhook receiver listens"
    )
    parser.add_argument("--junitxml", metavar="FILE", help="also write JUnit XML here")
    parser.set_defaults(run=_run_from_args)


def _run_from_args(args: argparse.Namespace) -> int:
    return run_check(args)


def _pytest_arguments(args: argparse.Namespace, environ: dict[str, str] | None = None) -> list[str]:
    """The `pytest` options for `args`; raises UsageProblem (one line) for bad input."""
    from runpod_testkit.schemas import OutputSchemaError, load_output_schema
    from runpod_testkit.suite.probe_inputs import ProbeInputs, ProbeInputsError

    env = dict(os.environ if environ is None else environ)
    options: list[str] = []
    live: Target | None = None
    if args.worker is not None and not args.emulator:
        raise UsageProblem("--worker runs the emulator's workers: add --emulator")
    if args.emulator:
        options.append("--emulator")
        if args.worker is not None:
            from runpod_testkit.emulator.workers import WorkerCommandError, parse_worker_command

            try:
                parse_worker_command(args.worker)
            except WorkerCommandError as exc:
                raise UsageProblem(str(exc)) from None
            options += ["--worker", args.worker]
    else:
        try:
            target = resolve_target(
                endpoint_url=args.endpoint_url,
                endpoint_id=args.endpoint_id,
                env=env,
                option_names={"endpoint_url": "--endpoint-url", "endpoint_id": "--endpoint-id"},
            )
        except ConfigError as exc:
            hint = ""
            if args.endpoint_url is None and args.endpoint_id is None:
                hint = " (or run `runpod-testkit check --emulator` for a self-check)"
            raise UsageProblem(f"{exc}{hint}") from None
        options += ["--endpoint-url", target.endpoint_url]
        live = target
    try:
        if args.probe_inputs:
            ProbeInputs.load(args.probe_inputs)
        if args.output_schema:
            load_output_schema(args.output_schema)
    except (ProbeInputsError, OutputSchemaError) as exc:
        raise UsageProblem(str(exc)) from None
    if args.junitxml:
        folder = Path(args.junitxml).resolve().parent
        if not folder.is_dir():
            raise UsageProblem(f"--junitxml {args.junitxml}: folder {folder} does not exist")
        options += ["--junitxml", str(Path(args.junitxml).resolve())]
    for flag in ("allow_destructive", "strict"):
        if getattr(args, flag):
            options.append("--" + flag.replace("_", "-"))
    if bool(args.webhook_url) != bool(args.webhook_listen):
        raise UsageProblem("--webhook-url and --webhook-listen go together: give both")
    if args.webhook_url:
        options += ["--webhook-url", args.webhook_url, "--webhook-listen", args.webhook_listen]
    for name in ("max_jobs", "job_timeout", "probe_inputs", "output_schema"):
        value = getattr(args, name)
        if value is not None:
            resolved = str(Path(value).resolve()) if name.endswith(("inputs", "schema")) else value
            options += ["--" + name.replace("_", "-"), str(resolved)]
    if live is not None:
        _require_ready(live)  # the last check: I/O
    return options


def _require_ready(target: Target) -> None:
    """The preflight (one /health with the key) before pytest starts, so that a refused key, a
    wrong host or port, or an unknown endpoint id is one line instead of every check failing
    the same way, and no job is submitted."""
    from runpod_testkit.preflight import PreflightError, preflight

    try:
        preflight(target.endpoint_url, target.api_key, auth_schemes=("bearer", "raw"))
    except PreflightError as exc:
        raise UsageProblem(str(exc)) from None


# --- the run's results ------------------------------------------------------------------------


@dataclass
class ContractReport:
    """What `check` prints: the suite's results (collected by its plugin) and how the run went."""

    target: str
    results: ContractResults = field(default_factory=ContractResults)
    jobs_submitted: int | None = None
    job_budget: str = "unlimited"
    cancelled_at_end: int = 0
    interrupted: bool = False
    preflight_failure: str | None = None
    """Why the suite's own preflight stopped the run before any check (no job submitted)."""

    def count(self, outcome: str) -> int:
        return self.results.count(outcome)

    @property
    def held(self) -> bool:
        return not self.interrupted and not self.results.problems and self.count("FAIL") == 0


class SessionEnd:
    """A pytest plugin: every test of the run is a check; at the end of the session, take the
    suite's results and job numbers."""

    def __init__(self, report: ContractReport) -> None:
        self.report = report

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from runpod_testkit.suite.plugin import settings_of

        settings_of(session.config).results.unmarked_too = True

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        import pytest

        self.report.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        try:
            from runpod_testkit.suite.plugin import settings_of

            settings = settings_of(session.config)
        except (ImportError, KeyError):
            return  # the suite did not configure (a usage error); nothing was submitted
        self.report.results = settings.results
        self.report.preflight_failure = settings.preflight_failure
        ledger = settings.ledger
        self.report.jobs_submitted = ledger.submitted
        self.report.job_budget = ledger.budget_text
        self.report.cancelled_at_end = len(ledger.cancelled_at_end)


# --- the report ------------------------------------------------------------------------------


def render_report(report: ContractReport) -> str:
    """The report as text: the failures grouped by cause, the rows grouped by operation, then
    the verdict (and how its checks relate to the tests) and the jobs used."""
    results = report.results
    lines = ["Runpod contract check", f"  target: {report.target}", ""]
    causes = cause_lines(results.failures())
    if causes:
        lines += [*causes, ""]
    width = max((len(row.check) for row in results.rows.values()), default=0) + 2
    current = None
    for row in results.sorted_rows():
        if row.operation != current:
            lines.append(row.operation)
            current = row.operation
        ref = f"[{row.ref}]" if row.ref else ""
        lines.append(f"  {row.outcome:<6}{row.check.ljust(width)}{ref}".rstrip())
        lines.extend(f"{'':8}{reason}" for reason in row.shown_reasons)
    if not results.rows:
        lines.append("(no checks ran)")
    lines.append("")
    lines.extend(f"problem: {problem}" for problem in results.problems)
    failed = [f"{row.operation}/{row.check}" for row in results.sorted_rows() if row.failed]
    if failed:
        lines.append(f"failed: {', '.join(failed)}")
    if report.interrupted:
        verdict = "INTERRUPTED: the contract was not fully checked"
    elif report.held:
        verdict = "the contract HELD"
    else:
        verdict = "the contract did NOT hold"
    lines.append(f"verdict: {verdict} ({results.tally()})")
    lines.append(results.checks_from_tests())
    if report.count("DRIFT"):
        lines.append(
            "drift: undocumented differences the contract tolerates; --strict makes them fail"
        )
    jobs = "unknown" if report.jobs_submitted is None else str(report.jobs_submitted)
    line = f"jobs submitted: {jobs} (budget: {report.job_budget})"
    if report.cancelled_at_end:
        line += f"; cancelled at the end: {report.cancelled_at_end}"
    lines.append(line)
    return "\n".join(lines) + "\n"


def markdown_report(report: ContractReport) -> str:
    """The report for the run summary of GitHub Actions: the verdict, then one table row per
    check that did not pass (a passing contract is one line and a tally)."""
    if report.interrupted:
        verdict = "⚠️ interrupted: the contract was not fully checked"
    elif report.held:
        verdict = "✅ the contract held"
    else:
        verdict = "❌ the contract did not hold"
    lines = [f"## Contract check: {verdict}", "", f"Target: {markdown_cell(report.target)}"]
    lines += ["", f"Checks: {report.results.tally()}.", ""]
    shown = [row for row in report.results.sorted_rows() if row.outcome not in ("PASS", "SKIP")]
    if shown:
        lines += ["| operation | check | result | reason |", "|---|---|---|---|"]
        for row in shown:
            reason = "; ".join(row.shown_reasons)
            lines.append(
                f"| {markdown_cell(row.operation)} | {markdown_cell(row.check)} | "
                f"{row.outcome} | {markdown_cell(reason)} |"
            )
        lines.append("")
    lines.extend(f"- problem: {markdown_cell(problem)}" for problem in report.results.problems)
    jobs = "unknown" if report.jobs_submitted is None else str(report.jobs_submitted)
    lines.append(f"Jobs submitted: {jobs} (budget: {report.job_budget}).")
    return "\n".join(lines) + "\n"


# --- running ----------------------------------------------------------------------------------


def run_check(
    args: argparse.Namespace,
    *,
    suite_dir: Path | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the suite as `args` say, print the report to `stdout`; returns the exit status."""
    import pytest

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        options = _pytest_arguments(args)
        folder = suite_dir or contract_dir()
    except UsageProblem as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return EXIT_USAGE
    target = "the emulator (self-check)"
    if "--endpoint-url" in options:
        target = options[options.index("--endpoint-url") + 1]
    report = ContractReport(target=target)
    argv = [
        *options,
        "-p",
        _PLUGIN,
        "-p",
        "no:cacheprovider",
        # This process imported runpod_testkit before pytest could rewrite its asserts; that
        # is expected here, and the repository's `filterwarnings = error` must not stop the run.
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "-q",
        "--no-header",
    ]
    print(f"checking {target} ...", file=err, flush=True)
    pytest_output = io.StringIO()
    # pytest's own console output is for pytest users; keep it for when something goes wrong.
    with _importable(folder) as tests, contextlib.redirect_stdout(pytest_output):
        status = pytest.main([str(tests), *argv], plugins=[SessionEnd(report)])
    if status == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE  # pytest printed the one-line reason on stderr
    if report.preflight_failure is not None:
        print(f"{PROG}: error: {report.preflight_failure}", file=err)
        return EXIT_USAGE
    problems = report.results.problems
    ended = pytest.ExitCode(status)
    if (
        ended not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
        and not problems
    ):
        problems.append(f"pytest ended with exit status {int(ended)} ({ended.name})")
    if ended == pytest.ExitCode.INTERNAL_ERROR or (problems and not report.results.rows):
        err.write(pytest_output.getvalue()[-4000:])
    out.write(render_report(report))
    out.flush()
    problem = append_step_summary(markdown_report(report))
    if problem is not None:
        print(f"{PROG}: warning: {problem}", file=err)
    if report.interrupted:
        return EXIT_INTERRUPTED
    if status == pytest.ExitCode.OK and report.held:
        return EXIT_HELD
    return EXIT_BROKEN
