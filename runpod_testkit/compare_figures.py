"""The run-level figures `compare` sets side by side: cost, SLO and cold starts.

A --job-stats-json document carries them in its "cost", "slo" and "coldStarts" objects (when
the run had /health samples, an --slo, a price). Each figure is named by its JSON key path, as
the CSV names it (`cost.dollarsPerJob`, `slo.attainment`, ...), and is better lower (cost, cold
starts) or higher (attainment, goodput).

Noise: `slo.attainment` is a share of n ended jobs, so its 99% interval is the Wilson score
interval of met / n; `slo.goodputPerS` is a count of jobs over the run's duration, so its
interval is goodput x (1 +- z / sqrt(met)) (a Poisson count's normal approximation). Both treat
jobs as independent, as the latency intervals do. Cost and cold starts are one tally of the run
each: not judged (a rule on them is broken when the change exceeds its allowance).

Regression rules: "FIGURE:+N%" (or "+N", in the figure's unit: seconds, dollars, jobs) for a
figure better lower; "FIGURE:-N%" (or "-N", or "-Npp": percentage points, for attainment) for one
better higher: the figure may move that much the worse way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

__all__ = [
    "FIGURES",
    "Figure",
    "FigureError",
    "FigureRule",
    "figure_interval",
    "figure_value",
    "fixed_point",
    "format_change",
    "format_figure",
    "is_figure_rule",
]

Unit = Literal["s", "$", "jobs", "share", "/s"]
Z_99 = 2.576


class FigureError(ValueError):
    """A figure rule that does not parse; the message says what is wrong and the form."""


@dataclass(frozen=True)
class Figure:
    name: str
    """The JSON key path, dotted: `cost.dollarsPerJob`."""
    label: str
    unit: Unit
    higher_is_better: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


FIGURES: tuple[Figure, ...] = (
    Figure("cost.workerSeconds", "worker-seconds (/health estimate)", "s"),
    Figure("cost.emulator.billedSeconds", "billed seconds (the emulator's accounting)", "s"),
    Figure("cost.workerSecondsPerJob", "worker-seconds per completed job", "s"),
    Figure("cost.dollars", "dollars", "$"),
    Figure("cost.dollarsPerJob", "dollars per completed job", "$"),
    Figure("cost.dollarsPer1000Jobs", "dollars per 1,000 jobs", "$"),
    Figure("cost.dollarsPerDayAtThisRate", "dollars per day at the run's rate", "$"),
    Figure("coldStarts.exact", "cold-start jobs (the emulator's accounting)", "jobs"),
    Figure("coldStarts.estimate", "cold starts (estimate from /health)", "jobs"),
    Figure("slo.attainment", "SLO attainment", "share", higher_is_better=True),
    Figure("slo.goodputPerS", "goodput (jobs/s meeting the SLO)", "/s", higher_is_better=True),
)
_BY_NAME = {figure.name.lower(): figure for figure in FIGURES}
OBJECTS = ("cost", "slo", "coldStarts")
"""The document's objects the figures come from."""


def is_figure_rule(text: str) -> bool:
    """Whether a regression rule names a figure (its first part starts with an object name)."""
    head = text.strip().split(":", 1)[0].strip().lower()
    return any(head == name.lower() or head.startswith(f"{name.lower()}.") for name in OBJECTS)


def figure_value(objects: Mapping[str, Any], figure: Figure) -> float | None:
    """The figure from the document's objects; None where the run has no such value."""
    value: Any = objects
    for key in figure.path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def figure_interval(
    objects: Mapping[str, Any], figure: Figure, z: float = Z_99
) -> tuple[float, float] | None:
    """The 99% interval of a judged figure (see the module docstring), None for the others."""
    slo = objects.get("slo")
    if not isinstance(slo, Mapping) or figure.name not in ("slo.attainment", "slo.goodputPerS"):
        return None
    met, jobs = slo.get("met"), slo.get("jobs")
    if not isinstance(met, int) or not isinstance(jobs, int) or not 0 <= met <= jobs:
        return None
    if figure.name == "slo.attainment":
        if jobs == 0:
            return None
        p, z2 = met / jobs, z * z
        centre = (p + z2 / (2 * jobs)) / (1 + z2 / jobs)
        half = z / (1 + z2 / jobs) * math.sqrt(p * (1 - p) / jobs + z2 / (4 * jobs * jobs))
        return max(0.0, centre - half), min(1.0, centre + half)
    goodput = figure_value(objects, figure)
    if goodput is None or met == 0:
        return (0.0, math.inf) if goodput is not None else None
    spread = z / math.sqrt(met)
    return max(0.0, goodput * (1 - spread)), goodput * (1 + spread)


_ALLOWANCE_RE = re.compile(r"([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|pp)?")


@dataclass(frozen=True)
class FigureRule:
    """ "FIGURE:+N%" / "FIGURE:-N%": the figure may move N the worse way (see the module)."""

    rule: str
    figure: Figure
    amount: float
    unit: Literal["%", "pp", ""]

    @classmethod
    def parse(cls, text: str) -> FigureRule:
        rule = text.strip()
        parts = [part.strip() for part in rule.split(":")]
        if len(parts) != 2:
            raise FigureError(_problem(text, "expected FIGURE:+ALLOWANCE"))
        name, allowance = parts
        figure = _BY_NAME.get(name.lower())
        if figure is None:
            raise FigureError(_problem(text, f"unknown figure {name!r}"))
        match = _ALLOWANCE_RE.fullmatch(allowance)
        if match is None:
            raise FigureError(_problem(text, f"{allowance!r} is not an allowance like +10%"))
        sign, number, unit = match.group(1), float(match.group(2)), match.group(3) or ""
        worse = "-" if figure.higher_is_better else "+"
        if sign != worse:
            direction = "falls" if figure.higher_is_better else "grows"
            raise FigureError(
                _problem(text, f"{figure.name} is worse when it {direction}: write {worse}N")
            )
        if unit == "pp" and figure.unit != "share":
            raise FigureError(_problem(text, "pp (percentage points) is for shares only"))
        return cls(rule, figure, number, cast(Literal["%", "pp", ""], unit))

    def allowance(self, base: float) -> float:
        """The largest move the worse way, in the figure's own unit."""
        if self.unit == "%":
            return abs(base) * self.amount / 100
        if self.unit == "pp":
            return self.amount / 100
        return self.amount

    def describe_allowance(self, base: float) -> str:
        """The allowance as a move the worse way: "+$0.0006", "-1.00 pp"."""
        allowed = self.allowance(base)
        return format_change(
            -allowed if self.figure.higher_is_better else allowed, self.figure.unit
        )


def _problem(text: str, problem: str) -> str:
    return (
        f"invalid regression rule {text!r}: {problem}; form FIGURE:+N% (or +N in its unit) for "
        f"a figure better lower, FIGURE:-N% (or -N, -Npp) for one better higher; FIGURE one of "
        f"{', '.join(figure.name for figure in FIGURES)}"
    )


def format_figure(value: float, unit: Unit) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if unit == "share":
        return f"{value * 100:.2f}%"
    if unit == "jobs" and value == int(value):
        return str(int(value))
    shown = f"{value:,.0f}" if abs(value) >= 10_000 else fixed_point(value)
    return f"${shown}" if unit == "$" else shown


def fixed_point(value: float, digits: int = 4) -> str:
    """`digits` significant digits in fixed point (no exponent: $0.00007692, not 7.692e-05),
    trailing zeros dropped."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    shown = f"{value:.{decimals}f}"
    return shown.rstrip("0").rstrip(".") if "." in shown else shown


def format_change(change: float, unit: Unit) -> str:
    """A signed change: percentage points for a share, else the figure's unit."""
    sign = "+" if change > 0 else "-" if change < 0 else ""
    if unit == "share":
        return f"{sign}{abs(change) * 100:.2f} pp"
    return sign + format_figure(abs(change), unit)
