"""The load suite's command-line options (also settable in locust.conf) and their parsed form.

`add_options(parser)` registers them on Locust's parser (`init_command_line_parser`).
`Settings.from_options(namespace)` reads them back. It accepts what argparse produced, what a
config file produced, and the plain strings Locust's web UI form and a master's spawn message
carry, so every process reads the same values the same way.

Every option value stays a plain JSON-able type (str, int, float, list of str): Locust ships the
master's options to its workers in each spawn message. `--probe-input @FILE` is read on the
process that parses the command line and passed on as JSON text, so workers never need the file.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from runpod_testkit.argtypes import bounded
from runpod_testkit.emulator.model import SCALERS
from runpod_testkit.gpu_prices import GpuPrice, GpuPriceError, load_price_table, resolve_gpu
from runpod_testkit.loadtest.failsafe import DEFAULT_MAX_RETRIES, DEFAULT_REFUSAL_LIMIT
from runpod_testkit.operations import operation
from runpod_testkit.probe_protocol import ProbeInputError, check_probe_input
from runpod_testkit.thresholds import Threshold

__all__ = [
    "DEFAULT_HEALTH_INTERVAL_S",
    "DEFAULT_JOB_TIMEOUT_S",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_RUNSYNC_WAIT_MS",
    "ENV_PREFIX",
    "OPTIONS",
    "PACING_CHOICES",
    "EmulatorSettings",
    "Settings",
    "SettingsError",
    "add_options",
    "parse_probe_input",
]

DEFAULT_POLL_INTERVAL_S = 0.5
DEFAULT_RUNSYNC_WAIT_MS = 10_000
DEFAULT_JOB_TIMEOUT_S = 600.0
DEFAULT_HEALTH_INTERVAL_S = 2.0
GROUP_TITLE = "runpod-testkit load runs"
ENV_PREFIX = "LOCUST_"
PACING_CHOICES = ("auto", "on", "off")

_RUNSYNC_WAIT = operation("runsync").query_param("wait")
assert _RUNSYNC_WAIT is not None


class SettingsError(ValueError, argparse.ArgumentTypeError):
    """An option value that cannot be used; the message names the option and what to do."""


# --------------------------------------------------------------------------- value parsers


def _optional(parse: Callable[[object], Any]) -> Callable[[object], Any]:
    """None, "" and "none" (the web UI's empty field) mean unset."""

    def parse_optional(raw: object) -> Any:
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none")):
            return None
        return parse(raw)

    return parse_optional


def _one_of(choices: Sequence[str]) -> Callable[[object], str]:
    """A word among `choices`, in any case."""

    def parse_choice(raw: object) -> str:
        text = str(raw).strip().lower()
        if text not in choices:
            raise SettingsError(f"expected one of {', '.join(choices)}, got {str(raw)[:40]!r}")
        return text

    return parse_choice


def _load_json_text(raw: str) -> tuple[Any, str]:
    """(value, where) from JSON text or `@path` naming a JSON file."""
    text = raw.strip()
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        where = f"file {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SettingsError(f"{where}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{where}: cannot read it ({exc})") from None
    else:
        where = "the value"
    try:
        return json.loads(text), where
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "give the job's input object, e.g. '{\"sleep_ms\": 500}', or a list of them"
        ) from None


def parse_probe_input(raw: object) -> tuple[dict[str, Any], ...]:
    """The job inputs of `--probe-input`: a JSON object (every job's `input`), or a non-empty
    array of objects (each job picks one at random); JSON text or `@FILE`. An input whose keys
    are all probe-protocol keys must follow the protocol (a negative `sleep_ms` would fail
    every job); inputs with other keys are for the user's own handler and are not checked."""
    if isinstance(raw, str):
        value, where = _load_json_text(raw)
    else:
        value, where = raw, "the value"
    inputs = value if isinstance(value, list) else [value]
    if not inputs:
        raise SettingsError(f"{where}: the list of inputs is empty")
    for index, item in enumerate(inputs):
        at = f" item {index}" if isinstance(value, list) else ""
        if not isinstance(item, dict):
            raise SettingsError(
                f"{where}{at}: expected a JSON object (the job's 'input'), "
                f"got {type(item).__name__}"
            )
        try:
            check_probe_input(item)
        except ProbeInputError as exc:
            raise SettingsError(
                f"{where}{at}: {exc} (an input of probe keys only must follow the probe "
                "protocol; see the README)"
            ) from None
    return tuple(inputs)


def _probe_input_text(raw: object) -> str:
    """argparse type: check the value and return it as compact JSON (a file is read here)."""
    inputs = parse_probe_input(raw)
    return orjson.dumps(inputs[0] if len(inputs) == 1 else list(inputs)).decode()


def _faults_text(raw: object) -> str:
    """argparse type of --emulator-faults: check the document (a file is read here) and pass it
    on as compact JSON, so workers and the emulator process never need the file."""
    from runpod_testkit.emulator.faults import FaultConfigError, load_faults

    try:
        return load_faults(str(raw).strip()).source
    except FaultConfigError as exc:
        raise SettingsError(str(exc)) from None


def _threshold_text(raw: object) -> str:
    text = str(raw).strip()
    Threshold.parse(text)  # ThresholdError is an ArgumentTypeError: argparse shows its message
    return text


def _regression_text(raw: object) -> str:
    from runpod_testkit.compare import CompareError, parse_rule

    text = str(raw).strip()
    try:
        parse_rule(text)
    except CompareError as exc:
        raise SettingsError(str(exc)) from None
    return text


def _slo_text(raw: object) -> str:
    from runpod_testkit.slo import SloRule

    text = str(raw).strip()
    SloRule.parse(text)  # SloError is an ArgumentTypeError: argparse shows its message
    return text


def _gpu_price(gpu: str | None, prices: str | None, price_per_s: float | None) -> GpuPrice | None:
    """--gpu resolved in the shipped table and --gpu-prices (SettingsError: one line)."""
    if gpu is None:
        return None
    if price_per_s is not None:  # the given price wins over the table's
        name, _, tier = gpu.partition(":")
        return GpuPrice(
            name.strip(), tier.strip() or "flex", price_per_s, "--gpu-price-per-s", None
        )
    try:
        return resolve_gpu(gpu, load_price_table(prices))
    except GpuPriceError as exc:
        flag = "--gpu-prices" if prices is not None and str(exc).startswith(prices) else "--gpu"
        raise SettingsError(f"{flag}: {exc}") from None


def _path_or_none(raw: object) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


# --------------------------------------------------------------------------- option table


@dataclass(frozen=True)
class _Option:
    flag: str
    parse: Callable[[object], Any]
    default: Any
    help: str
    metavar: str
    in_web_ui: bool = True
    repeatable: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env_var(self) -> str:
        """The environment variable Locust reads it from, named as Locust names its own."""
        return f"{ENV_PREFIX}{self.dest.upper()}"


OPTIONS: tuple[_Option, ...] = (
    _Option(
        "--probe-input",
        _optional(_probe_input_text),
        None,
        "the job 'input' as JSON, or a JSON list of inputs (each job picks one at random), or "
        '@FILE holding either. Default: a probe job per user class, e.g. {"sleep_ms": 500}',
        "JSON|@FILE",
    ),
    _Option(
        "--poll-interval",
        bounded(float, 0.001),
        DEFAULT_POLL_INTERVAL_S,
        f"seconds between /status polls, and between empty /stream calls "
        f"(default {DEFAULT_POLL_INTERVAL_S:g})",
        "SECONDS",
    ),
    _Option(
        "--runsync-wait",
        bounded(int, _RUNSYNC_WAIT.minimum, _RUNSYNC_WAIT.maximum),
        DEFAULT_RUNSYNC_WAIT_MS,
        f"RunSyncUser's ?wait= in ms (default {DEFAULT_RUNSYNC_WAIT_MS}); a job still running "
        "then is polled on /status. A stop waits for pending /runsync calls (their job ids are "
        "unknown until they answer)",
        "MS",
    ),
    _Option(
        "--job-timeout",
        bounded(float, 0.001),
        DEFAULT_JOB_TIMEOUT_S,
        f"seconds a user follows one job (default {DEFAULT_JOB_TIMEOUT_S:g}); then it cancels "
        "it and counts it as 'timeout'",
        "SECONDS",
    ),
    _Option(
        "--arrival-rate",
        bounded(float, 0.0),
        0.0,
        "open model: submit this many jobs per second in total (Poisson arrivals), whatever "
        "the completions; users become the pool that carries them (an arrival with no free "
        "user is counted as 'dropped'). 0 (the default) keeps Locust's closed loop",
        "JOBS_PER_S",
    ),
    _Option(
        "--max-in-flight",
        _optional(bounded(int, 1)),
        None,
        "open model: at most this many jobs in flight in total (arrivals beyond it are "
        "'dropped'); default: the number of users",
        "N",
    ),
    _Option(
        "--health-interval",
        bounded(float, 0.0),
        DEFAULT_HEALTH_INTERVAL_S,
        f"seconds between /health samples of queue depth and workers (default "
        f"{DEFAULT_HEALTH_INTERVAL_S:g}); 0 turns the sampler off",
        "SECONDS",
    ),
    _Option(
        "--pacing",
        _one_of(PACING_CHOICES),
        "auto",
        "keep each operation under the endpoint's documented rate limit (/run 1000 per 10 s, "
        "/status and /stream 2000 per 10 s, ...; a distributed run divides it among its "
        "workers): 'auto' (the default) paces a remote host and not a loopback one, 'on' "
        "always, 'off' never",
        "auto|on|off",
    ),
    _Option(
        "--max-retries",
        bounded(int, 0),
        DEFAULT_MAX_RETRIES,
        f"times a request that got 429, a 5xx or lost its connection is sent again, with "
        f"backoff and honouring Retry-After (default {DEFAULT_MAX_RETRIES}); /run and /runsync "
        "are resent only after a 429 or a refused connection, never after a 5xx",
        "N",
        in_web_ui=False,
    ),
    _Option(
        "--refusal-limit",
        bounded(int, 0),
        DEFAULT_REFUSAL_LIMIT,
        f"stop the whole run (exit status 2) after this many consecutive connection errors or "
        f"401/403 answers in one process (default {DEFAULT_REFUSAL_LIMIT}; 0: never)",
        "N",
        in_web_ui=False,
    ),
    _Option(
        "--threshold",
        _threshold_text,
        None,
        "a pass/fail rule, repeatable, e.g. 'delayTime:p95<2000', 'e2e:p99<5s', "
        "'failures:rate<1%%'; a failed rule ends the run with exit status 3",
        "RULE",
        in_web_ui=False,
        repeatable=True,
    ),
    _Option(
        "--slo",
        _slo_text,
        None,
        "a service-level objective per job, repeatable, e.g. 'e2e<5s', 'ttfc<800ms': a job "
        "meets the SLO when it COMPLETED and meets every rule; the end shows attainment (the "
        "share of ended jobs that met it) and goodput (such jobs per second)",
        "RULE",
        in_web_ui=False,
        repeatable=True,
    ),
    _Option(
        "--gpu-price-per-s",
        _optional(bounded(float, 0.0)),
        None,
        "dollars per worker-second (your GPU's serverless price): the end shows the run's "
        "estimated cost, per completed job and per 1,000 jobs, beside its worker-seconds",
        "DOLLARS",
        in_web_ui=False,
    ),
    _Option(
        "--gpu",
        _optional(str),
        None,
        "a named GPU instead of --gpu-price-per-s: its Runpod Serverless per-second price "
        "(flex, or NAME:active) from the table shipped with runpod-testkit (dated, with its "
        "source), e.g. A100-80GB, H100-80GB, RTX-4090, L40S",
        "NAME",
        in_web_ui=False,
    ),
    _Option(
        "--gpu-prices",
        _path_or_none,
        None,
        "a TOML or JSON price table for --gpu, added over the shipped one "
        "(gpus.NAME.flex / .active in dollars per second)",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--baseline",
        _path_or_none,
        None,
        "a --job-stats-json file of an earlier run: at the end, compare this run with it "
        "(as `runpod-testkit compare` does) and apply the --regression rules",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--regression",
        _regression_text,
        None,
        "with --baseline, repeatable: a metric may grow by this much, e.g. "
        "'delayTime:p95:+10%%', 'e2e:p50:+200ms', 'cost.dollarsPerJob:+10%%' or "
        "'slo.attainment:-1pp' (see runpod-testkit compare --help); a rule broken beyond "
        "run-to-run noise ends the run with exit status 4",
        "RULE",
        in_web_ui=False,
        repeatable=True,
    ),
    _Option(
        "--job-stats-json",
        _path_or_none,
        None,
        "write the job statistics (delayTime, executionTime, e2e, ttfc, outcomes, thresholds)",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--job-stats-csv",
        _path_or_none,
        None,
        "write the percentile table as CSV",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--job-stats-html",
        _path_or_none,
        None,
        "write an HTML report with charts (opens offline)",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--junitxml",
        _path_or_none,
        None,
        "write the thresholds as JUnit XML, one test case per rule (and one failed case per "
        "worker lost in a distributed run), for CI systems",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-workers-min",
        _optional(bounded(int, 0)),
        None,
        "embedded emulator (no --host): workers kept warm",
        "N",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-workers-max",
        _optional(bounded(int, 1)),
        None,
        "embedded emulator: the most workers it scales to",
        "N",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-cold-start-ms",
        _optional(bounded(int, 0)),
        None,
        "embedded emulator: a new worker's cold start",
        "MS",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-idle-timeout-s",
        _optional(bounded(float, 0.0)),
        None,
        "embedded emulator: an idle worker stops after this long",
        "SECONDS",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-queue-delay-s",
        _optional(bounded(float, 0.0)),
        None,
        "embedded emulator: a job waiting this long in the queue starts another worker",
        "SECONDS",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-scaler",
        _optional(_one_of(SCALERS)),
        None,
        "embedded emulator: queue-delay (production's default) or request-count, as "
        "`runpod-testkit simulate` plans them",
        "NAME",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-scaler-threshold",
        _optional(bounded(float, 0.0)),
        None,
        "embedded emulator: the scaler's threshold (seconds for queue-delay, requests per "
        "worker for request-count)",
        "N",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-job-log",
        _path_or_none,
        None,
        "embedded emulator: append one JSON line per job that ends (the ground truth)",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-worker-log",
        _path_or_none,
        None,
        "embedded emulator: append one JSON line per worker that stops (start, stop, billed "
        "seconds); the run's cost is then also taken from it, exactly",
        "FILE",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-faults",
        _optional(_faults_text),
        None,
        "embedded emulator: inject faults, as `runpod-testkit emulator --faults` takes them "
        "(README: Fault injection)",
        "JSON|@FILE",
        in_web_ui=False,
    ),
    _Option(
        "--emulator-worker",
        _path_or_none,
        None,
        "embedded emulator: run each worker as a real process of COMMAND (your runpod "
        'handler, e.g. "python handler.py") instead of the simulated probe',
        "COMMAND",
        in_web_ui=False,
    ),
)


def add_options(parser: Any) -> None:
    """Register the options on Locust's parser (a configargparse parser), in their own group
    of `--help`, each settable as `LOCUST_{NAME}` in the environment (a repeatable option takes
    a JSON list there, e.g. LOCUST_THRESHOLD='["e2e:p95<5s", "failures:rate<1%"]') and by its
    name in locust.conf. Options shown in the web UI get the attributes Locust's parser would
    set."""
    group = parser.add_argument_group(
        GROUP_TITLE,
        "With no --host, an emulator is started on loopback and targeted. The API key comes "
        "from RUNPOD_API_KEY.",
    )
    for option in OPTIONS:
        kwargs: dict[str, Any] = {
            "type": option.parse,
            "help": f"{option.help} [env {option.env_var}]",
            "metavar": option.metavar,
            "dest": option.dest,
            "env_var": option.env_var,
        }
        if option.repeatable:
            kwargs["action"] = "append"
            kwargs["default"] = []
        else:
            kwargs["default"] = option.default
        action = group.add_argument(option.flag, **kwargs)
        action.include_in_web_ui = option.in_web_ui
        action.is_secret = False
        action.is_required = False
        action.is_multiple = False


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EmulatorSettings:
    workers_min: int | None = None
    workers_max: int | None = None
    cold_start_ms: int | None = None
    idle_timeout_s: float | None = None
    queue_delay_s: float | None = None
    scaler: str | None = None
    scaler_threshold: float | None = None
    job_log: str | None = None
    worker_log: str | None = None
    faults: str | None = None
    """The --faults document as compact JSON text."""
    worker: str | None = None

    def args(self) -> list[str]:
        """`runpod-testkit emulator` arguments for the values that were set (not the log)."""
        flags = (
            ("--workers-min", self.workers_min),
            ("--workers-max", self.workers_max),
            ("--cold-start-ms", self.cold_start_ms),
            ("--idle-timeout-s", self.idle_timeout_s),
            ("--queue-delay-s", self.queue_delay_s),
            ("--scaler", self.scaler),
            ("--scaler-threshold", self.scaler_threshold),
            ("--worker", self.worker),
        )
        out: list[str] = []
        for flag, value in flags:
            if value is not None:
                out += [flag, str(value)]
        if self.faults is not None:
            out += ["--faults", self.faults]
        return out


@dataclass(frozen=True)
class Settings:
    probe_inputs: tuple[dict[str, Any], ...] | None = None
    """None: each user class sends its own default probe input."""
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    runsync_wait_ms: int = DEFAULT_RUNSYNC_WAIT_MS
    job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    arrival_rate: float = 0.0
    max_in_flight: int | None = None
    health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S
    pacing: str = "auto"
    max_retries: int = DEFAULT_MAX_RETRIES
    refusal_limit: int = DEFAULT_REFUSAL_LIMIT
    thresholds: tuple[Threshold, ...] = ()
    slo: tuple[str, ...] = ()
    gpu_price_per_s: float | None = None
    gpu_price: GpuPrice | None = None
    """--gpu: the named GPU's price and where it comes from (gpu_price_per_s is then its)."""
    baseline: str | None = None
    regressions: tuple[str, ...] = ()
    job_stats_json: str | None = None
    job_stats_csv: str | None = None
    job_stats_html: str | None = None
    junitxml: str | None = None
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)

    @property
    def open_model(self) -> bool:
        return self.arrival_rate > 0

    @classmethod
    def from_options(cls, options: object) -> Settings:
        """Read the options from a parsed namespace (None or missing ones take defaults);
        SettingsError names the first bad one."""
        values: dict[str, Any] = {}
        for option in OPTIONS:
            raw = getattr(options, option.dest, None) if options is not None else None
            try:
                if option.repeatable:
                    values[option.dest] = [option.parse(item) for item in _as_list(raw)]
                elif raw is None:
                    values[option.dest] = option.default
                else:
                    values[option.dest] = option.parse(raw)
            except argparse.ArgumentTypeError as exc:  # SettingsError, ThresholdError, SloError too
                raise SettingsError(f"{option.flag}: {exc}") from None
        probe = values["probe_input"]
        gpu_price = _gpu_price(values["gpu"], values["gpu_prices"], values["gpu_price_per_s"])
        if gpu_price is not None:
            values["gpu_price_per_s"] = gpu_price.price_per_s
        return cls(
            probe_inputs=None if probe is None else parse_probe_input(probe),
            poll_interval_s=values["poll_interval"],
            runsync_wait_ms=values["runsync_wait"],
            job_timeout_s=values["job_timeout"],
            arrival_rate=values["arrival_rate"],
            max_in_flight=values["max_in_flight"],
            health_interval_s=values["health_interval"],
            pacing=values["pacing"],
            max_retries=values["max_retries"],
            refusal_limit=values["refusal_limit"],
            thresholds=tuple(Threshold.parse(text) for text in values["threshold"]),
            slo=tuple(values["slo"]),
            gpu_price_per_s=values["gpu_price_per_s"],
            gpu_price=gpu_price,
            baseline=values["baseline"],
            regressions=tuple(values["regression"]),
            job_stats_json=values["job_stats_json"],
            job_stats_csv=values["job_stats_csv"],
            job_stats_html=values["job_stats_html"],
            junitxml=values["junitxml"],
            emulator=EmulatorSettings(
                workers_min=values["emulator_workers_min"],
                workers_max=values["emulator_workers_max"],
                cold_start_ms=values["emulator_cold_start_ms"],
                idle_timeout_s=values["emulator_idle_timeout_s"],
                queue_delay_s=values["emulator_queue_delay_s"],
                scaler=values["emulator_scaler"],
                scaler_threshold=values["emulator_scaler_threshold"],
                job_log=values["emulator_job_log"],
                worker_log=values["emulator_worker_log"],
                faults=values["emulator_faults"],
                worker=values["emulator_worker"],
            ),
        )


def _as_list(raw: object) -> Sequence[object]:
    if raw is None:
        return []
    if isinstance(raw, str):
        # The web UI sends a repeatable option as one comma-separated field.
        return [part for part in raw.split(",") if part.strip()]
    if isinstance(raw, (list, tuple)):
        return raw
    return [raw]
