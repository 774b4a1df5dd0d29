"""Errors the clients raise, and the API key kept out of their messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runpod_testkit.client._response import ApiResponse


_REDACTED = "***"
# Shorter "keys" (test placeholders such as "k") are not redacted: replacing every "k" in a
# message would mangle it and protect nothing.
_MIN_REDACTED_KEY_CHARS = 6


class _Secret:
    """The API key, kept out of reprs; `redact` removes it from any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    @property
    def value(self) -> str | None:
        return self._value

    def redact(self, text: str) -> str:
        if self._value and len(self._value) >= _MIN_REDACTED_KEY_CHARS:
            return text.replace(self._value, _REDACTED)
        return text

    def __repr__(self) -> str:
        return "None" if self._value is None else repr(_REDACTED)


def _no_redaction(text: str) -> str:
    return text


class RunpodClientError(Exception):
    """Base class of the errors this module raises."""


class RequestTimeout(RunpodClientError, TimeoutError):
    """No response within the call's timeout (httpx.TimeoutException underneath)."""

    def __init__(self, message: str, *, operation: str, url: str, timeout_s: float) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.timeout_s = timeout_s


class TransportError(RunpodClientError):
    """The request could not be sent or its response not read (connection refused, reset...)."""

    def __init__(self, message: str, *, operation: str, url: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url


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
