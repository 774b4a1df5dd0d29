"""One request to the endpoint through a Locust FastHttpSession, named by its operation.

Every response is judged (`verdict.judge`): Locust records the request as a success or as a
failure named by the rule it broke. Request names are the operation names of the operations
table ("run", "status", ...), never a path with a job id in it.
A caller (one per user) judges through a `LastVerdicts`: a poll that gets the same bytes as the
poll before it (a job waiting or running) reuses that verdict instead of validating again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from locust.contrib.fasthttp import FastHttpSession

from runpod_testkit.loadtest.verdict import LastVerdicts, Verdict
from runpod_testkit.operations import Operation
from runpod_testkit.schemas import ContractValidator

__all__ = ["DriftLog", "EndpointCaller"]

logger = logging.getLogger(__name__)
_JSON_HEADERS = {"Content-Type": "application/json"}

Check = Callable[[Any], "str | None"]
"""An extra check of a usable body: a failure name, or None when it passes."""


class DriftLog:
    """Logs each distinct drift finding once per process (drift is allowed, but worth a look)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def note(self, findings: tuple[str, ...]) -> None:
        for finding in findings:
            if finding not in self._seen:
                self._seen.add(finding)
                logger.warning("drift (undocumented, not a failure): %s", finding)


class EndpointCaller:
    """Sends operations of the operations table through one session and judges the answers."""

    def __init__(
        self, session: FastHttpSession, validator: ContractValidator, drift: DriftLog
    ) -> None:
        self.session = session
        self.validator = validator
        self.drift = drift
        self.judge = LastVerdicts(validator)

    def call(
        self,
        op: Operation,
        job_id: str | None = None,
        *,
        body: bytes | None = None,
        query: str = "",
        check: Check | None = None,
    ) -> Verdict:
        path = op.path_for(job_id) + query
        with self.session.request(
            op.method,
            path,
            name=op.name,
            data=body,  # type: ignore[arg-type]  # geventhttpclient sends bytes as they are
            headers=_JSON_HEADERS if body is not None else None,
            catch_response=True,
        ) as response:
            try:
                content: bytes | None = response.content
            except Exception:  # a body cut short: geventhttpclient raises assorted types
                content = None
            error = getattr(response, "error", None)
            verdict = self.judge(op, response.status_code, content, error)
            failure = verdict.failure
            if failure is None and check is not None and verdict.usable:
                failure = check(verdict.body)
            if failure is None:
                response.success()
            else:
                response.failure(failure)
        if verdict.drift:
            self.drift.note(verdict.drift)
        return verdict
