"""k6-style pass/fail rules over job statistics, e.g. "delayTime:p95<2000" (--threshold).

Forms (OP is one of < <= > >= ==):
  METRIC:STAT OP MS      METRIC in delayTime, executionTime, e2e, ttfc, chunkGap, webhookDelay;
                         STAT in count, min, max, mean, pNN (p50, p95, p99.9, ...);
                         the limit is milliseconds, or seconds with an "s" suffix ("2s")
  failures:rate OP R     non-COMPLETED ended jobs / ended jobs, as 0..1 or "1%"
  failures:count OP N    ended jobs that did not complete
  jobs:count OP N        jobs submitted
  jobs:OUTCOME OP N      jobs counted under one outcome (COMPLETED, FAILED, dropped,
                         interrupted, ...)
  slo:attainment OP R    the share of ended jobs that met the --slo, as 0..1 or "99%"

Ended jobs include the client-side outcomes "error" and "timeout" (see runpod_testkit.jobstats);
"interrupted" jobs (in flight at stop, cancelled by the run) are counted but are not failures.
A rule whose value does not exist (a metric without samples, a rate without ended jobs)
fails, with value None.
"""

from __future__ import annotations

import argparse
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runpod_testkit.operations import JobStatus
from runpod_testkit.stats.accumulator import Accumulator
from runpod_testkit.stats.names import (
    CLIENT_ERROR,
    CLIENT_TIMEOUT,
    DROPPED,
    INTERRUPTED,
    LATE,
    METRICS,
    SUBMITTED,
)

__all__ = [
    "VALID_FORMS",
    "Threshold",
    "ThresholdError",
    "ThresholdResult",
    "all_passed",
    "evaluate",
    "parse_thresholds",
]

VALID_FORMS = (
    "valid forms: METRIC:STAT<OP>MS with METRIC one of "
    + ", ".join(METRICS)
    + " and STAT one of count, min, max, mean, pNN (e.g. p95, p99.9), limit in ms or with"
    " an s suffix; failures:rate<OP>RATIO (0..1 or N%); failures:count<OP>N; jobs:count<OP>N;"
    " jobs:OUTCOME<OP>N; slo:attainment<OP>RATIO; OP one of <, <=, >, >=, =="
)

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
# Longest first, and the usual typos, so "=<" or "!=" get a precise message.
_OPERATOR_RE = re.compile(r"<=|>=|==|!=|=<|=>|<|>|=")
_NUMBER_RE = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(ms|s|%)?")
_PERCENTILE_RE = re.compile(r"p(\d+(?:\.\d+)?)")
_METRIC_STATS = ("count", "min", "max", "mean")
_RATIOS = ("rate", "attainment")
_JOB_OUTCOMES = (
    *sorted(JobStatus.TERMINAL),
    CLIENT_ERROR,
    CLIENT_TIMEOUT,
    DROPPED,
    LATE,
    INTERRUPTED,
)


class ThresholdError(ValueError, argparse.ArgumentTypeError):
    """A threshold string that does not parse; the message is one line.

    Also an ArgumentTypeError, so `type=Threshold.parse` in argparse shows the message as is.
    """

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"invalid threshold {text!r}: {problem}; {VALID_FORMS}")


@dataclass(frozen=True)
class ThresholdResult:
    rule: str
    value: int | float | None
    passed: bool
    message: str  # for tables and reports; not part of the JSON

    def to_json(self) -> dict[str, Any]:
        """The entry of the "thresholds" list in --job-stats-json."""
        return {"rule": self.rule, "value": self.value, "passed": self.passed}


@dataclass(frozen=True)
class Threshold:
    """One parsed rule. `subject` is a metric, "failures" or "jobs"; `limit` is in ms/ratio/n."""

    rule: str
    subject: str
    stat: str
    op: str
    limit: float
    limit_text: str = field(default="", compare=False)
    """The limit as the user wrote it ("1%"): a ratio's message shows it so."""

    @classmethod
    def parse(cls, text: str) -> Threshold:
        rule = text.strip()
        subject_text, colon, rest = rule.partition(":")
        if not colon:
            raise ThresholdError(text, "missing ':' between the metric and the statistic")
        subject = _canonical(subject_text.strip(), (*METRICS, "failures", "jobs", "slo"))
        if subject is None:
            raise ThresholdError(text, f"unknown metric {subject_text.strip()!r}")
        match = _OPERATOR_RE.search(rest)
        if match is None:
            raise ThresholdError(text, "missing comparison operator")
        op = match.group()
        if op not in _OPERATORS:
            raise ThresholdError(text, f"unknown operator {op!r}")
        stat_text, limit_text = rest[: match.start()].strip(), rest[match.end() :].strip()
        stat = _parse_stat(text, subject, stat_text)
        limit = _parse_limit(text, subject, stat, limit_text)
        return cls(rule=rule, subject=subject, stat=stat, op=op, limit=limit, limit_text=limit_text)

    def observe(self, stats: Accumulator) -> tuple[int | float | None, str]:
        """The observed value, and what to say when there is none."""
        if self.subject == "failures":
            if self.stat == "count":
                return stats.failure_count, ""
            return stats.failure_rate, "no ended jobs, so no failure rate"
        if self.subject == "jobs":
            if self.stat == "count":
                return stats.submitted, ""
            return stats.outcomes.get(self.stat, 0), ""
        if self.subject == "slo":
            if not stats.slo:
                return None, "no --slo given"
            ended = stats.terminal_count
            return (stats.slo_met / ended if ended else None), "no ended jobs, so no attainment"
        missing = f"no samples of {self.subject}"
        if self.stat == "count":
            return stats.count(self.subject), ""
        summary = stats.summary(self.subject)
        if self.stat == "min":
            return summary.min, missing
        if self.stat == "max":
            return summary.max, missing
        if self.stat == "mean":
            return summary.mean, missing
        return stats.percentile(self.subject, float(self.stat[1:])), missing

    def evaluate(self, stats: Accumulator) -> ThresholdResult:
        value, missing = self.observe(stats)
        limit = _format_number(self.limit)
        if self.stat in _RATIOS and self.limit_text:
            limit = self.limit_text  # "1%" stays "1%", not 0.01
        if value is None:
            return ThresholdResult(self.rule, None, False, f"{missing}: fails")
        passed = _OPERATORS[self.op](value, self.limit)
        unit = " ms" if self.subject in METRICS and self.stat != "count" else ""
        if self.stat in _RATIOS:
            shown = f"{_format_number(value)} ({value:.2%})"
        else:
            shown = f"{_format_number(value)}{unit}"
        return ThresholdResult(
            self.rule, value, passed, f"observed {shown}, limit {self.op} {limit}{unit}"
        )


def parse_thresholds(texts: Iterable[str]) -> list[Threshold]:
    """Parse every rule; ThresholdError on the first bad one."""
    return [Threshold.parse(text) for text in texts]


def evaluate(thresholds: Iterable[Threshold | str], stats: Accumulator) -> list[ThresholdResult]:
    """Evaluate rules (parsed or strings) against `stats`, in order."""
    rules = [t if isinstance(t, Threshold) else Threshold.parse(t) for t in thresholds]
    return [rule.evaluate(stats) for rule in rules]


def all_passed(results: Iterable[ThresholdResult]) -> bool:
    return all(result.passed for result in results)


def _canonical(name: str, choices: Sequence[str]) -> str | None:
    """The choice equal to `name` ignoring case (names are distinct case-insensitively)."""
    for choice in choices:
        if choice.lower() == name.lower():
            return choice
    return None


def _parse_stat(text: str, subject: str, stat_text: str) -> str:
    if not stat_text:
        raise ThresholdError(text, "missing statistic after ':'")
    if subject == "failures":
        stat = _canonical(stat_text, ("rate", "count"))
        if stat is None:
            raise ThresholdError(text, f"unknown failures statistic {stat_text!r}")
        return stat
    if subject == "slo":
        stat = _canonical(stat_text, ("attainment",))
        if stat is None:
            raise ThresholdError(text, f"unknown slo statistic {stat_text!r}")
        return stat
    if subject == "jobs":
        stat = _canonical(stat_text, ("count", SUBMITTED, *_JOB_OUTCOMES))
        if stat is None:
            raise ThresholdError(text, f"unknown job outcome {stat_text!r}")
        return "count" if stat == SUBMITTED else stat
    stat = _canonical(stat_text, _METRIC_STATS)
    if stat is not None:
        return stat
    match = _PERCENTILE_RE.fullmatch(stat_text.lower())
    if match is None:
        raise ThresholdError(text, f"unknown statistic {stat_text!r}")
    percent = float(match.group(1))
    if not 0 < percent <= 100:
        raise ThresholdError(text, f"percentile {stat_text!r} is not in (0, 100]")
    return f"p{_format_number(percent)}"


def _parse_limit(text: str, subject: str, stat: str, limit_text: str) -> float:
    if not limit_text:
        raise ThresholdError(text, "missing number after the operator")
    match = _NUMBER_RE.fullmatch(limit_text)
    if match is None:
        raise ThresholdError(text, f"{limit_text!r} is not a number")
    value, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(value):
        raise ThresholdError(text, f"{limit_text!r} is not a finite number")
    is_time = subject in METRICS and stat != "count"
    if unit in ("ms", "s") and not is_time:
        raise ThresholdError(text, f"unit {unit!r} only applies to time statistics")
    if unit == "%" and stat not in _RATIOS:
        raise ThresholdError(text, "'%' only applies to failures:rate and slo:attainment")
    if unit == "s":
        return value * 1000
    if unit == "%":
        return value / 100
    return value


def _format_number(value: float) -> str:
    """2000.0 -> "2000", 99.9 -> "99.9", 0.01 -> "0.01" (no exponent, no float noise)."""
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")
