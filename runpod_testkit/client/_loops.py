"""The I/O-free loops: attempts with retries, polling a job, draining a stream."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic

import httpx

from runpod_testkit.client._errors import RunpodClientError
from runpod_testkit.client._request import (
    _Call,
    _check_non_negative,
    _Client,
    _ClientBase,
    _drain_step,
    _job_status,
)
from runpod_testkit.client._response import ApiResponse, JobTimeoutError
from runpod_testkit.operations import JobStatus


class _Attempts:
    """The 429 retry bookkeeping of one call, shared by the sync and async send loops (no I/O)."""

    def __init__(self, client: _ClientBase[Any, Any, Any], call: _Call) -> None:
        self._client = client
        self._call = call
        self._retries = 0
        self._slept = 0.0
        self._elapsed_ms = 0.0

    @contextlib.contextmanager
    def sending(self, request: httpx.Request) -> Iterator[None]:
        """Time one HTTP attempt and turn its transport failure into this module's error."""
        started = time.perf_counter()
        try:
            yield
        except httpx.RequestError as exc:
            raise self._client._send_error(self._call, request, exc) from exc
        self._elapsed_ms = (time.perf_counter() - started) * 1000.0

    def retry_delay_after_drop(self, error: RunpodClientError) -> float | None:
        """Seconds to back off before resending after a transport failure, or None to raise."""
        delay = self._client._retry_delay_after_drop(self._call, error, self._retries, self._slept)
        if delay is not None:
            self._slept += delay
            self._retries += 1
        return delay

    def retry_delay(self, response: httpx.Response) -> float | None:
        """Seconds to back off before resending, or None when `response` is the answer."""
        delay = self._client._retry_delay(self._call, response, self._retries, self._slept)
        if delay is not None:
            self._slept += delay
            self._retries += 1
        return delay

    def result(self, response: httpx.Response) -> ApiResponse:
        return self._client._result(
            self._call, response, self._elapsed_ms, self._retries + 1, self._slept
        )


class _JobPoll:
    """The time limit of a loop that polls one job, shared by both clients' loops (no I/O)."""

    def __init__(
        self,
        job_id: str,
        timeout_s: float,
        poll_interval_s: float,
        clock: Callable[[], float],
        operation_name: str,
    ) -> None:
        self.job_id = job_id
        self.timeout_s = _check_non_negative(timeout_s, "timeout_s")
        self.poll_interval_s = _check_non_negative(poll_interval_s, "poll_interval_s")
        self.polls = 0
        self._clock = clock
        self._operation = operation_name
        self._deadline = 0.0

    def _start(self) -> None:
        self._deadline = self._clock() + self.timeout_s

    def _time_left(self, last: ApiResponse) -> float:
        """Seconds until the deadline; JobTimeoutError once there are none."""
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise JobTimeoutError(
                self.job_id,
                last_status=last.status,
                timeout_s=self.timeout_s,
                polls=self.polls,
                operation=self._operation,
                last_response=last,
            )
        return remaining


class _TerminalWait(_JobPoll):
    """The decisions of `wait_for_terminal`; the clients only send and sleep."""

    def __init__(
        self, job_id: str, timeout_s: float, poll_interval_s: float, clock: Callable[[], float]
    ) -> None:
        super().__init__(job_id, timeout_s, poll_interval_s, clock, "status")
        self._start()

    def pause_after(self, response: ApiResponse) -> float | None:
        """None if `response` shows the job terminal, else the seconds to sleep before polling
        again; ApiError on an unusable answer, JobTimeoutError once the time is up."""
        self.polls += 1
        if _job_status(response, self.job_id) in JobStatus.TERMINAL:
            return None
        return min(self.poll_interval_s, self._time_left(response))


class _DrainState(_JobPoll, Generic[_Client]):
    """Bookkeeping shared by StreamDrain and AsyncStreamDrain; they only send and sleep."""

    def __init__(
        self,
        client: _Client,
        job_id: str,
        timeout_s: float,
        poll_interval_s: float,
        wait_ms: int | None,
    ) -> None:
        super().__init__(job_id, timeout_s, poll_interval_s, client._clock, "stream")
        self._client = client
        self.final: ApiResponse | None = None
        """The answer that ended the stream (terminal status, no chunks); None until then."""
        self._wait_ms = wait_ms
        self._pending: deque[Any] = deque()
        self._last: ApiResponse | None = None

    def _pause_before_poll(self) -> float:
        """Seconds to sleep before the next poll; JobTimeoutError once the time is up."""
        if self._last is None:
            self._start()
            return 0.0
        remaining = self._time_left(self._last)
        # After a poll that brought chunks more may be ready at once; only an empty one waits.
        return 0.0 if self._last.stream_chunks else min(self.poll_interval_s, remaining)

    def _take(self, response: ApiResponse) -> None:
        self.polls += 1
        self._last = response
        chunks, drained = _drain_step(response, self.job_id)
        if drained:
            self.final = response
        self._pending.extend(chunks)
