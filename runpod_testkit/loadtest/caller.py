"""One request to the endpoint through a Locust FastHttpSession, named by its operation.

Every response is judged (`verdict.judge`): Locust records the request as a success or as a
failure named by the rule it broke. Request names are the operation names of the operations
table ("run", "status", ...), never a path with a job id in it; a call may rename its request
from the answer (`rename`): the run's own /cancel of a job that had already ended is
`cancel after end`, so that `cancel` counts the jobs it did interrupt.
With the process's `Safeguards` a call is paced under the endpoint's rate limits, counted
(throttled, server error, connection error, refused), watched by the refusal breaker, and sent
again after a 429, a 5xx or a lost connection where that is safe (`failsafe.retry_decision`);
each attempt is its own request in Locust's table.
A caller (one per user) judges through a `LastVerdicts`: a poll that gets the same bytes as the
poll before it (a job waiting or running) reuses that verdict instead of validating again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.contrib.fasthttp import FastHttpSession

from runpod_testkit.loadtest.failsafe import Safeguards
from runpod_testkit.loadtest.verdict import LastVerdicts, Verdict
from runpod_testkit.operations import Operation
from runpod_testkit.schemas import ContractValidator

__all__ = ["DriftLog", "EndpointCaller"]

logger = logging.getLogger(__name__)
_JSON_HEADERS = {"Content-Type": "application/json"}

Check = Callable[[Any], "str | None"]
Rename = Callable[[Verdict], "str | None"]
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
        self,
        session: FastHttpSession,
        validator: ContractValidator,
        drift: DriftLog,
        guard: Safeguards | None = None,
    ) -> None:
        self.session = session
        self.validator = validator
        self.drift = drift
        self.judge = LastVerdicts(validator)
        self.guard = guard
        """The process's breaker, retries and pacing; None: one attempt, nothing else."""

    def call(
        self,
        op: Operation,
        job_id: str | None = None,
        *,
        body: bytes | None = None,
        query: str = "",
        check: Check | None = None,
        deadline: float | None = None,
        rename: Rename | None = None,
    ) -> Verdict:
        """Send `op` and judge the answer. With a guard: paced, counted, and sent again after
        a 429, a 5xx or a lost connection when that is safe (see `failsafe`), with backoff,
        until `deadline` (epoch seconds; default: the guard's retry budget from now).
        `rename`: the request's name in Locust's table from its verdict (None: the op's)."""
        guard = self.guard
        if guard is None:
            return self._attempt(op, job_id, body, query, check, rename=rename)[0]
        if deadline is None:
            deadline = time.time() + guard.retry_budget_s
        retry = 0
        while True:
            wait = guard.pace(op)
            if wait > 0:
                gevent.sleep(wait)
            verdict, retry_after = self._attempt(op, job_id, body, query, check, rename=rename)
            guard.observe(verdict.status_code, verdict.error)
            delay = guard.retry_delay_s(
                op,
                verdict.status_code,
                verdict.error,
                retry=retry,
                retry_after=retry_after,
                time_left_s=deadline - time.time(),
            )
            if delay is None:
                return verdict
            gevent.sleep(delay)
            retry += 1

    def _attempt(
        self,
        op: Operation,
        job_id: str | None,
        body: bytes | None,
        query: str,
        check: Check | None,
        *,
        rename: Rename | None = None,
    ) -> tuple[Verdict, str | None]:
        """One request: its verdict, and its Retry-After header if any."""
        path = op.path_for(job_id) + query
        retry_after: str | None = None
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
            if verdict.status_code == 429 or verdict.status_code >= 500:
                retry_after = response.headers.get("Retry-After")
            if rename is not None:
                # Read when the context exits, where Locust fires the request event.
                response.request_meta["name"] = rename(verdict) or op.name
            failure = verdict.failure
            if failure is None and check is not None and verdict.usable:
                failure = check(verdict.body)
            if failure is None:
                response.success()
            else:
                response.failure(failure)
        if verdict.drift:
            self.drift.note(verdict.drift)
        return verdict, retry_after
