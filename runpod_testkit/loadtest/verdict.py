"""What one HTTP exchange under load means: the parsed body, and the Locust failure it is, if any.

A failure's text is Locust's error key, so it names the operation and the rule that broke, never
a job id or an offending value: "status: /delayTime: expected an integer", "run: HTTP 400",
"run: throttled (HTTP 429)", "status: server error (HTTP 503)", "run: connection error
(ConnectionRefusedError)". Throttling, server errors and connection errors are named apart
from contract violations: they say the endpoint was busy or down, not that it broke a rule.
That keeps Locust's failure table to one row per broken rule however many jobs broke it.
Drift (undocumented but allowed) is not a failure; it is returned for logging.

Polling repeats itself: a job waiting in the queue or running answers /status with the same
bytes poll after poll. `LastVerdicts` keeps the verdict of the last answer to each operation and
status code and reuses it when the next answer is byte for byte the same: a verdict is a pure
function of those bytes, and validation is the costliest step of a call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from runpod_testkit.operations import Operation
from runpod_testkit.schemas import ContractValidator, Finding

__all__ = ["MEMO_MAX_BYTES", "LastVerdicts", "Verdict", "failure_name", "judge"]

_ARRAY_INDEX = re.compile(r"/\d+(?=/|:|$)")
MEMO_MAX_BYTES = 4096
"""Larger answers are judged afresh every time (and not kept)."""


@dataclass(frozen=True)
class Verdict:
    status_code: int
    """0 when no HTTP response came back."""
    body: Any
    """The parsed JSON body; None when there is none or it is not JSON."""
    failure: str | None
    drift: tuple[str, ...] = ()
    error: BaseException | None = field(default=None, compare=False)
    """Why no HTTP response came back (status 0)."""

    @property
    def usable(self) -> bool:
        """A 200 with a JSON object: good enough to follow the job, even if it broke a rule."""
        return self.status_code == 200 and isinstance(self.body, dict)

    def field(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None


def failure_name(operation_name: str, finding: Finding) -> str:
    """`{operation}: {pointer}: {rule}`, without the offending value and with array indexes
    folded to `*`, so that every break of one rule is one row in Locust's failure table."""
    message = finding.message
    head, separator, _value = message.rpartition(", got ")
    if separator:
        message = head
    return f"{operation_name}: {_ARRAY_INDEX.sub('/*', message)}"


def judge(
    validator: ContractValidator,
    op: Operation,
    status_code: int,
    content: bytes | None,
    error: BaseException | None = None,
) -> Verdict:
    """Parse and validate one response of `op` (status 0 and `error` for a transport failure)."""
    if status_code == 0:
        reason = type(error).__name__ if error is not None else "no response"
        return Verdict(0, None, f"{op.name}: connection error ({reason})", error=error)
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
    if status_code >= 500:
        # The endpoint failed; its contract says nothing of a 5xx body, so none is checked.
        return Verdict(status_code, body, f"{op.name}: server error (HTTP {status_code})")
    schema_name = op.responses.get(status_code)
    if schema_name is None:
        return Verdict(status_code, body, f"{op.name}: unexpected HTTP {status_code}")
    label = "throttled (HTTP 429)" if status_code == 429 else f"HTTP {status_code}"
    if body is None:
        return Verdict(status_code, None, f"{op.name}: {label}, body is not JSON")
    if status_code == 200 and validator.passes(schema_name, body):
        return Verdict(200, body, None)  # no violation, no drift: the usual answer, at once
    result = validator.check_response(op.name, status_code, body)
    drift = tuple(failure_name(op.name, finding) for finding in result.drift)
    if status_code != 200:
        failure = f"{op.name}: {label}"
        if result.violations:
            rule = failure_name(op.name, result.violations[0])[len(op.name) + 2 :]
            failure += f" (error body {rule})"
        return Verdict(status_code, body, failure, drift)
    if result.violations:
        return Verdict(status_code, body, failure_name(op.name, result.violations[0]), drift)
    return Verdict(status_code, body, None, drift)


class LastVerdicts:
    """`judge`, remembering the last verdict per (operation, status code) to reuse for an answer
    with the very same bytes. One per user: a user follows one job at a time."""

    def __init__(self, validator: ContractValidator) -> None:
        self.validator = validator
        self._last: dict[tuple[str, int], tuple[bytes, Verdict]] = {}

    def __call__(
        self,
        op: Operation,
        status_code: int,
        content: bytes | None,
        error: BaseException | None = None,
    ) -> Verdict:
        if status_code == 0 or content is None or len(content) > MEMO_MAX_BYTES:
            return judge(self.validator, op, status_code, content, error)
        key = (op.name, status_code)
        last = self._last.get(key)
        if last is not None and last[0] == content:
            return last[1]
        verdict = judge(self.validator, op, status_code, content)
        self._last[key] = (bytes(content), verdict)  # the same object when already bytes
        return verdict
