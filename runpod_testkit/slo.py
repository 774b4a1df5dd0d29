"""Service-level objectives per job (--slo "e2e<5s" --slo "ttfc<800ms"): attainment and goodput.

A rule is METRIC OP LIMIT: METRIC one of delayTime, executionTime, e2e, ttfc; OP < or <=;
LIMIT in ms, or with an "ms" or "s" suffix. A job meets the SLO when it COMPLETED and meets
every rule that applies to it; a rule about a metric the job has no value for does not apply
(ttfc for a job that was not streamed, e2e for a job found ended only when the run stopped).
Every other ended job misses it: FAILED, CANCELLED, TIMED_OUT, and the client-side "error",
"timeout" and "unknown" outcomes. Jobs the run itself interrupted at its stop are not counted.

  attainment = jobs that met the SLO / ended jobs
  goodput    = jobs that met the SLO / the run's duration (jobs per second)

The count of jobs that met it is kept by JobStats (`record_terminal` asks `Slo.met`), so it
travels from Locust workers to the master with the other statistics; so is the count per window
of the outcome series (SLO_MET), from which `slo_series` gives attainment and goodput over time
in the same windows as the other series: a window's attainment is its jobs that met the SLO /
its ended jobs (by the moment each job was seen to end), its goodput those jobs / its width.
"""

from __future__ import annotations

import argparse
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runpod_testkit.stats.names import NON_TERMINAL_OUTCOMES, SLO_MET, UNJUDGED_OUTCOMES

if TYPE_CHECKING:
    from runpod_testkit.stats.accumulator import Accumulator

__all__ = ["SLO_METRICS", "Slo", "SloError", "SloRule", "slo_html", "slo_line", "slo_series"]

SLO_METRICS = ("delayTime", "executionTime", "e2e", "ttfc")
_RULE_RE = re.compile(r"\s*(\w+)\s*(<=|<)\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {"<": operator.lt, "<=": operator.le}


class SloError(ValueError, argparse.ArgumentTypeError):
    """An --slo rule that does not parse; the message says what is wrong and the form."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(
            f"invalid SLO {text!r}: {problem}; form METRIC<LIMIT or METRIC<=LIMIT with METRIC "
            f"one of {', '.join(SLO_METRICS)} and LIMIT in ms or with an s suffix, e.g. 'e2e<5s'"
        )


@dataclass(frozen=True)
class SloRule:
    rule: str
    metric: str
    op: str
    limit_ms: float

    @classmethod
    def parse(cls, text: str) -> SloRule:
        match = _RULE_RE.fullmatch(text)
        if match is None:
            raise SloError(text, "not a rule")
        name, op, number, unit = match.groups()
        metric = next((m for m in SLO_METRICS if m.lower() == name.lower()), None)
        if metric is None:
            raise SloError(text, f"unknown metric {name!r}")
        limit = float(number) * (1000 if unit == "s" else 1)
        return cls(rule=text.strip(), metric=metric, op=op, limit_ms=limit)


class Slo:
    """A set of rules, every one of which a job must meet."""

    __slots__ = ("_checks", "rules")

    def __init__(self, rules: Iterable[SloRule | str]) -> None:
        self.rules = tuple(r if isinstance(r, SloRule) else SloRule.parse(r) for r in rules)
        index = {metric: i for i, metric in enumerate(SLO_METRICS)}
        self._checks = tuple(
            (index[rule.metric], _OPERATORS[rule.op], rule.limit_ms) for rule in self.rules
        )

    def __bool__(self) -> bool:
        return bool(self.rules)

    def met(
        self,
        delay_time_ms: float | None,
        execution_time_ms: float | None,
        e2e_ms: float | None,
        ttfc_ms: float | None,
    ) -> bool:
        """Whether a COMPLETED job with these values meets every rule that applies to it."""
        values = (delay_time_ms, execution_time_ms, e2e_ms, ttfc_ms)
        for position, compare, limit in self._checks:
            value = values[position]
            if value is not None and not compare(value, limit):
                return False
        return True

    def describe(self) -> str:
        return ", ".join(rule.rule for rule in self.rules)


def slo_line(summary: dict[str, Any]) -> str:
    """The line under the end-of-run table, from JobStats.slo_summary()."""
    rules = ", ".join(summary["rules"])
    attainment = summary["attainment"]
    share = "no ended jobs" if attainment is None else f"{attainment:.2%}"
    goodput = summary["goodputPerS"]
    per_s = "" if goodput is None else f", goodput {goodput:g} jobs/s"
    return (
        f"SLO {rules}: {summary['met']} of {summary['jobs']} ended jobs met it "
        f"(attainment {share}{per_s})\n"
    )


def slo_html(summary: dict[str, Any]) -> str:
    """The report's SLO section, from JobStats.slo_summary() (the report's own template macro,
    autoescaped)."""
    from runpod_testkit.templating import macro  # Jinja2 only when HTML is asked for

    return str(macro("_tables.html.j2", "slo_summary_section")(summary))


def slo_series(stats: Accumulator, max_points: int | None = None) -> dict[str, Any] | None:
    """The SLO over time (None without --slo), for the "slo" object's "overTime" and for charts:
    {"width": s, "points": [{"t", "jobs", "met", "attainment", "goodputPerS"}]}, one point per
    window of the outcome series (at most `max_points`), windows without ended jobs included
    (their attainment null)."""
    if not stats.slo:
        return None
    skipped = NON_TERMINAL_OUTCOMES | UNJUDGED_OUTCOMES | {SLO_MET}
    width, windows = stats.outcome_windows(max_points)
    points = []
    for start, counts in windows:
        ended = sum(n for name, n in counts.items() if name not in skipped)
        met = counts.get(SLO_MET, 0)
        points.append(
            {
                "t": start,
                "jobs": ended,
                "met": met,
                "attainment": round(met / ended, 6) if ended else None,
                "goodputPerS": round(met / width, 3),
            }
        )
    return {"width": width, "points": points}
