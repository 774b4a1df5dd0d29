"""The contract's results, collected once: one row per operation x check, from its tests.

The suite's plugin records every marked test's outcome here (`ContractResults.record`); both
`pytest contract`'s summary and `runpod-testkit check` render the same rows. (The schema
validator's answer for one body is `runpod_testkit.schemas.CheckResult`, not a row.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runpod_testkit.suite.causes import checks_from_tests, one_line, reason_of

if TYPE_CHECKING:
    import pytest

__all__ = ["OUTCOMES", "CheckRow", "ContractResults"]

OUTCOMES = ("FAIL", "DRIFT", "PASS", "SKIP")
"""Worst first: a row shows the worst outcome of its tests (SKIP when none ran)."""


@dataclass
class CheckRow:
    """One operation x check: the worst outcome of its tests, with their reasons."""

    operation: str
    check: str
    outcome: str = "SKIP"
    ref: str = ""
    reasons: list[str] = field(default_factory=list)
    """Whole first lines: a report shows them cut (`shown_reasons`)."""
    outcomes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """The reasons of its failing tests only, whole (what the causes are read from: cut
    first, one defect seen from two checks would read as two causes)."""

    def add(self, outcome: str, reasons: list[str]) -> None:
        self.outcomes.append(outcome)
        self.outcome = next(name for name in OUTCOMES if name in self.outcomes)
        if outcome == "FAIL":
            self.failures.extend(reason for reason in reasons if reason not in self.failures)
        for reason in reasons:
            if reason not in self.reasons:
                self.reasons.append(reason)

    @property
    def failed(self) -> bool:
        return self.outcome == "FAIL"

    @property
    def shown_reasons(self) -> list[str]:
        """The reasons behind the row's outcome, one capped line each (a passing row needs
        none)."""
        if self.outcome == "PASS":
            return []
        shown: list[str] = []
        for reason in self.reasons:
            line = one_line(reason)
            if line not in shown:
                shown.append(line)
        return shown


@dataclass
class ContractResults:
    """Every contract test's outcome, by operation x check, and what failed outside the checks."""

    rows: dict[tuple[str, str], CheckRow] = field(default_factory=dict)
    tests: set[str] = field(default_factory=set)
    """Node ids of the tests behind the rows (a check with several cases runs several tests)."""
    problems: list[str] = field(default_factory=list)
    """Failures outside any check: collection errors, an internal error."""
    unmarked_too: bool = False
    """Also record tests without a contract marker, as `(unmarked)` rows named by node id
    (`check` does: every test of the folder it runs is a check; `pytest` on the repository
    runs other tests beside the contract)."""

    def add(
        self, operation: str, check: str, outcome: str, reasons: list[str], *, ref: str = ""
    ) -> CheckRow:
        row = self.rows.setdefault((operation, check), CheckRow(operation, check))
        row.ref = row.ref or ref
        row.add(outcome, reasons)
        return row

    def record(self, report: pytest.TestReport) -> None:
        """One test phase: its call, or a setup or teardown that failed or skipped."""
        props = dict(report.user_properties)
        if "contract.operation" not in props and not self.unmarked_too:
            return  # not a contract check
        if report.when != "call" and not (report.failed or report.skipped):
            return
        drift = [str(value) for name, value in report.user_properties if name == "drift"]
        if report.failed:
            outcome, reasons = "FAIL", [reason_of(report, None)]
        elif report.skipped:
            outcome, reasons = "SKIP", [reason_of(report, None)]
        elif drift:
            outcome, reasons = "DRIFT", drift
        else:
            outcome, reasons = "PASS", []
        self.tests.add(report.nodeid)
        operation = str(props.get("contract.operation", "(unmarked)"))
        check = str(props.get("contract.check", report.nodeid))
        self.add(operation, check, outcome, reasons, ref=str(props.get("contract.ref", "")))

    def record_problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {one_line(text)}")

    def sorted_rows(self) -> list[CheckRow]:
        return [self.rows[key] for key in sorted(self.rows)]

    def failures(self) -> list[tuple[str, str, str]]:
        """(operation, check, reason) of every failure, in row order: what the causes group."""
        return [
            (row.operation, row.check, reason)
            for row in self.sorted_rows()
            for reason in row.failures
        ]

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows.values() if row.outcome == outcome)

    def tally(self) -> str:
        """`1 fail, 0 drift, 52 pass, 3 skip`."""
        return ", ".join(f"{self.count(name)} {name.lower()}" for name in OUTCOMES)

    def checks_from_tests(self) -> str:
        return checks_from_tests(len(self.rows), len(self.tests))
