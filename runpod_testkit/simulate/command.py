"""`runpod-testkit simulate`: plan capacity offline, on the emulator's model and a virtual clock."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BANNER", "add_simulate_command"]

BANNER = (
    "SIMULATION: no endpoint was called; the emulator's model of queue, workers, cold starts "
    "and scaler ran on a virtual clock (README: Plan capacity offline, for its fidelity)"
)
_PROG = "runpod-testkit simulate"


@dataclass(frozen=True)
class _Traffic:
    arrivals: list[float]
    durations: list[float]
    duration_s: float
    description: dict[str, Any]
    """What the JSON says of it (source, durations, span, jobs, seed)."""


def add_simulate_command(commands: Any) -> None:
    """Register `simulate` on the `runpod-testkit` subcommands (an argparse subparsers action)."""
    from runpod_testkit.argtypes import bounded
    from runpod_testkit.slo import SloRule

    parser = commands.add_parser(
        "simulate",
        help="plan capacity offline: run traffic against endpoint settings on a virtual clock",
        description=(
            "Replay traffic (a Poisson rate, a rate schedule, or a recorded run) against endpoint "
            "settings on the emulator's own model, on a virtual clock: the job statistics a load "
            "run writes, plus cost and SLO attainment. With --sweep, settings take lists "
            "(5,30,120) or ranges (1..10) and each combination is one row. Exit status: 0 done, "
            "2 bad input."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    traffic = parser.add_mutually_exclusive_group(required=True)
    traffic.add_argument(
        "--rate", type=float, default=None, help="Poisson arrivals at this many jobs/s"
    )
    traffic.add_argument(
        "--rate-schedule",
        default=None,
        metavar="CSV",
        help="a CSV of time,rate rows (s, jobs/s): Poisson arrivals at each rate from its time",
    )
    traffic.add_argument(
        "--replay",
        default=None,
        metavar="JOBLOG|JOBSTATS.json",
        help="the submission times of a recorded run: an emulator --job-log (its executionTimes "
        "too, unless --job-duration is given) or a job-stats JSON with its time series",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="traffic span in seconds (required with --rate and --rate-schedule; a replay "
        "lasts as long as its recording)",
    )
    durations = parser.add_mutually_exclusive_group()
    durations.add_argument(
        "--job-duration",
        default=None,
        metavar="SPEC",
        help="each job's execution time: seconds (2.5), uniform:A:B, exp:MEAN or "
        "lognormal:MEDIAN:SIGMA (default 1, or a --job-log's own executionTimes)",
    )
    durations.add_argument(
        "--durations-from",
        default=None,
        metavar="JOBSTATS.json",
        help="draw execution times from the executionTime histogram of a recorded run",
    )
    settings = parser.add_argument_group(
        "endpoint settings (with --sweep: A..B or X,Y,Z for several)"
    )
    settings.add_argument("--workers-min", default="0", help="active (always-on) workers")
    settings.add_argument("--workers-max", default="3", help="the most workers the scaler starts")
    settings.add_argument("--cold-start-s", default="1", help="a worker's start to its first job")
    settings.add_argument(
        "--idle-timeout-s", default="5", help="an idle worker above --workers-min stops after"
    )
    settings.add_argument(
        "--scaler",
        default="queue-delay",
        help="queue-delay (a job waiting --scaler-threshold s adds a worker) or request-count "
        "(ceil((queued + running) / --scaler-threshold) workers)",
    )
    settings.add_argument(
        "--scaler-threshold",
        default="4",
        help="seconds (queue-delay) or requests per worker (request-count)",
    )
    settings.add_argument(
        "--execution-timeout-s",
        default=None,
        help="policy.executionTimeout of every job (default production's)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="one simulation per combination of settings"
    )
    parser.add_argument(
        "--jobs",
        type=bounded(int, 1),
        default=1,
        metavar="N",
        help="run sweep points in N processes",
    )
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        type=SloRule.parse,
        metavar="RULE",
        help="a job meets the SLO when it completes within every rule (e.g. 'e2e<5s'); repeatable",
    )
    parser.add_argument(
        "--slo-target",
        type=bounded(float, 0.0, 1.0),
        default=0.99,
        help="the SLO attainment a sweep setting must reach to count as meeting it",
    )
    parser.add_argument(
        "--gpu-price-per-s", type=bounded(float, 0.0), default=None, help="dollars per second"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of arrivals, durations, model")
    parser.add_argument(
        "--job-stats-json", default=None, metavar="FILE", help="write the results as JSON"
    )
    parser.add_argument("--html", default=None, metavar="FILE", help="write an HTML report")
    parser.set_defaults(run=run_simulate)


def _fail(reason: str) -> int:
    print(f"{_PROG}: error: {reason}", file=sys.stderr)
    return 2


def run_simulate(args: argparse.Namespace) -> int:
    from runpod_testkit.simulate.engine import EndpointSettings
    from runpod_testkit.simulate.sweep import SWEEP_FIELDS, parse_values, sweep_settings
    from runpod_testkit.slo import Slo

    try:
        traffic = _traffic(args)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _fail(_reason(exc))
    values: dict[str, list[Any]] = {}
    try:
        for name, kind in SWEEP_FIELDS.items():
            raw = getattr(args, name)
            if raw is None:
                continue
            values[name] = parse_values("--" + name.replace("_", "-"), raw, kind)
            if len(values[name]) > 1 and not args.sweep:
                return _fail(f"--{name.replace('_', '-')} {raw!r} has several values: add --sweep")
        points = sweep_settings(EndpointSettings(), values)
    except ValueError as exc:
        return _fail(str(exc))
    slo = Slo(args.slo) if args.slo else None
    if args.sweep:
        return _run_sweep(args, traffic, points, slo)
    return _run_one(args, traffic, points[0], slo)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"cannot read {exc.filename!r}: {exc.strerror or exc}"
    if isinstance(exc, (KeyError, TypeError)):
        return f"a record lacks a field or has the wrong type ({exc})"
    return str(exc)


def _traffic(args: argparse.Namespace) -> _Traffic:
    """Arrivals and durations (s) from the traffic options."""
    from runpod_testkit.simulate import inputs

    recorded: list[float | None] | None = None
    if args.replay is not None:
        if inputs.is_job_stats_json(args.replay):
            arrivals = inputs.job_stats_arrivals(args.replay, seed=args.seed)
        else:
            arrivals, recorded = inputs.job_log_arrivals(args.replay)
        duration_s = args.duration_s if args.duration_s is not None else arrivals[-1]
        traffic: dict[str, Any] = {"replay": Path(args.replay).name}
    else:
        if args.duration_s is None or not args.duration_s > 0:
            raise ValueError("--duration-s must be given and above 0 with --rate/--rate-schedule")
        duration_s = args.duration_s
        if args.rate is not None:
            if not args.rate > 0:
                raise ValueError(f"--rate must be above 0 jobs/s, got {args.rate:g}")
            arrivals = inputs.poisson_arrivals(args.rate, duration_s, seed=args.seed)
            traffic = {"rate": args.rate}
        else:
            schedule = inputs.read_rate_schedule(args.rate_schedule)
            arrivals = inputs.scheduled_arrivals(schedule, duration_s, seed=args.seed)
            traffic = {"rateSchedule": Path(args.rate_schedule).name}
    if not arrivals:
        raise ValueError("the traffic has no arrivals in --duration-s")
    arrivals = [t for t in arrivals if t <= duration_s]
    count = len(arrivals)
    if args.durations_from is not None:
        durations = inputs.histogram_durations(args.durations_from, count, seed=args.seed)
        traffic["durations"] = f"histogram of {Path(args.durations_from).name}"
    elif args.job_duration is None and recorded is not None:
        durations = [0.0 if value is None else value for value in recorded[:count]]
        traffic["durations"] = "recorded executionTimes"
    else:
        spec = args.job_duration or "1"
        durations = inputs.sample_durations(spec, count, seed=args.seed)
        traffic["durations"] = spec
    traffic.update({"durationS": duration_s, "jobs": count, "seed": args.seed})
    return _Traffic(arrivals, durations, duration_s, traffic)


def _run_one(
    args: argparse.Namespace,
    traffic: _Traffic,
    settings: Any,
    slo: Any,
) -> int:
    from runpod_testkit.loadtest.summary import job_stats_document
    from runpod_testkit.report import write_html_report
    from runpod_testkit.simulate.engine import simulate
    from runpod_testkit.slo import slo_html, slo_line

    result = simulate(
        traffic.arrivals,
        traffic.durations,
        settings,
        duration_s=traffic.duration_s,
        seed=args.seed,
        slo=slo,
        price_per_s=args.gpu_price_per_s,
    )
    stats = result.stats
    summary = stats.slo_summary(result.duration_s)
    lines = [BANNER, "Job statistics (runpod-testkit simulate)", stats.format_table().rstrip()]
    lines.append(
        f"workers: {result.workers_started} started ({result.cold_starts} cold starts), "
        f"{result.worker_seconds:.1f} worker-seconds, {result.billed_seconds} billed seconds"
        + ("" if result.dollars is None else f", ${result.dollars:.4f}")
    )
    if summary is not None:
        lines.append(slo_line(summary).rstrip())
    print("\n".join(lines))
    simulation = {
        "simulated": True,
        "note": BANNER,
        "settings": settings.to_json(),
        "traffic": traffic.description,
        "durationS": round(result.duration_s, 3),
        "workersStarted": result.workers_started,
        "coldStarts": result.cold_starts,
    }
    extra: dict[str, Any] = {"simulation": simulation}
    if result.cost is not None:
        extra["cost"] = result.cost.to_json()
    if summary is not None:
        extra["slo"] = summary
    problems: list[str] = []
    if args.job_stats_json:
        document = job_stats_document(stats, extra=extra)
        problems += _write(
            "--job-stats-json", args.job_stats_json, json.dumps(document, indent=2) + "\n"
        )
    if args.html:
        sections = [_banner_html()]
        if result.cost is not None:
            sections.append(result.cost.html_section())
        if summary is not None:
            sections.append(slo_html(summary))
        try:
            write_html_report(
                stats,
                args.html,
                title="Simulation: job statistics",
                warnings=[BANNER],
                sections=sections,
            )
        except OSError as exc:
            problems.append(f"--html: cannot write {args.html!r}: {exc.strerror or exc}")
    for problem in problems:
        print(f"{_PROG}: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _banner_html() -> str:
    from html import escape

    return f'<section id="simulation-banner"><h2>Simulation</h2><p>{escape(BANNER)}</p></section>'


def _write(flag: str, path: str, text: str) -> list[str]:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        return [f"{flag}: cannot write {path!r}: {exc.strerror or exc}"]
    return []


def _run_sweep(
    args: argparse.Namespace,
    traffic: _Traffic,
    points: list[Any],
    slo: Any,
) -> int:
    from runpod_testkit.simulate.sweep import (
        cheapest_meeting_slo,
        describe,
        run_sweep,
        sweep_html,
        sweep_table,
    )

    rows = run_sweep(
        traffic.arrivals,
        traffic.durations,
        points,
        duration_s=traffic.duration_s,
        seed=args.seed,
        slo=slo,
        price_per_s=args.gpu_price_per_s,
        jobs=args.jobs,
    )
    cheapest = cheapest_meeting_slo(rows, args.slo_target) if slo else None
    lines = [BANNER, f"Sweep of {len(rows)} settings (runpod-testkit simulate)", sweep_table(rows)]
    if slo is None:
        lines.append("no --slo: no setting is named the cheapest that meets it")
    elif cheapest is None:
        lines.append(f"no setting met SLO {slo.describe()} for {args.slo_target:.2%} of jobs")
    else:
        lines.append(
            f"cheapest setting meeting SLO {slo.describe()} for {args.slo_target:.2%} of jobs: "
            f"{describe(cheapest.settings)}"
        )
    print("\n".join(lines))
    problems: list[str] = []
    if args.job_stats_json:
        document = {
            "simulation": {"simulated": True, "note": BANNER, "traffic": traffic.description},
            "slo": {
                "rules": [] if slo is None else [rule.rule for rule in slo.rules],
                "target": args.slo_target,
            },
            "sweep": [row.to_json() for row in rows],
            "cheapest": None if cheapest is None else cheapest.to_json(),
        }
        problems += _write(
            "--job-stats-json", args.job_stats_json, json.dumps(document, indent=2) + "\n"
        )
    if args.html:
        html = sweep_html(rows, cheapest, title="Simulation: settings sweep", banner=BANNER)
        problems += _write("--html", args.html, html)
    for problem in problems:
        print(f"{_PROG}: error: {problem}", file=sys.stderr)
    return 2 if problems else 0
