"""Compare a load run with a baseline: two --job-stats-json documents side by side.

Every metric (delayTime, executionTime, e2e, ttfc, chunkGap, webhookDelay) and statistic
(count, mean, p50 ... p99.9, min, max) with its absolute and relative change, and a verdict:

  within noise   the two values' 99% confidence intervals overlap, or the change is at most
                 the noise floor (default 5% of the baseline and at least 5 ms)
  worse/better   the intervals are apart and the change exceeds the floor
  not judged     min, max and count (one sample or a tally: no interval), or a file without
                 histograms (written before they were added)

The interval of a percentile is distribution-free, from the HDR histogram's counts: with n
samples the p-quantile lies between the order statistics of rank floor(np - z*sqrt(np(1-p)))
and ceil(np + z*sqrt(np(1-p))) + 1 with probability ~99% (z = 2.576; Le Boudec, "Performance
Evaluation of Computer and Communication Systems", 2010, section 2.2.2). A rank below 1 or above
n leaves that side open: too few samples to bound it (p99.9 of 300 jobs is never judged
worse). The interval of the mean is mean +- z * stddev / sqrt(n). Both treat jobs as
independent samples; jobs of a closed loop that queue behind each other are not, which is
one reason for the floor.

The run's cost, SLO and cold starts (the "cost", "slo" and "coldStarts" objects) follow in a
table of their own, with rules of their own ("cost.dollarsPerJob:+10%", "slo.attainment:-1pp"):
see runpod_testkit.compare_figures.

Regression rules ("METRIC:STAT:+10%", "+200ms", "+2s") allow a metric to grow by that much;
a rule is broken when the change exceeds its allowance and is beyond noise (for statistics
that are not judged: when it exceeds the allowance). Two runs whose workload settings differ
(the "run" object of the JSON: host kind, users, spawn rate, arrival rate, in-flight cap,
user classes, probe input; and the --slo rules when both runs have them) are not comparable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

from runpod_testkit.compare_figures import (
    FIGURES,
    OBJECTS,
    Figure,
    FigureError,
    FigureRule,
    figure_interval,
    figure_value,
    format_change,
    format_figure,
    is_figure_rule,
)
from runpod_testkit.operations import JobStatus
from runpod_testkit.stats.names import METRICS, REPORTED_PERCENTILES, SUBMITTED

__all__ = [
    "DEFAULT_MIN_CHANGE_MS",
    "DEFAULT_MIN_CHANGE_PCT",
    "EXIT_NOT_COMPARABLE",
    "EXIT_REGRESSION",
    "WORKLOAD_KEYS",
    "CompareError",
    "CompareRule",
    "Comparison",
    "Distribution",
    "FigureRow",
    "FigureRule",
    "Row",
    "RuleResult",
    "RunDocument",
    "compare",
    "load_run",
    "parse_rule",
]

EXIT_REGRESSION = 4
"""A regression rule was broken (2 is bad usage, 3 a failed --threshold of a load run)."""
EXIT_NOT_COMPARABLE = 2
"""A file could not be read, a rule did not parse, or the runs' workloads differ."""
Z_99 = 2.576
DEFAULT_MIN_CHANGE_PCT = 5.0
DEFAULT_MIN_CHANGE_MS = 5.0
WORKLOAD_KEYS = (
    "host",
    "users",
    "spawnRate",
    "arrivalRate",
    "maxInFlight",
    "userClasses",
    "probeInput",
)
_UNSIGNED: dict[int, Literal["H", "I", "Q"]] = {2: "H", 4: "I", 8: "Q"}
"""struct format of a native unsigned integer, by its size in bytes."""
_STATS: tuple[str, ...] = ("count", "mean", *(label for label, _ in REPORTED_PERCENTILES))
_UNJUDGED = ("min", "max")

Verdict = Literal["within noise", "worse", "better", "not judged", "no samples", "one run only"]


class CompareError(ValueError):
    """A file or a rule that cannot be used; the message names it and what to do."""


# --------------------------------------------------------------------------- distributions


class Distribution:
    """One metric's HDR histogram, read once into its non-empty buckets: each bucket's lowest
    and highest value and the cumulative count up to it. Values are clamped into the exact
    [min, max] the run recorded, as the run's own percentiles are."""

    __slots__ = ("cumulative", "highs", "lows", "maximum", "minimum", "total")

    def __init__(self, buckets: Sequence[tuple[int, int, int]], minimum: int, maximum: int) -> None:
        self.lows = [low for low, _, _ in buckets]
        self.highs = [high for _, high, _ in buckets]
        self.cumulative: list[int] = []
        running = 0
        for _, _, count in buckets:
            running += count
            self.cumulative.append(running)
        self.total = running
        self.minimum = minimum
        self.maximum = maximum

    @classmethod
    def decode(cls, encoded: str, minimum: int, maximum: int) -> Distribution:
        try:
            hdr: Any = HdrHistogram.decode(encoded)
        except Exception as exc:  # hdrh raises assorted types for a corrupt blob
            raise CompareError(f"not an HDR histogram ({exc})") from None
        # The counts are a ctypes array of 2, 4 or 8-byte unsigned counters (the encoding's
        # word size): read through a memoryview as that native type, one C-level copy, 20x
        # faster than iterating the ctypes array.
        view = memoryview(hdr.counts)
        counts = view.cast("B").cast(_UNSIGNED[view.itemsize]).tolist()
        value_at = hdr.get_value_from_index
        # The counts array's buckets cover the values without gaps or overlap, in order, so a
        # bucket ends one below where the next begins: two cheap calls instead of hdrh's
        # get_highest_equivalent_value, which took two thirds of a one-hour file's decoding.
        buckets = [
            (value_at(index), value_at(index + 1) - 1, count)
            for index, count in enumerate(counts)
            if count
        ]
        return cls(buckets, minimum, maximum)

    def _clamp(self, value: float) -> float:
        return min(max(value, self.minimum), self.maximum)

    def _bucket(self, rank: int) -> int:
        """Index of the bucket holding the rank-th smallest value (1-based)."""
        low, high = 0, len(self.cumulative) - 1
        while low < high:
            middle = (low + high) // 2
            if self.cumulative[middle] >= rank:
                high = middle
            else:
                low = middle + 1
        return low

    def percentile(self, percent: float) -> int:
        """HDR's rule, as the run reports percentiles: the top of the bucket of rank
        max(1, round(p% of n))."""
        rank = max(1, int(percent * self.total / 100 + 0.5))
        return int(self._clamp(self.highs[self._bucket(min(rank, self.total))]))

    def interval(self, percent: float, z: float = Z_99) -> tuple[float, float]:
        """The confidence interval of the percentile (order statistics, see the module
        docstring); -inf / inf where the sample is too small to bound that side."""
        n, p = self.total, percent / 100
        spread = z * math.sqrt(n * p * (1 - p))
        low_rank = math.floor(n * p - spread)
        high_rank = math.ceil(n * p + spread) + 1
        low = -math.inf if low_rank < 1 else self._clamp(self.lows[self._bucket(low_rank)])
        high = math.inf if high_rank > n else self._clamp(self.highs[self._bucket(high_rank)])
        return low, high

    def mean_interval(self, mean: float, z: float = Z_99) -> tuple[float, float]:
        """mean +- z standard errors, the deviation taken from bucket midpoints."""
        n = self.total
        if n < 2:
            return -math.inf, math.inf
        previous = 0
        squares = 0.0
        for low, high, cumulative in zip(self.lows, self.highs, self.cumulative, strict=True):
            middle = (low + high) / 2
            squares += (cumulative - previous) * (middle - mean) ** 2
            previous = cumulative
        error = z * math.sqrt(squares / (n - 1)) / math.sqrt(n)
        return mean - error, mean + error


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class RunDocument:
    """A --job-stats-json document as compare reads it."""

    name: str
    metrics: Mapping[str, Mapping[str, Any]]
    jobs: Mapping[str, int]
    run: Mapping[str, Any] | None
    distributions: Mapping[str, Distribution]
    objects: Mapping[str, Any] = field(default_factory=dict)
    """The document's "cost", "slo" and "coldStarts" objects (those present)."""

    @classmethod
    def from_json(cls, document: object, name: str) -> RunDocument:
        if not isinstance(document, Mapping) or not isinstance(document.get("metrics"), Mapping):
            raise CompareError(f"{name}: not a --job-stats-json document (no 'metrics' object)")
        metrics = document["metrics"]
        jobs = document.get("jobs")
        run = document.get("run")
        histograms = document.get("histograms") or {}
        if not isinstance(histograms, Mapping):
            raise CompareError(f"{name}: 'histograms' is not an object")
        distributions: dict[str, Distribution] = {}
        for metric, encoded in histograms.items():
            summary = metrics.get(metric)
            if not isinstance(summary, Mapping) or not isinstance(encoded, str):
                raise CompareError(f"{name}: histograms.{metric:.40} has no matching metric")
            low, high = summary.get("min"), summary.get("max")
            if not isinstance(low, int) or not isinstance(high, int):
                raise CompareError(f"{name}: metrics.{metric:.40} has no min and max")
            try:
                distributions[metric] = Distribution.decode(encoded, low, high)
            except CompareError as exc:
                raise CompareError(f"{name}: histograms.{metric:.40}: {exc}") from None
        return cls(
            name=name,
            metrics={k: v for k, v in metrics.items() if isinstance(v, Mapping)},
            jobs={k: v for k, v in (jobs or {}).items() if isinstance(v, int)}
            if isinstance(jobs, Mapping)
            else {},
            run=run if isinstance(run, Mapping) else None,
            distributions=distributions,
            objects={
                key: document[key] for key in OBJECTS if isinstance(document.get(key), Mapping)
            },
        )

    def value(self, metric: str, stat: str) -> float | None:
        """The statistic as the run reported it, or from the histogram for a percentile the
        run did not report; None without samples."""
        summary = self.metrics.get(metric, {})
        if not summary.get("count"):
            return 0 if stat == "count" else None
        reported = summary.get(stat)
        if isinstance(reported, (int, float)) and not isinstance(reported, bool):
            return reported
        distribution = self.distributions.get(metric)
        if stat.startswith("p") and distribution is not None:
            return distribution.percentile(float(stat[1:]))
        return None

    def interval(self, metric: str, stat: str) -> tuple[float, float] | None:
        distribution = self.distributions.get(metric)
        if distribution is None or stat in (*_UNJUDGED, "count"):
            return None
        if stat == "mean":
            mean = self.value(metric, "mean")
            return None if mean is None else distribution.mean_interval(mean)
        return distribution.interval(float(stat[1:]))

    def figure(self, figure: Figure) -> float | None:
        return figure_value(self.objects, figure)

    def figure_interval(self, figure: Figure) -> tuple[float, float] | None:
        return figure_interval(self.objects, figure)

    @property
    def duration_s(self) -> float | None:
        if self.run is None:
            return None
        started, ended = self.run.get("startedAt"), self.run.get("endedAt")
        if isinstance(started, (int, float)) and isinstance(ended, (int, float)):
            return max(0.0, float(ended) - float(started))
        return None


def load_run(path: str | Path) -> RunDocument:
    """Read a --job-stats-json file; CompareError names what is wrong with it."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompareError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareError(f"{name}: cannot read it ({exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CompareError(f"{name}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return RunDocument.from_json(document, name)


# --------------------------------------------------------------------------- rules

_RULE_RE = re.compile(r"\+\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|ms|s)?")
_PERCENTILE_RE = re.compile(r"p(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class CompareRule:
    """ "METRIC:STAT:+ALLOWANCE": the statistic may grow by ALLOWANCE (N%, N ms or N s)."""

    rule: str
    metric: str
    stat: str
    amount: float
    relative: bool
    """True: `amount` is a percentage of the baseline; False: milliseconds."""

    @classmethod
    def parse(cls, text: str) -> CompareRule:
        rule = text.strip()
        parts = [part.strip() for part in rule.split(":")]
        if len(parts) != 3:
            raise CompareError(_rule_problem(text, "expected METRIC:STAT:+ALLOWANCE"))
        metric_text, stat_text, allowance = parts
        metric = next((m for m in METRICS if m.lower() == metric_text.lower()), None)
        if metric is None:
            raise CompareError(_rule_problem(text, f"unknown metric {metric_text!r}"))
        stat = stat_text.lower()
        if stat not in ("mean", *_UNJUDGED):
            match = _PERCENTILE_RE.fullmatch(stat)
            if match is None or not 0 < float(match.group(1)) < 100:
                raise CompareError(_rule_problem(text, f"unknown statistic {stat_text!r}"))
            stat = f"p{float(match.group(1)):g}"
        match = _RULE_RE.fullmatch(allowance)
        if match is None:
            raise CompareError(
                _rule_problem(text, f"{allowance!r} is not an allowed increase like +10%")
            )
        amount, unit = float(match.group(1)), match.group(2)
        if unit == "s":
            amount *= 1000
        return cls(rule=rule, metric=metric, stat=stat, amount=amount, relative=unit == "%")

    def allowance(self, base: float) -> float:
        return abs(base) * self.amount / 100 if self.relative else self.amount


def _rule_problem(text: str, problem: str) -> str:
    return (
        f"invalid regression rule {text!r}: {problem}; form METRIC:STAT:+N% (or +N ms, +N s), "
        f"METRIC one of {', '.join(METRICS)}, STAT mean, min, max or pNN; or FIGURE:+N% for "
        "the run's cost, SLO and cold starts (e.g. cost.dollarsPerJob:+10%, "
        "slo.attainment:-1pp)"
    )


Rule = CompareRule | FigureRule


def parse_rule(text: str) -> Rule:
    """A latency rule (METRIC:STAT:+N%) or a figure rule (FIGURE:+N%); CompareError names
    what is wrong."""
    if is_figure_rule(text):
        try:
            return FigureRule.parse(text)
        except FigureError as exc:
            raise CompareError(str(exc)) from None
    return CompareRule.parse(text)


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class _Change:
    """A value in the baseline and in the run, their intervals, the verdict on the change."""

    base: float | None
    run: float | None
    base_interval: tuple[float, float] | None
    run_interval: tuple[float, float] | None
    verdict: Verdict

    @property
    def change(self) -> float | None:
        if self.base is None or self.run is None:
            return None
        return self.run - self.base

    @property
    def relative_change(self) -> float | None:
        """The change as a fraction of the baseline (None when the baseline is 0)."""
        change = self.change
        if change is None or not self.base:
            return None
        return change / self.base


@dataclass(frozen=True)
class Row(_Change):
    metric: str
    stat: str


@dataclass(frozen=True)
class FigureRow(_Change):
    """One of the run's cost, SLO or cold-start figures, in both runs."""

    figure: Figure


@dataclass(frozen=True)
class RuleResult:
    rule: str
    base: float | None
    run: float | None
    allowed: float | None
    """The largest move the worse way the rule allows (ms, or the figure's unit)."""
    verdict: Verdict
    regression: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "baseline": self.base,
            "value": self.run,
            "regression": self.regression,
        }


@dataclass(frozen=True)
class Comparison:
    base: RunDocument
    run: RunDocument
    rows: list[Row]
    rules: list[RuleResult]
    not_comparable: list[str]
    """Workload settings that differ: the runs did not measure the same thing."""
    differences: list[str]
    """Other settings that differ (the emulator's, versions): what the comparison is about."""
    notes: list[str] = field(default_factory=list)
    min_change_pct: float = DEFAULT_MIN_CHANGE_PCT
    min_change_ms: float = DEFAULT_MIN_CHANGE_MS
    figures: list[FigureRow] = field(default_factory=list)
    """The run's cost, SLO and cold-start figures that either run has."""

    @property
    def regressions(self) -> list[RuleResult]:
        return [result for result in self.rules if result.regression]

    def exit_status(self, *, ignore_settings: bool = False) -> int:
        """0, EXIT_NOT_COMPARABLE (2) or EXIT_REGRESSION (4)."""
        if self.not_comparable and not ignore_settings:
            return EXIT_NOT_COMPARABLE
        return EXIT_REGRESSION if self.regressions else 0

    def flagged(self) -> list[Row]:
        """Latency rows found worse or better (figures: `flagged_figures`)."""
        return [row for row in self.rows if row.verdict in ("worse", "better")]

    def flagged_figures(self) -> list[FigureRow]:
        return [row for row in self.figures if row.verdict in ("worse", "better")]

    # ---- rendering

    def _header_lines(self) -> list[str]:
        lines = [f"baseline {self.base.name}", f"run      {self.run.name}"]
        if self.not_comparable:
            lines.append("not comparable: " + "; ".join(self.not_comparable))
        if self.differences:
            lines.append("settings that differ: " + "; ".join(self.differences))
        lines += self.notes
        lines.append(_jobs_line(self.base, self.run))
        lines.append(
            f"noise: 99% intervals apart and a change above {self.min_change_pct:g}% "
            f"and {self.min_change_ms:g} ms"
        )
        return lines

    def _table(self) -> list[list[str]]:
        header = ["metric", "stat", "baseline", "run", "change", "change %", "verdict"]
        body = [
            [
                row.metric,
                row.stat,
                _cell(row.base, row.base_interval),
                _cell(row.run, row.run_interval),
                _signed(row.change),
                _percent(row.relative_change),
                row.verdict,
            ]
            for row in self.rows
        ]
        return [header, *body]

    def _figure_table(self) -> list[list[str]]:
        """The cost, SLO and cold-start table (the header only when no run has them)."""
        header = ["figure", "baseline", "run", "change", "change %", "verdict"]
        body = [
            [
                row.figure.name,
                _figure_cell(row.base, row.base_interval, row.figure),
                _figure_cell(row.run, row.run_interval, row.figure),
                "-" if row.change is None else format_change(row.change, row.figure.unit),
                _percent(row.relative_change),
                row.verdict,
            ]
            for row in self.figures
        ]
        return [header, *body]

    def _rule_lines(self) -> list[str]:
        return [
            f"{'REGRESSION' if r.regression else 'ok'}  {r.rule}  ({r.message})" for r in self.rules
        ]

    def format_text(self) -> str:
        lines = [*self._header_lines(), "", *_aligned(self._table(), left=(0, 1, 6))]
        lines.append("values in ms; [low-high]: the 99% interval; '>=' or '<=': one side open")
        if self.figures:
            lines += ["", _FIGURES_TITLE]
            lines += _aligned(self._figure_table(), left=(0, 5))
            lines.append(_FIGURES_LEGEND)
        if self.rules:
            lines += ["", "regression rules", *self._rule_lines()]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        table = self._table()
        lines = ["## Compared with the baseline", ""]
        lines += [f"- {_md(line)}" for line in self._header_lines()]
        lines += ["", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table[1:]]
        if self.figures:
            figures = self._figure_table()
            lines += ["", f"### {_FIGURES_TITLE[0].upper()}{_FIGURES_TITLE[1:]}", ""]
            lines += ["| " + " | ".join(figures[0]) + " |", "|" + "---|" * len(figures[0])]
            lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in figures[1:]]
            lines += ["", _md(_FIGURES_LEGEND)]
        if self.rules:
            lines += ["", "### Regression rules", ""]
            lines += [f"- {_md(line)}" for line in self._rule_lines()]
        return "\n".join(lines) + "\n"

    def _html_parts(self) -> dict[str, Any]:
        return {
            "header": self._header_lines(),
            "table": self._table(),
            "figures": self._figure_table(),
            "figures_title": _FIGURES_TITLE[0].upper() + _FIGURES_TITLE[1:],
            "figures_legend": _FIGURES_LEGEND,
            "rules": [
                (result.regression, line)
                for result, line in zip(self.rules, self._rule_lines(), strict=True)
            ],
        }

    def html_section(self) -> str:
        """The comparison as a `<section>` (the load run's HTML report embeds it), from the
        autoescaping `_sections.html.j2`."""
        from runpod_testkit.templating import macro  # Jinja2 only when HTML is asked for

        return str(macro("_sections.html.j2", "compare_section")(self._html_parts()))

    def to_html(self) -> str:
        """A page of its own (compare --html)."""
        from runpod_testkit.templating import templates

        return templates().get_template("compare.html.j2").render(c=self._html_parts())


_FIGURES_TITLE = "cost, SLO and cold starts"
_FIGURES_LEGEND = (
    "judged: slo.attainment (Wilson interval) and slo.goodputPerS (Poisson); cost and cold "
    "starts are one tally each, not judged"
)


def _aligned(table: list[list[str]], *, left: tuple[int, ...]) -> list[str]:
    """Rows of a plain-text table: the `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in table
    ]


def _figure_cell(value: float | None, interval: tuple[float, float] | None, figure: Figure) -> str:
    if value is None:
        return "-"
    shown = format_figure(value, figure.unit)
    if interval is None:
        return shown
    low, high = (format_figure(bound, figure.unit) for bound in interval)
    return f"{shown} [{low}-{high}]"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.1f}".removesuffix(".0")


def _cell(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    shown = _number(value)
    if interval is None:
        return shown
    low, high = interval
    if math.isinf(low) and math.isinf(high):
        return f"{shown} [open]"
    if math.isinf(high):
        return f"{shown} [>={_number(low)}]"
    if math.isinf(low):
        return f"{shown} [<={_number(high)}]"
    return f"{shown} [{_number(low)}-{_number(high)}]"


def _signed(value: float | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + _number(value)


def _percent(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f}%"


def _jobs_line(base: RunDocument, run: RunDocument) -> str:
    def part(document: RunDocument) -> str:
        submitted = document.jobs.get(SUBMITTED, 0)
        completed = document.jobs.get(JobStatus.COMPLETED, 0)
        text = f"{submitted} submitted, {completed} completed"
        duration = document.duration_s
        if duration:
            text += f" in {duration:.1f} s ({completed / duration:.2f}/s)"
        return text

    return f"jobs: {part(base)} -> {part(run)}"


def _verdict(
    base: float | None,
    run: float | None,
    base_interval: tuple[float, float] | None,
    run_interval: tuple[float, float] | None,
    *,
    min_change_pct: float,
    min_change_ms: float,
) -> Verdict:
    if base is None or run is None:
        return "no samples"
    if base_interval is None or run_interval is None:
        return "not judged"
    change = run - base
    floor = max(min_change_ms, abs(base) * min_change_pct / 100)
    apart = base_interval[1] < run_interval[0] or run_interval[1] < base_interval[0]
    if not apart or abs(change) <= floor:
        return "within noise"
    return "worse" if change > 0 else "better"


def _figure_settings(base: RunDocument, run: RunDocument) -> tuple[list[str], list[str]]:
    """SLO rules that differ make attainment and goodput measure different things (not
    comparable); a different price or cost source is what the comparison is about."""
    workload: list[str] = []
    other: list[str] = []
    for name, key, into in (
        ("slo", "rules", workload),
        ("cost", "pricePerS", other),
        ("cost", "source", other),
    ):
        before, after = base.objects.get(name), run.objects.get(name)
        if not isinstance(before, Mapping) or not isinstance(after, Mapping):
            continue
        if before.get(key) != after.get(key):
            into.append(f"{name}.{key} {_show(before.get(key))} vs {_show(after.get(key))}")
    return workload, other


def _settings_differences(base: RunDocument, run: RunDocument) -> tuple[list[str], list[str]]:
    figure_workload, figure_other = _figure_settings(base, run)
    if base.run is None or run.run is None:
        return figure_workload, figure_other
    workload = [
        f"{key} {_show(base.run.get(key))} vs {_show(run.run.get(key))}"
        for key in WORKLOAD_KEYS
        if base.run.get(key) != run.run.get(key)
    ]
    other: list[str] = []
    for key in ("emulator", "versions"):
        before, after = base.run.get(key), run.run.get(key)
        before = before if isinstance(before, Mapping) else {}
        after = after if isinstance(after, Mapping) else {}
        other += [
            f"{key}.{name} {_show(before.get(name))} vs {_show(after.get(name))}"
            for name in sorted({*before, *after})
            if before.get(name) != after.get(name)
        ]
    return workload + figure_workload, other + figure_other


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "none"
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[:15]
    return str(value)


def compare(
    base: RunDocument,
    run: RunDocument,
    rules: Iterable[Rule | str] = (),
    *,
    min_change_pct: float = DEFAULT_MIN_CHANGE_PCT,
    min_change_ms: float = DEFAULT_MIN_CHANGE_MS,
) -> Comparison:
    """Compare `run` with `base`; CompareError for a rule that does not parse."""
    parsed = [parse_rule(r) if isinstance(r, str) else r for r in rules]

    def row(metric: str, stat: str) -> Row:
        before, after = base.value(metric, stat), run.value(metric, stat)
        base_interval, run_interval = base.interval(metric, stat), run.interval(metric, stat)
        verdict = (
            "not judged"
            if stat == "count" and before is not None and after is not None
            else _verdict(
                before,
                after,
                base_interval,
                run_interval,
                min_change_pct=min_change_pct,
                min_change_ms=min_change_ms,
            )
        )
        return Row(
            base=before,
            run=after,
            base_interval=base_interval,
            run_interval=run_interval,
            verdict=verdict,
            metric=metric,
            stat=stat,
        )

    rows = [
        row(metric, stat)
        for metric in METRICS
        if base.metrics.get(metric, {}).get("count") or run.metrics.get(metric, {}).get("count")
        for stat in (*_STATS, *_UNJUDGED)
    ]

    def figure_row(figure: Figure) -> FigureRow:
        before, after = base.figure(figure), run.figure(figure)
        base_interval, run_interval = base.figure_interval(figure), run.figure_interval(figure)
        verdict = _verdict(
            before,
            after,
            base_interval,
            run_interval,
            min_change_pct=min_change_pct,
            min_change_ms=0.0,
        )
        if figure.higher_is_better and verdict in ("worse", "better"):
            verdict = "better" if verdict == "worse" else "worse"
        elif verdict == "no samples":  # a figure is not sampled: one run does not have it
            verdict = "one run only"
        return FigureRow(
            base=before,
            run=after,
            base_interval=base_interval,
            run_interval=run_interval,
            verdict=verdict,
            figure=figure,
        )

    figures = [
        figure_row(figure)
        for figure in FIGURES
        if base.figure(figure) is not None or run.figure(figure) is not None
    ]
    results = [
        _apply_rule(rule, row(rule.metric, rule.stat))
        if isinstance(rule, CompareRule)
        else _apply_figure_rule(rule, figure_row(rule.figure))
        for rule in parsed
    ]
    not_comparable, differences = _settings_differences(base, run)
    notes = [
        f"settings unknown: {document.name} has no 'run' object (written by an older version)"
        for document in (base, run)
        if document.run is None
    ]
    notes += [
        f"noise not judged: {document.name} has no 'histograms' object"
        for document in (base, run)
        if not document.distributions and any(m.get("count") for m in document.metrics.values())
    ]
    return Comparison(
        base,
        run,
        rows,
        results,
        not_comparable,
        differences,
        notes,
        min_change_pct,
        min_change_ms,
        figures,
    )


def _apply_rule(rule: CompareRule, row: Row) -> RuleResult:
    if row.base is None or row.run is None:
        return RuleResult(
            rule.rule, row.base, row.run, None, row.verdict, False,
            f"no samples of {rule.metric} in {'the baseline' if row.base is None else 'the run'}",
        )  # fmt: skip
    allowed = rule.allowance(row.base)
    change = row.run - row.base
    over = change > allowed
    judged = row.verdict != "not judged"
    regression = over and (row.verdict == "worse" or not judged)
    relative = row.relative_change
    shown = f"{_signed(change)} ms" + ("" if relative is None else f" ({_percent(relative)})")
    message = (
        f"{_number(row.base)} -> {_number(row.run)} ms, {shown}, allowed +{_number(allowed)} ms"
    )
    if over and judged and not regression:
        message += ", but within noise"
    elif not judged:
        message += ", noise not judged"
    return RuleResult(rule.rule, row.base, row.run, allowed, row.verdict, regression, message)


def _apply_figure_rule(rule: FigureRule, row: FigureRow) -> RuleResult:
    figure = rule.figure
    if row.base is None or row.run is None:
        where = "the baseline" if row.base is None else "the run"
        return RuleResult(
            rule.rule, row.base, row.run, None, row.verdict, False, f"no {figure.name} in {where}"
        )
    allowed = rule.allowance(row.base)
    change = row.run - row.base
    over = (-change if figure.higher_is_better else change) > allowed
    judged = row.verdict != "not judged"
    regression = over and (row.verdict == "worse" or not judged)
    relative = row.relative_change
    shown = format_change(change, figure.unit) + (
        "" if relative is None else f" ({_percent(relative)})"
    )
    message = (
        f"{format_figure(row.base, figure.unit)} -> {format_figure(row.run, figure.unit)}, "
        f"{shown}, allowed {rule.describe_allowance(row.base)}"
    )
    if over and judged and not regression:
        message += ", but within noise"
    elif not judged:
        message += ", noise not judged"
    return RuleResult(rule.rule, row.base, row.run, allowed, row.verdict, regression, message)
