"""`ApiResponse`: one operation's answer with typed, never-raising accessors; and the errors
that carry an answer (`ApiError`, `JobTimeoutError`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import httpx
import orjson

from runpod_testkit.client._errors import RunpodClientError, _no_redaction
from runpod_testkit.operations import JobStatus

_BODY_EXCERPT_CHARS = 200
_NOT_PARSED = object()


class ApiResponse:
    """One operation's answer: status code, headers, parsed body and typed accessors.

    Accessors never raise on a malformed body; they return None (or an empty list) instead.
    `response` is the raw httpx.Response, kept for contract checks.
    """

    def __init__(
        self,
        operation: str,
        response: httpx.Response,
        *,
        elapsed_ms: float,
        attempts: int = 1,
        retry_wait_s: float = 0.0,
        redact: Callable[[str], str] = _no_redaction,
    ) -> None:
        self.operation = operation
        self.response = response
        self.elapsed_ms = elapsed_ms
        """Duration of the last HTTP attempt, in milliseconds (backoff excluded)."""
        self.attempts = attempts
        """HTTP attempts made, 1 + the number of retries (429; 5xx and dropped connections on
        reads)."""
        self.retry_wait_s = retry_wait_s
        """Seconds slept in backoff before the last attempt."""
        self._redact = redact

    # -- raw facts
    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    @property
    def method(self) -> str:
        return self.response.request.method

    @property
    def url(self) -> str:
        return str(self.response.request.url)

    @property
    def content(self) -> bytes:
        return self.response.content

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @cached_property
    def _parsed(self) -> Any:
        try:
            return orjson.loads(self.response.content)
        except orjson.JSONDecodeError:
            return _NOT_PARSED

    @property
    def is_json(self) -> bool:
        """Whether the body parses as JSON (whatever its Content-Type says)."""
        return self._parsed is not _NOT_PARSED

    @property
    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON (see `is_json`)."""
        return None if self._parsed is _NOT_PARSED else self._parsed

    # -- typed accessors
    def _field(self, name: str) -> Any:
        body = self.json
        return body.get(name) if isinstance(body, dict) else None

    def _str_field(self, name: str) -> str | None:
        value = self._field(name)
        return value if isinstance(value, str) else None

    def _int_field(self, name: str) -> int | None:
        value = self._field(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def job_id(self) -> str | None:
        return self._str_field("id")

    @property
    def status(self) -> str | None:
        """The job status (IN_QUEUE, ..., or `completed` for purge-queue), if a string."""
        return self._str_field("status")

    @property
    def is_terminal(self) -> bool:
        return self.status in JobStatus.TERMINAL

    @property
    def delay_time_ms(self) -> int | None:
        """`delayTime`: milliseconds the job waited in the queue."""
        return self._int_field("delayTime")

    @property
    def execution_time_ms(self) -> int | None:
        """`executionTime`: milliseconds the job ran."""
        return self._int_field("executionTime")

    @property
    def output(self) -> Any:
        return self._field("output")

    @property
    def error(self) -> str | None:
        return self._str_field("error")

    @property
    def worker_id(self) -> str | None:
        return self._str_field("workerId")

    @property
    def stream_chunks(self) -> list[Any] | None:
        """The chunk objects of a /stream answer (`{"output": ...}` each), or None if absent.

        The documentation prints /stream's body as a bare chunk list; that is accepted too."""
        body = self.json
        chunks = body.get("stream") if isinstance(body, dict) else body
        return chunks if isinstance(chunks, list) else None

    @property
    def stream_outputs(self) -> list[Any]:
        """The `output` of each stream chunk that has one."""
        return [
            chunk["output"]
            for chunk in self.stream_chunks or []
            if isinstance(chunk, dict) and "output" in chunk
        ]

    # -- errors
    def describe(self, problem: str | None = None) -> str:
        """One line for error messages: operation, request, status, body excerpt (redacted)."""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        excerpt = self.text[:_BODY_EXCERPT_CHARS].replace("\n", " ")
        if len(self.text) > _BODY_EXCERPT_CHARS:
            excerpt += "..."
        line = (
            f"{self.operation}: {self.method} {self.url} answered {self.status_code} "
            f"{self.response.reason_phrase}{tries}"
        )
        line += f": {problem}" if problem else ""
        line += f"; body: {excerpt!r}" if excerpt else "; empty body"
        return self._redact(line)

    def raise_for_status(self) -> ApiResponse:
        """Return self if the status is 2xx, else raise ApiError."""
        if not self.ok:
            raise ApiError(self)
        return self

    def __repr__(self) -> str:
        return self._redact(
            f"ApiResponse(operation={self.operation!r}, status_code={self.status_code}, "
            f"status={self.status!r}, job_id={self.job_id!r}, "
            f"elapsed_ms={self.elapsed_ms:.1f}, attempts={self.attempts})"
        )


class ApiError(RunpodClientError):
    """The endpoint answered, but not as asked: a non-2xx status, or a body that is not a job."""

    def __init__(self, response: ApiResponse, problem: str | None = None) -> None:
        self.response = response
        super().__init__(response.describe(problem))

    @property
    def status_code(self) -> int:
        return self.response.status_code


class JobTimeoutError(RunpodClientError, TimeoutError):
    """A job did not reach a terminal state (or drain its stream) within the time allowed."""

    def __init__(
        self,
        job_id: str,
        *,
        last_status: str | None,
        timeout_s: float,
        polls: int,
        operation: str,
        last_response: ApiResponse | None,
    ) -> None:
        self.job_id = job_id
        self.last_status = last_status
        self.timeout_s = timeout_s
        self.polls = polls
        self.last_response = last_response
        super().__init__(
            f"job {job_id!r} is still {last_status or 'in an unknown state'} after "
            f"{timeout_s:g} s ({polls} {operation} call(s)); raise the timeout, or check the "
            f"endpoint's workers (health) and the job's own run time"
        )
