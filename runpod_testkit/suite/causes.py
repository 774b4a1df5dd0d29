"""Failures grouped by cause: one endpoint defect usually breaks many checks, and a report that
repeats the same reason under each of them hides how many distinct defects there are.

A failure's reason is reduced to its cause: what the endpoint did, without the check's name, job
ids, URLs, body excerpts or measured numbers. A reason naming an HTTP answer becomes
`GET .../status/<id> answered 405 Method Not Allowed`; any other reason is kept with ids and
numbers replaced and without the operation it was seen on, so `/delayTime: 1.5 is not an
integer` on two jobs, or a `text/plain` content type on every operation, is one cause.

Both the pytest plugin's summary and `runpod-testkit check` print these groups first, then
the per-check detail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from runpod_testkit.operations import OPERATIONS

__all__ = [
    "Cause",
    "cause_lines",
    "cause_of",
    "checks_from_tests",
    "group_causes",
    "one_line",
    "reason_of",
]

REASON_CHARS = 240
_NOISE_PREFIXES = ("Skipped: ", "Failed: ", "AssertionError: ")
_MODULE_PATH = re.compile(r"^(?:[a-z_]\w*\.)+(?=[A-Z]\w*(?:Error|Exception)\b)")

_ANSWER = re.compile(
    r"\b(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?P<url>\S+) answered "
    r"(?P<code>\d{3})(?P<phrase>(?: [A-Za-z][\w'-]*)*)"
)
"""How the client describes an HTTP answer (ApiResponse.describe)."""
_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}(?:-[\w]+)?\b", re.I)
_URL = re.compile(r"\bhttps?://\S+")
_QUOTED_ID = re.compile(r"'[^'\s]*\d[^'\s]*'|\"[^\"\s]*\d[^\"\s]*\"")
"""A quoted word with a digit in it: a job id or a value, not a type name or a field."""
_HTTP_CODE = re.compile(r"\b(?:HTTP|answered|status) [1-5]\d\d\b")
_NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")
_BODY = re.compile(r"; (?:body: .*|empty body)$")
_WHERE = re.compile(r"^[a-z-]+ -> (?=HTTP \d{3}\b)")
"""`status -> HTTP 200: ...`: the same defect on several operations is one cause (the checks
it broke name the operations)."""


def one_line(text: str, limit: int | None = REASON_CHARS) -> str:
    """The first non-empty line of a failure, without pytest's prefixes, capped in length
    (`limit` None: whole, for grouping by cause before a cut makes equal causes differ)."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    for prefix in _NOISE_PREFIXES:
        line = line.removeprefix(prefix)
    line = _MODULE_PATH.sub("", line)  # runpod_testkit.client.TransportError -> TransportError
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."


def reason_of(report: Any, limit: int | None = REASON_CHARS) -> str:
    """The one-line reason of a pytest TestReport or CollectReport (failed or skipped)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return one_line(str(longrepr[2]), limit)
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return one_line(str(crash.message), limit)
    return one_line(str(longrepr), limit)


def _path_shape(url: str) -> str:
    """`http://h/v2/ep/status/abc?x=1` -> `.../status/<id>`: the operation and what follows."""
    segments = [part for part in urlsplit(url).path.split("/") if part]
    for index, segment in enumerate(segments):
        if segment in OPERATIONS:
            rest = ["<id>" for _ in segments[index + 1 :]]
            return "/".join(["...", segment, *rest])
    return ".../" + "/".join(segments[-1:]) if segments else url


def _without_rule(reason: str, operation: str, check: str) -> str:
    """Drop the `operation: check (...)` prefix a check puts before what it found."""
    rule = f"{operation}: {check}"
    if check and reason.startswith(rule):
        rest = reason[len(rule) :]
        if not rest.startswith(":") and ": " in rest:  # " (read 1 of 'id'): ..."
            rest = rest.split(": ", 1)[1]
        return rest.removeprefix(":").strip()
    if operation and reason.startswith(f"{operation}: "):
        return reason[len(operation) + 2 :]
    return reason


def cause_of(reason: str, operation: str = "", check: str = "") -> str:
    """The cause behind one failure's reason (see the module docstring)."""
    answer = _ANSWER.search(reason)
    if answer is not None:
        phrase = re.sub(r" after$", "", answer["phrase"])
        return f"{answer['method']} {_path_shape(answer['url'])} answered {answer['code']}{phrase}"
    text = _WHERE.sub("", _BODY.sub("", _without_rule(reason, operation, check)))
    text = _URL.sub(lambda match: _path_shape(match.group(0)), text)
    text = _QUOTED_ID.sub("<id>", text)  # first: 'sync-<uuid>' is one id, not 'sync-' + one
    text = _UUID.sub("<id>", text)
    kept = {match.start(): match.group(0) for match in _HTTP_CODE.finditer(text)}
    pieces, last = [], 0
    for match in _NUMBER.finditer(text):
        if any(start <= match.start() < start + len(code) for start, code in kept.items()):
            continue
        pieces += [text[last : match.start()], "N"]
        last = match.end()
    return ("".join(pieces) + text[last:]).strip() or reason


@dataclass
class Cause:
    """One distinct cause and the checks (operation/check) it broke, in the order seen."""

    text: str
    checks: list[str] = field(default_factory=list)


def group_causes(failures: Iterable[tuple[str, str, str]]) -> list[Cause]:
    """(operation, check, reason) of each failure -> causes, most checks broken first."""
    causes: dict[str, Cause] = {}
    for operation, check, reason in failures:
        text = cause_of(reason, operation, check)
        cause = causes.setdefault(text, Cause(text))
        name = f"{operation}/{check}"
        if name not in cause.checks:
            cause.checks.append(name)
    return sorted(causes.values(), key=lambda cause: -len(cause.checks))


def cause_lines(failures: Iterable[tuple[str, str, str]]) -> list[str]:
    """The causes section of a report: a heading, then per cause its count, text and checks."""
    causes = group_causes(failures)
    if not causes:
        return []
    broken = len({name for cause in causes for name in cause.checks})
    lines = [
        f"failures by cause: {_count(len(causes), 'distinct cause')} of "
        f"{_count(broken, 'failing check')}, most first"
    ]
    for cause in causes:
        lines.append(f"  {_count(len(cause.checks), 'check')}: {one_line(cause.text)}")
        lines.append(f"      {', '.join(cause.checks)}")
    return lines


def checks_from_tests(checks: int, tests: int) -> str:
    """How the checks of the verdict relate to pytest's (and the JUnit file's) tests."""
    return (
        f"{_count(checks, 'check')} from {_count(tests, 'test')} (a check is one operation x "
        "rule; its cases are tests of their own, and it shows the worst of them)"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
