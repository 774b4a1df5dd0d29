"""`runpod-testkit compare BASELINE.json RUN.json`: a load run against a baseline.

Exit status: 0 no regression rule broken; 2 a file or rule that cannot be used, or runs
whose workload settings differ (without --ignore-settings); 4 a regression rule broken.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runpod_testkit.compare import (
    DEFAULT_MIN_CHANGE_MS,
    DEFAULT_MIN_CHANGE_PCT,
    EXIT_NOT_COMPARABLE,
    CompareError,
    compare,
    load_run,
    parse_rule,
)

__all__ = ["add_compare_command", "run_compare"]


def _rule(raw: str) -> str:
    try:
        parse_rule(raw)
    except CompareError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return raw


def _non_negative(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {raw}")
    return value


def add_compare_command(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "compare",
        help="compare a load run's --job-stats-json with a baseline's",
        description=(
            "Every metric and percentile of two --job-stats-json files side by side, with the "
            "change and whether it is beyond run-to-run noise (99%% intervals from the HDR "
            "histograms), then the runs' cost, SLO and cold starts. Exit status: 0 no "
            "regression, 2 unusable input or runs whose workload settings differ, 4 a "
            "--threshold regression rule broken."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("baseline", metavar="BASELINE.json")
    parser.add_argument("run_file", metavar="RUN.json")
    parser.add_argument(
        "--threshold",
        type=_rule,
        action="append",
        default=[],
        metavar="RULE",
        help="a regression rule, repeatable: METRIC:STAT:+N%% (or +N ms, +N s), e.g. "
        "'delayTime:p95:+10%%'; or a cost, SLO or cold-start figure, FIGURE:+N%% (or +N in its "
        "unit), e.g. 'cost.dollarsPerJob:+10%%', and for a figure better higher FIGURE:-N%% "
        "(or -N, -Npp), e.g. 'slo.attainment:-1pp'; broken when the change exceeds it and is "
        "beyond noise",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the comparison as Markdown")
    parser.add_argument("--html", metavar="FILE", help="also write it as an HTML page")
    parser.add_argument(
        "--min-change",
        type=_non_negative,
        default=DEFAULT_MIN_CHANGE_PCT,
        metavar="PCT",
        help="noise floor: a change of at most this percentage of the baseline is noise",
    )
    parser.add_argument(
        "--min-change-ms",
        type=_non_negative,
        default=DEFAULT_MIN_CHANGE_MS,
        metavar="MS",
        help="noise floor: a change of at most this many ms is noise",
    )
    parser.add_argument(
        "--ignore-settings",
        action="store_true",
        help="compare runs whose workload settings differ (users, arrival rate, input, ...) "
        "instead of exiting with status 2",
    )
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    try:
        comparison = compare(
            load_run(args.baseline),
            load_run(args.run_file),
            args.threshold,
            min_change_pct=args.min_change,
            min_change_ms=args.min_change_ms,
        )
    except CompareError as exc:
        print(f"runpod-testkit compare: error: {exc}", file=sys.stderr)
        return EXIT_NOT_COMPARABLE
    sys.stdout.write(comparison.format_text())
    for flag, path, text in (
        ("--markdown", args.markdown, comparison.to_markdown),
        ("--html", args.html, comparison.to_html),
    ):
        if not path:
            continue
        try:
            Path(path).write_text(text(), encoding="utf-8")
        except OSError as exc:
            print(
                f"runpod-testkit compare: error: {flag}: cannot write {path!r}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_NOT_COMPARABLE
    status = comparison.exit_status(ignore_settings=args.ignore_settings)
    if comparison.not_comparable:
        verb = "compared anyway (--ignore-settings)" if args.ignore_settings else "exit status 2"
        print(f"the runs' workloads differ: {verb}", file=sys.stderr)
    if comparison.regressions:
        print(f"{len(comparison.regressions)} regression rule(s) broken", file=sys.stderr)
    return status
