"""The load suite's wiring into Locust: options, the embedded emulator, job statistics across
processes, stopping without leftovers, and the end-of-run table, files and exit status.

`install()` (called by loadtests/locustfile.py at import) registers the listeners on
`locust.events`. Each Locust process then gets one `LoadRun` at `init`, in one of three roles:
"local" (a single process), "master" or "worker".

- Workers keep their own JobStats and ship the changes in every report (`report_to_master`);
  the master merges them (`worker_report`). When the run stops, the master asks every worker
  for a final report and waits for it (bounded) before Locust tells them to quit, so the
  merged counts are exact.
- The master (or the single process) samples /health, evaluates thresholds and writes outputs.
- Each process has its `Safeguards` (loadtest/failsafe.py): retries, client pacing (a worker
  paces its share: the limit divided by the number of workers, which the master sends), and a
  refusal breaker. A worker's breaker tells the master (MSG_REFUSED), which stops the whole
  run; the exit status is then 2 and the reason is printed.
- With no --host the master (or the single process) starts the emulator and targets it; workers
  get the host from the master's spawn message, as Locust sends it.

Web UI extensions read the live, merged statistics on the master through `current_run()`:
`run.stats` (JobStats) and `run.threshold_results()`; the "Job stats" tab of the web UI
(loadtest/webui.py) is one such extension, installed here on the process that serves the UI.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import gevent
import gevent.event
import locust
from locust import User
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.event import EventHook, Events
from locust.rpc import Message
from locust.runners import (
    STATE_CLEANUP,
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    Runner,
    WorkerRunner,
)
from locust.web import WebUI

from runpod_testkit.ci_results import (
    append_step_summary,
    load_run_markdown,
    write_thresholds_junit,
)
from runpod_testkit.coldstarts import ColdStarts, count_cold_starts
from runpod_testkit.compare import CompareError, Comparison, RunDocument, compare, load_run
from runpod_testkit.config import (
    ENV_API_KEY,
    ENV_ENDPOINT_ID,
    ENV_ENDPOINT_URL,
    ConfigError,
    Target,
    validate_api_key,
    validate_endpoint_url,
)
from runpod_testkit.cost import CostEstimate, EmulatorUsage, estimate_cost, read_worker_log
from runpod_testkit.emulator.server import EmulatorProcess
from runpod_testkit.loadtest.arrivals import Arrivals
from runpod_testkit.loadtest.caller import DriftLog, EndpointCaller
from runpod_testkit.loadtest.failsafe import (
    Backoff,
    Pacer,
    RefusalBreaker,
    Safeguards,
    is_loopback_url,
)
from runpod_testkit.loadtest.health import HealthSampler, SamplerRequests
from runpod_testkit.loadtest.preflight import (
    NOT_SUBMITTED,
    PLACEHOLDER_KEY,
    check_target,
    install_swarm_guard,
)
from runpod_testkit.loadtest.runinfo import RunInfo, host_kind
from runpod_testkit.loadtest.settings import Settings, SettingsError, add_options
from runpod_testkit.loadtest.summary import (
    EXIT_BAD_SETUP,
    exit_status,
    final_table,
    job_stats_document,
    write_outputs,
)
from runpod_testkit.loadtest.tracker import JobTracker
from runpod_testkit.loadtest.webui import install_web_ui
from runpod_testkit.loadtest.workers import WorkerLedger
from runpod_testkit.operations import OPERATIONS, JobStatus, RateLimit
from runpod_testkit.preflight import PreflightError
from runpod_testkit.schemas import ContractValidator
from runpod_testkit.slo import Slo, slo_line, slo_series
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.series import HealthSample
from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
from runpod_testkit.stats.wire import JobStatsFormatError
from runpod_testkit.thresholds import ThresholdResult, evaluate

__all__ = [
    "EMBEDDED_ENDPOINT_ID",
    "PLACEHOLDER_KEY",
    "LoadRun",
    "Role",
    "auth_headers",
    "current_run",
    "install",
]

logger = logging.getLogger("runpod_testkit.loadtest")

EMBEDDED_ENDPOINT_ID = "loadtest"
REPORT_KEY = "runpod_testkit"
MSG_FLUSH = "runpod_testkit_flush"  # master -> worker: stop if running, send a final report
MSG_FINAL = "runpod_testkit_final"  # worker -> master: the worker's last statistics
MSG_USERS = "runpod_testkit_users"  # master -> worker: users and workers in the whole run
MSG_REFUSED = "runpod_testkit_refused"  # worker -> master: the refusal breaker tripped
MSG_INITIALIZED = "runpod_testkit_initialized"  # worker -> master: the worker's init has run
_STOP_MARGIN_S = 10.0
_WORKER_WAIT_S = 10.0
_WATCH_INTERVAL_S = 0.5

Role = Literal["local", "master", "worker"]


class _Process:
    """This process's load run, set at Locust's init event."""

    run: LoadRun | None = None
    installed: ClassVar[set[int]] = set()
    default_users: ClassVar[tuple[type[User], ...]] = ()
    workers_initialized: ClassVar[int] = 0
    """On a master: workers whose init has run (MSG_INITIALIZED)."""


def current_run() -> LoadRun | None:
    """This process's load run (None before Locust's init event)."""
    return _Process.run


def auth_headers() -> dict[str, str]:
    """The Authorization header for RUNPOD_API_KEY (checked at init), or the placeholder."""
    key = os.environ.get(ENV_API_KEY, "").strip()
    return {"Authorization": f"Bearer {key or PLACEHOLDER_KEY}"}


class LoadRun:
    def __init__(self, environment: Environment, settings: Settings, role: Role) -> None:
        self.environment = environment
        self.settings = settings
        self.role: Role = role
        self.stats = JobStats()
        self.validator = ContractValidator()
        self.drift = DriftLog()
        self.tracker = JobTracker(self.stats)
        self.arrivals: Arrivals | None = None
        self.health: HealthSampler | None = None
        self.emulator: EmulatorProcess | None = None
        self.total_users = 0
        """Workers: users in the whole run, as the master last said."""
        self.worker_processes = 1
        """Workers: load-generating processes in the whole run, as the master last said."""
        self.refusal: str | None = None
        """Why the refusal breaker stopped the run (None: it did not)."""
        self.safeguards = Safeguards(self.stats, breaker=RefusalBreaker(0, self.on_refusals))
        self._configure_safeguards()
        self.final_results: list[ThresholdResult] = []
        self.run_info = RunInfo()
        """The settings written as the "run" object of --job-stats-json."""
        self.slo_summary: dict[str, Any] | None = None
        """With --slo: the "slo" object of --job-stats-json, once the run has finished."""
        self.worker_log: tuple[str, float] | None = None
        """The embedded emulator's --worker-log and when it was started (epoch s)."""
        self.cost: CostEstimate | None = None
        self.cold_starts: ColdStarts | None = None
        """Jobs that waited on a worker's start-up (estimated; exact from the emulator)."""
        """The run's worker-seconds (and dollars) from the /health series, once finished."""
        self.comparison: Comparison | None = None
        """With --baseline: this run against it, once the run has finished."""
        self.health_requests = SamplerRequests()
        """The /health sampler's requests (kept out of Locust's statistics)."""
        self.snapshot: RunSnapshot | None = None
        """The finished run, as every end-of-run view shows it."""
        self._finals: set[str] = set()
        self._final_sent = gevent.event.Event()
        """A worker: set once its final report of the current test has gone to the master."""
        self._bad_reports = 0
        self.workers = WorkerLedger()
        """Master: what each worker shipped, and the workers lost during the run."""

    @property
    def runner(self) -> Runner:
        runner = self.environment.runner
        assert runner is not None
        return runner

    @property
    def stop_timeout_s(self) -> float:
        """How long a stop waits for pending submissions (a /runsync holds up to its wait)."""
        return self.settings.runsync_wait_ms / 1000 + _STOP_MARGIN_S

    def threshold_results(self) -> list[ThresholdResult]:
        """The --threshold rules evaluated on the statistics as they stand."""
        return evaluate(self.settings.thresholds, self.stats)

    def user_share(self) -> float:
        """This process's share of the run's users (the open model splits its rate by it)."""
        runner = self.runner
        total = runner.target_user_count if self.role == "local" else self.total_users
        if total <= 0:
            return 0.0
        return min(1.0, runner.user_count / total)

    # ---- fail safe: retries, pacing, the refusal breaker

    def _configure_safeguards(self) -> None:
        settings = self.settings
        guard = self.safeguards
        guard.breaker = RefusalBreaker(settings.refusal_limit, self.on_refusals)
        guard.backoff = Backoff(max_retries=settings.max_retries)
        guard.retry_budget_s = min(settings.job_timeout_s, 30.0)
        host = self.environment.host or ""
        paced = settings.pacing == "on" or (
            settings.pacing == "auto" and bool(host) and not is_loopback_url(host)
        )
        guard.pacer = (
            Pacer(documented_rate_limits(), processes=self.worker_processes) if paced else None
        )

    def set_worker_processes(self, workers: int) -> None:
        self.worker_processes = max(1, workers)
        pacer = self.safeguards.pacer
        if pacer is not None:
            pacer.set_processes(self.worker_processes)

    def on_refusals(self, reason: str) -> None:
        """The breaker tripped: stop the whole run (a worker asks the master to)."""
        runner = self.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(MSG_REFUSED, {"reason": reason})
            return
        self.stop_for_refusals(reason)

    def stop_for_refusals(self, reason: str) -> None:
        if self.refusal is not None:
            return
        self.refusal = reason
        self.environment.process_exit_code = EXIT_BAD_SETUP
        logger.error("stopping the run: %s", reason)
        gevent.spawn(self._stop_now)  # not from a user's greenlet: stopping kills those

    def _stop_now(self) -> None:
        options = self.environment.parsed_options
        if options is not None and getattr(options, "headless", False):
            self.runner.quit()  # the whole run ends (every worker too), exit status 2
        else:
            self.runner.stop()  # the web UI stays up and shows the statistics

    # ---- the embedded emulator

    def start_emulator(self) -> str:
        worker_log = self.settings.emulator.worker_log
        if worker_log is None:  # the emulator's accounting, for the cost (removed at exit)
            folder = tempfile.mkdtemp(prefix="runpod-testkit-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            worker_log = str(Path(folder) / "workers.log")
        self.worker_log = (worker_log, time.time())
        emulator = EmulatorProcess(
            self.settings.emulator.args(),
            job_log=self.settings.emulator.job_log,
            worker_log=worker_log,
            survives_ctrl_c=True,  # it answers the cancels of the jobs in flight at a Ctrl-C
        )
        base_url = emulator.start()
        self.emulator = emulator
        atexit.register(emulator.stop)
        return f"{base_url}/{EMBEDDED_ENDPOINT_ID}"

    def emulator_usage(self, samples: list[HealthSample]) -> EmulatorUsage | None:
        """The stopped embedded emulator's accounting of the run's workers (None: no
        embedded emulator, or its worker log could not be read)."""
        if self.worker_log is None or self.emulator is not None or len(samples) < 2:
            return None
        path, since = self.worker_log
        try:
            return read_worker_log(
                path,
                endpoint_id=EMBEDDED_ENDPOINT_ID,
                since_s=since,
                span=(samples[0].t, samples[-1].t),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("no cost from the emulator's accounting: %s", exc)
            return None

    def stop_emulator(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            if self.emulator.faults_summary:
                logger.info("embedded emulator: %s", self.emulator.faults_summary)
            self.emulator = None

    # ---- statistics across processes

    def transport(self) -> dict[str, Any]:
        return {"jobs": self.stats.pop_transport()}

    def merge(self, payload: object, client_id: str | None = None) -> None:
        if not isinstance(payload, dict):
            return
        try:
            jobs = JobStats.from_transport(payload.get("jobs"))
        except JobStatsFormatError as exc:
            self._bad_reports += 1
            if self._bad_reports == 1:
                logger.error("ignoring a malformed job-statistics report from a worker: %s", exc)
            return
        self.stats.merge(jobs)
        if client_id is not None and self.workers.note_report(client_id, jobs):
            logger.info("worker %s: its first job statistics arrived", client_id)

    def watch_workers(self) -> None:
        """Master: note every worker Locust marks missing (it keeps going with the others, and
        forgets a missing worker after a minute, so this looks while the run is on)."""
        while True:
            self.note_missing_workers()
            gevent.sleep(_WATCH_INTERVAL_S)

    def note_missing_workers(self) -> None:
        runner = self.runner
        if not isinstance(runner, MasterRunner) or runner.state in (STATE_INIT, STATE_STOPPED):
            return
        for node in runner.clients.all:
            if node.state == STATE_MISSING and self.workers.note_lost(node.id):
                logger.error(
                    "worker %s was lost (no heartbeat); the run goes on with the others, and "
                    "keeps its statistics up to its last report",
                    node.id,
                )

    def send_final(self) -> None:
        runner = self.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(MSG_FINAL, self.transport())
            self._final_sent.set()

    def wait_for_final(self) -> None:
        """A worker whose stop runs in another greenlet: wait (bounded) until that stop has
        cancelled what was in flight and sent the final report."""
        self._final_sent.wait(self.stop_timeout_s + 5)

    def collect_finals(self) -> None:
        """Master: ask every worker that has not sent its final statistics to stop and send
        them, and wait (bounded) while Locust's message loop receives them."""
        runner = self.runner
        assert isinstance(runner, MasterRunner)
        self.note_missing_workers()
        pending = {
            node.id
            for node in runner.clients.all
            if node.state != STATE_MISSING and node.id not in self._finals
        }
        for client_id in pending:
            runner.send_message(MSG_FLUSH, None, client_id=client_id)
        if gevent.getcurrent() in runner.greenlet:
            # Stopped from Locust's own message loop (the last worker quit): waiting here would
            # hold up the very messages awaited. Workers send their final report before "quit".
            return
        deadline = time.monotonic() + self.stop_timeout_s + 5
        while pending - self._finals and time.monotonic() < deadline:
            gevent.sleep(0.05)
        missing = pending - self._finals
        if missing:
            logger.warning(
                "no final job statistics from %d worker(s); their last seconds are missing",
                len(missing),
            )

    def on_final(self, client_id: str, payload: object) -> None:
        self.merge(payload, client_id)
        self._finals.add(client_id)

    # ---- a test, from Locust's test_start to its test_stop

    def begin_test(self) -> None:
        """Fresh statistics; the open model on load-generating processes; the /health sampler
        on the master (or the single process)."""
        self.stats.reset()
        self._finals.clear()
        self._final_sent.clear()
        self.workers.clear()
        self._configure_safeguards()
        self.run_info.started_at, self.run_info.ended_at = time.time(), None
        self.stats.slo = Slo(self.settings.slo) if self.settings.slo else None
        settings = self.settings
        if self.role != "master":
            self.tracker.start()
            self.arrivals = None
            if settings.open_model:
                self.arrivals = Arrivals(
                    self.stats, settings.arrival_rate, settings.max_in_flight, self.user_share
                )
                self.arrivals.start()
        host = self.environment.host
        if self.role != "worker" and settings.health_interval_s > 0 and host:
            # Its own event hook: the sampler's requests stay out of Locust's statistics.
            self.health_requests = SamplerRequests()
            caller = EndpointCaller(
                _health_session(self.environment, self.health_requests),
                self.validator,
                self.drift,
                self.safeguards,
            )
            self.health = HealthSampler(
                caller, self.stats, settings.health_interval_s, self.health_requests
            )
            self.health.start()

    def end_test(self) -> None:
        """Cancel what is in flight (waiting, bounded, for it) and gather the statistics."""
        if self.arrivals is not None:
            self.arrivals.stop()
        if self.role != "master":
            self.tracker.stop(self.stop_timeout_s)
        if self.role == "worker":
            self.send_final()
        if self.role == "master":
            self.collect_finals()
        if self.health is not None:
            self.health.stop(last_sample=True)  # the state the run left behind
            self.health = None
        self.run_info.ended_at = time.time()

    def finish(self) -> None:
        """The end of the run (master or single process): thresholds and exit status, files."""
        environment = self.environment
        results = self.threshold_results()
        self.final_results = results
        code = exit_status(results)
        if code is not None and self.refusal is None:  # a stop for refusals keeps exit 2
            environment.process_exit_code = code
        if self.workers.lost and self.refusal is None:
            # The load was not the one asked for: that outranks what it measured.
            environment.process_exit_code = EXIT_BAD_SETUP
        settings = self.settings
        self.run_info.user_classes = tuple(user.__name__ for user in environment.user_classes)
        run_json = self.run_info.to_json(settings)
        extra: dict[str, Any] = {}
        started, ended = self.run_info.started_at, self.run_info.ended_at
        duration = ended - started if started is not None and ended is not None else None
        samples = self.stats.health_samples()
        usage = self.emulator_usage(samples)
        cost = estimate_cost(
            samples,
            completed_jobs=self.stats.outcomes.get(JobStatus.COMPLETED, 0),
            price_per_s=settings.gpu_price_per_s,
            duration_s=duration,
            emulator=usage,
            price_source=None if settings.gpu_price is None else settings.gpu_price.describe(),
        )
        self.cold_starts = count_cold_starts(
            samples, exact=None if usage is None else usage.cold_start_jobs
        )
        # The run is read once; every view below (JSON, CSV, HTML, the table) renders this.
        snapshot = take_snapshot(
            self.stats,
            results,
            duration_s=duration,
            cost=cost,
            cold_starts=self.cold_starts,
            lost_workers=self.workers.verdict_lines(),
            health_requests=self.health_requests.counts(),
        )
        self.cost = cost
        self.slo_summary = None if snapshot.slo is None else dict(snapshot.slo)
        if snapshot.slo is not None:
            extra["slo"] = {**snapshot.slo, "overTime": slo_series(self.stats)}
        if cost is not None:
            extra["cost"] = cost.to_json()
        if self.cold_starts is not None:
            extra["coldStarts"] = self.cold_starts.to_json()
        if settings.baseline:
            extra["baseline"] = self._compare_with_baseline(run_json, snapshot, extra)
            snapshot = dataclasses.replace(snapshot, comparison=self.comparison)
        self.snapshot = snapshot
        problems = write_outputs(
            snapshot,
            workers=self.workers.to_json() if self.role == "master" else None,
            json_path=settings.job_stats_json,
            csv_path=settings.job_stats_csv,
            html_path=settings.job_stats_html,
            run=run_json,
            extra=extra,
        )
        problems += self.write_ci_results(results)
        for problem in problems:
            logger.error(problem)
        if problems and environment.process_exit_code is None:
            environment.process_exit_code = EXIT_BAD_SETUP

    def write_ci_results(self, results: list[ThresholdResult]) -> list[str]:
        """--junitxml, and the run summary of GitHub Actions when $GITHUB_STEP_SUMMARY is set."""
        problems: list[str] = []
        lost = self.workers.lost
        if self.settings.junitxml:
            try:
                write_thresholds_junit(self.settings.junitxml, results, lost)
            except OSError as exc:
                path = self.settings.junitxml
                problems.append(f"--junitxml: cannot write {path!r}: {exc.strerror or exc}")
        snapshot = self.snapshot or take_snapshot(self.stats, results, charts=False)
        problem = append_step_summary(load_run_markdown(snapshot, results, lost))
        if problem is not None:
            problems.append(problem)
        return problems

    def _compare_with_baseline(
        self, run_json: dict[str, Any], snapshot: RunSnapshot, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        """--baseline: compare (the run's "slo", "cost" and "coldStarts" objects, in `extra`,
        too), keep the comparison for the final table, set exit status 4 for a broken
        --regression rule (2 when the workloads differ); the "baseline" object of
        --job-stats-json."""
        settings = self.settings
        assert settings.baseline is not None
        current = job_stats_document(snapshot, run=run_json, extra=extra)
        try:
            comparison = compare(
                load_run(settings.baseline),
                RunDocument.from_json(current, "this run"),
                settings.regressions,
            )
        except CompareError as exc:
            logger.error("--baseline: %s", exc)
            if self.environment.process_exit_code is None:
                self.environment.process_exit_code = EXIT_BAD_SETUP
            return {"file": settings.baseline, "error": str(exc)}
        self.comparison = comparison
        status = comparison.exit_status()
        if status and self.environment.process_exit_code is None:
            self.environment.process_exit_code = status
        return {
            "file": settings.baseline,
            "notComparable": comparison.not_comparable,
            "regressions": [result.to_json() for result in comparison.rules],
        }


def documented_rate_limits() -> dict[str, RateLimit]:
    """Production's per-endpoint limits by rate-limit group, from the operations table."""
    return {op.rate_limit_group: op.rate_limit for op in OPERATIONS.values() if op.rate_limit}


# --------------------------------------------------------------------------- listeners


def install(events: Events | None = None, *, default_users: Sequence[type[User]] = ()) -> None:
    """Register the load suite's listeners (once per Events object). `default_users`: the user
    classes that run when none is named on the command line (default: all, as in Locust)."""
    _Process.default_users = tuple(default_users)
    hooks: Any = events if events is not None else locust.events  # EventHook is untyped
    if id(hooks) in _Process.installed:
        return
    _Process.installed.add(id(hooks))
    hooks.init_command_line_parser.add_listener(_on_parser)
    hooks.init.add_listener(_on_init)
    hooks.test_start.add_listener(_on_test_start)
    hooks.spawning_complete.add_listener(_on_spawning_complete)
    hooks.test_stopping.add_listener(_on_test_stopping)
    hooks.test_stop.add_listener(_on_test_stop)
    hooks.report_to_master.add_listener(_on_report_to_master)
    hooks.worker_report.add_listener(_on_worker_report)
    hooks.reset_stats.add_listener(_on_reset_stats)
    # Registered before any runner exists, so (quitting fires in reverse) it runs after the
    # master runner's own quitting listener has stopped the run and collected the workers.
    hooks.quitting.add_listener(_on_quitting)
    hooks.quit.add_listener(_on_quit)


def _on_parser(parser: Any, **_kwargs: Any) -> None:
    add_options(parser)


def _fail_setup(message: str) -> None:
    sys.stderr.write(f"locust: error: {message}\n")
    sys.exit(EXIT_BAD_SETUP)


def _on_init(
    environment: Environment,
    runner: Runner | None = None,
    web_ui: WebUI | None = None,
    **_kwargs: Any,
) -> None:
    runner = runner if runner is not None else environment.runner
    role: Role = (
        "worker"
        if isinstance(runner, WorkerRunner)
        else "master"
        if isinstance(runner, MasterRunner)
        else "local"
    )
    try:
        settings = Settings.from_options(environment.parsed_options)
        if os.environ.get(ENV_API_KEY, "").strip():
            validate_api_key(os.environ[ENV_API_KEY], name=ENV_API_KEY)
    except (SettingsError, ConfigError) as exc:
        _fail_setup(str(exc))
        return
    run = LoadRun(environment, settings, role)
    _Process.run = run
    _take_ctrl_c_in_the_main_greenlet()
    if role == "worker":
        assert runner is not None
        runner.register_message(MSG_FLUSH, _on_flush_message, concurrent=True)
        runner.register_message(MSG_USERS, _on_users_message)
        # Added after the worker runner's own listener, so it runs first (quitting fires in
        # reverse): the final report reaches the master before the worker says "quit".
        hooks: Any = environment.events
        hooks.quitting.add_listener(_on_worker_quitting)
        # Locust's worker runner is whole by now; a "quit" that reached it before that would
        # leave it waiting forever (see _release_workers).
        runner.send_message(MSG_INITIALIZED)
        return
    if role == "master":
        assert runner is not None
        runner.register_message(MSG_FINAL, _on_final_message)
        runner.register_message(MSG_REFUSED, _on_refused_message)
        runner.register_message(MSG_INITIALIZED, _on_initialized_message)
        gevent.spawn(run.watch_workers)
    if web_ui is not None:
        options = environment.parsed_options
        install_web_ui(web_ui, run, getattr(options, "web_base_path", None))
        install_swarm_guard(web_ui, environment)
    _apply_default_users(environment)
    if environment.host:
        _check_host(environment, settings)
    elif not any(user.host for user in environment.user_classes):
        _start_embedded_emulator(environment, run)
    run.run_info.host = host_kind(environment.host, embedded=run.emulator is not None)
    if settings.baseline:
        try:
            load_run(settings.baseline)  # a bad file is found before the run, not after it
        except CompareError as exc:
            _release_workers(environment)
            run.stop_emulator()
            _fail_setup(f"--baseline: {exc}")
            return
    if environment.host:
        # Once, here, before the first user spawns (and on the embedded emulator too, so
        # that every run takes the same path).
        _preflight(environment, environment.host)


def _check_host(environment: Environment, settings: Settings) -> None:
    assert environment.host is not None
    try:
        environment.host = validate_endpoint_url(environment.host, name="--host")
    except ConfigError as exc:
        _release_workers(environment)
        _fail_setup(str(exc))
        return
    if settings.emulator.args() or settings.emulator.job_log or settings.emulator.worker_log:
        logger.warning("the --emulator-* options are ignored: --host names the endpoint")
    if Target(environment.host).is_production:
        logger.info("target %s: every job runs on the endpoint's workers", environment.host)


def _preflight(environment: Environment, host: str) -> None:
    try:
        check_target(host)
    except PreflightError as exc:
        _release_workers(environment)
        _fail_setup(f"{exc} {NOT_SUBMITTED}")


def _release_workers(environment: Environment) -> None:
    """A master about to exit at init sends its workers "quit" first: `--processes` children
    are already running, and Locust's exit does not stop the ones still running. It waits
    (bounded) until each expected worker has run its init: a "quit" that reaches a worker
    runner before its constructor has finished leaves that process waiting forever (Locust
    2.x spawns the worker's greenlets after handling the quit). Workers that never show up
    notice later that the master is gone."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    options = environment.parsed_options
    expected = int(getattr(options, "expect_workers", 1) or 1)
    deadline = time.monotonic() + _WORKER_WAIT_S
    while _Process.workers_initialized < expected and time.monotonic() < deadline:
        gevent.sleep(0.05)
    runner.quit()


def _take_ctrl_c_in_the_main_greenlet() -> None:
    """Ctrl-C as one KeyboardInterrupt in Locust's main greenlet, where Locust waits for it.

    Python's own handler raises it in whichever greenlet runs at that instant: mid-request in
    a user, that user dies with an "unhandled" KeyboardInterrupt (exit status 1 or 2 instead of
    0), and gevent hands the interrupt on to the main greenlet besides; a second copy reaching
    the main greenlet while it cancels the jobs in flight ends the process by SIGINT. Taken by
    the hub between callbacks, the signal interrupts no greenlet. A second Ctrl-C still ends
    a stop that hangs."""
    if sys.platform == "win32":  # no gevent.signal_handler there
        return
    main = gevent.get_hub().parent

    def on_sigint() -> None:
        if not main.dead:
            main.throw(KeyboardInterrupt)

    gevent.signal_handler(signal.SIGINT, on_sigint)


def _on_initialized_message(**_kwargs: Any) -> None:
    _Process.workers_initialized += 1


def _start_embedded_emulator(environment: Environment, run: LoadRun) -> None:
    try:
        environment.host = run.start_emulator()
    except (RuntimeError, OSError) as exc:
        _release_workers(environment)
        _fail_setup(f"could not start the embedded emulator (no --host given): {exc}")
        return
    logger.info("no --host given: started an emulator, target %s", environment.host)
    for variable in (ENV_ENDPOINT_URL, ENV_ENDPOINT_ID):
        if os.environ.get(variable, "").strip():
            logger.info("%s is set, but a load run targets --host (or LOCUST_HOST) only", variable)


def _apply_default_users(environment: Environment) -> None:
    """With no user class named, run the default ones (workers keep every class: they run
    whatever the master hands them)."""
    options = environment.parsed_options
    defaults = _Process.default_users
    if not defaults or options is None or getattr(options, "user_classes", None):
        return
    chosen = [user for user in environment.user_classes if user in defaults]
    if chosen:
        environment.user_classes = chosen


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    run = _Process.run
    if run is None:
        return
    try:  # a worker has the master's options only now; the web UI may have changed them
        run.settings = Settings.from_options(environment.parsed_options)
    except SettingsError as exc:
        logger.error("keeping the previous settings: %s", exc)
    run.begin_test()
    if run.role == "master":
        _send_total_users(run, run.runner.target_user_count)


def _health_session(environment: Environment, requests: SamplerRequests) -> FastHttpSession:
    return FastHttpSession(
        environment.host,
        # Not Locust's request event: the sampler's requests stay out of Locust's statistics.
        request_event=cast("EventHook", requests),  # the session only calls fire()
        user=None,
        insecure=False,
        headers=auth_headers(),
        network_timeout=30.0,
        connection_timeout=30.0,
    )


def _send_total_users(run: LoadRun, total: int) -> None:
    runner = run.runner
    if isinstance(runner, MasterRunner):
        runner.send_message(MSG_USERS, {"total": total, "workers": runner.worker_count})


def _on_spawning_complete(user_count: int, **_kwargs: Any) -> None:
    run = _Process.run
    if run is None:
        return
    if run.environment.reset_stats:
        # --reset-stats: Locust resets its request statistics here, on every process; so do we.
        run.stats.reset()
    run.run_info.users = user_count
    spawn_rate = getattr(run.environment.parsed_options, "spawn_rate", None)
    run.run_info.spawn_rate = float(spawn_rate) if spawn_rate is not None else None
    if run.role == "master":
        _send_total_users(run, user_count)


def _on_test_stopping(environment: Environment, **_kwargs: Any) -> None:
    run = _Process.run
    if run is not None and run.arrivals is not None:
        run.arrivals.stop()  # idle users stop waiting; no new arrivals


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    run = _Process.run
    if run is not None:
        run.end_test()


def _on_report_to_master(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    run = _Process.run
    if run is not None and run.role == "worker":
        data[REPORT_KEY] = run.transport()


def _on_worker_report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    run = _Process.run
    if run is not None and run.role == "master" and REPORT_KEY in data:
        run.merge(data[REPORT_KEY], client_id)


def _on_final_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    run = _Process.run
    if run is not None:
        run.on_final(msg.node_id, msg.data)


def _on_flush_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    run = _Process.run
    if run is None:
        return
    state = run.runner.state
    if state in (STATE_SPAWNING, STATE_RUNNING):
        run.runner.stop()  # its test_stop cancels what is in flight and sends the final report
    elif state in (STATE_STOPPED, STATE_INIT):
        run.send_final()
    # otherwise a stop is under way, and its test_stop sends the final report


def _on_users_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    run = _Process.run
    if run is not None and isinstance(msg.data, dict):
        total = msg.data.get("total")
        if isinstance(total, int) and total >= 0:
            run.total_users = total
        workers = msg.data.get("workers")
        if isinstance(workers, int) and workers > 0:
            run.set_worker_processes(workers)


def _on_refused_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    run = _Process.run
    reason = msg.data.get("reason") if isinstance(msg.data, dict) else None
    if run is not None and isinstance(reason, str):
        run.stop_for_refusals(f"{reason[:300]} (a worker's requests)")


def _on_reset_stats(**_kwargs: Any) -> None:
    """The web UI's "Reset stats" (fired on the master, which holds the merged statistics)."""
    run = _Process.run
    if run is not None:
        run.stats.reset()


def _on_worker_quitting(environment: Environment, **_kwargs: Any) -> None:
    run = _Process.run
    if run is None:
        return
    state = run.runner.state
    if state in (STATE_SPAWNING, STATE_RUNNING):
        run.runner.stop()  # a Ctrl-C on the worker: its test_stop cancels and reports
    elif state in (STATE_CLEANUP, STATE_STOPPING):
        # A stop already under way in a message greenlet (the master's flush or stop, which a
        # Ctrl-C to the whole process group can beat here): Locust says "quit" right after this
        # listener, and the master takes no report after it, so let that stop send it first.
        run.wait_for_final()


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    run = _Process.run
    if run is None or run.role == "worker":
        return
    runner = run.runner
    if run.role == "local" and runner.state in (STATE_SPAWNING, STATE_RUNNING):
        runner.stop()  # Ctrl-C reaches here with users running: cancel what they left
    run.stop_emulator()  # first: its worker log is whole once it has stopped (the cost)
    run.finish()


def _on_quit(**_kwargs: Any) -> None:
    run = _Process.run
    if run is None or run.role == "worker":
        return
    options = run.environment.parsed_options
    # --json prints Locust's statistics as JSON on stdout: keep stdout parseable then.
    stream = sys.stderr if options is not None and getattr(options, "json", False) else sys.stdout
    snapshot = run.snapshot or take_snapshot(run.stats, run.final_results)
    stream.write("\n" + final_table(snapshot))
    if snapshot.slo is not None:
        stream.write(slo_line(dict(snapshot.slo)))
    if snapshot.cost is not None:
        stream.write(snapshot.cost.line())
    if snapshot.cold_starts is not None:
        stream.write(snapshot.cold_starts.line())
    if snapshot.comparison is not None:
        stream.write(
            "\nCompared with the baseline (--baseline)\n" + snapshot.comparison.format_text()
        )
    if run.refusal is not None:
        stream.write(f"run stopped early (exit status {EXIT_BAD_SETUP}): {run.refusal}\n")
    lost = snapshot.lost_workers
    for line in lost:
        stream.write(line + "\n")
    if lost and run.refusal is None:
        stream.write(f"{len(lost)} worker(s) lost during the run (exit status {EXIT_BAD_SETUP})\n")
    stream.flush()
