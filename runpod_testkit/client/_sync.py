"""`RunpodClient`, the synchronous client, and its stream drain."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from runpod_testkit.client._errors import TransportError
from runpod_testkit.client._loops import _Attempts, _DrainState, _TerminalWait
from runpod_testkit.client._request import (
    CallOptions,
    RequestOptions,
    SubmitOptions,
    _Call,
    _Client,
    _ClientBase,
    _submission,
)
from runpod_testkit.client._response import ApiResponse
from runpod_testkit.operations import Operation

if TYPE_CHECKING:
    from typing_extensions import Unpack


class RunpodClient(_ClientBase[httpx.BaseTransport, httpx.Client, Callable[[float], None]]):
    """Synchronous client for one endpoint, `{base}/{endpoint_id}`.

    `timeout` is the seconds a call may take beyond the server-side hold of its ?wait (so a
    runsync with the default 90 s wait gets 90 s + timeout). Pass `transport` (e.g.
    `httpx.MockTransport(respx_router.handler)`) or an existing `http_client` for tests; a
    client passed in is not closed by this one. `sleep` (429 backoff, polling; `time.sleep` when
    None) and `clock` (polling deadlines) are injectable so that tests never sleep.
    """

    def _new_http(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(transport=transport, trust_env=self._use_env)

    def _real_sleep(self) -> Callable[[float], None]:
        return time.sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self, operation_name: str | Operation, **options: Unpack[RequestOptions]
    ) -> ApiResponse:
        """Send any operation of the table; the typed methods below all come through here."""
        return self._execute(self._prepare(operation_name, **options))

    def _execute(self, call: _Call) -> ApiResponse:
        attempts = _Attempts(self, call)
        while True:
            request = self._build_request(self._http, call)
            try:
                with attempts.sending(request):
                    response = self._http.send(request)
            except TransportError as exc:
                dropped_delay = attempts.retry_delay_after_drop(exc)
                if dropped_delay is None:
                    raise
                self._sleep(dropped_delay)
                continue
            delay = attempts.retry_delay(response)
            if delay is None:
                return attempts.result(response)
            response.close()
            self._sleep(delay)

    # -- operations
    def run(
        self, input: Mapping[str, Any] | None = None, **options: Unpack[SubmitOptions]
    ) -> ApiResponse:
        """Submit a job: `{"input": input}` plus the options given (input defaults to {}), or
        `body` (JSON) / `content` (raw bytes) sent as is."""
        payload, call_options = _submission(input, options)
        return self._execute(self._build_submission("run", payload, call_options))

    def runsync(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        wait_ms: int | None = None,
        **options: Unpack[SubmitOptions],
    ) -> ApiResponse:
        """Submit a job and wait up to `wait_ms` (the server's default when None) for its end;
        the HTTP timeout is that wait plus the call's timeout."""
        payload, call_options = _submission(input, options)
        return self._execute(self._build_submission("runsync", payload, call_options, wait_ms))

    def status(
        self,
        job_id: str,
        *,
        ttl_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """The job's state; `ttl_ms` asks the server to delete the job that many ms from now.
        `method="POST"` sends the alternative method the table lists."""
        return self._execute(self._build_job_call("status", job_id, options, method, ttl=ttl_ms))

    def status_sync(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Legacy status-sync: like status, but held up to `wait_ms` for the job to end."""
        call = self._build_job_call("status-sync", job_id, options, method, wait=wait_ms)
        return self._execute(call)

    def stream(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """One stream poll: the chunks produced since the previous one (see
        `stream_until_drained`)."""
        return self._execute(self._build_job_call("stream", job_id, options, method, wait=wait_ms))

    def cancel(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        return self._execute(self._build_job_call("cancel", job_id, options))

    def retry(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        """Requeue a FAILED or TIMED_OUT job (the API operation, not a client-side retry)."""
        return self._execute(self._build_job_call("retry", job_id, options))

    def purge_queue(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return self._execute(self._prepare("purge-queue", **options))

    def health(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return self._execute(self._prepare("health", **options))

    # -- helpers
    def wait_for_terminal(
        self, job_id: str, *, timeout_s: float = 60.0, poll_interval_s: float = 0.5
    ) -> ApiResponse:
        """Poll status until the job is terminal and return that answer.

        Raises JobTimeoutError after `timeout_s` (at least one poll is made; the last request
        may overrun by its own timeout), and ApiError on a non-2xx answer or a body without a
        status.
        """
        waiting = _TerminalWait(job_id, timeout_s, poll_interval_s, self._clock)
        while True:
            response = self.status(job_id)
            pause = waiting.pause_after(response)
            if pause is None:
                return response
            self._sleep(pause)

    def stream_until_drained(
        self,
        job_id: str,
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.25,
        wait_ms: int | None = None,
    ) -> StreamDrain:
        """Iterate over the job's stream chunks until it is terminal and a poll
        brings none; see `StreamDrain`."""
        return StreamDrain(self, job_id, timeout_s, poll_interval_s, wait_ms)


class StreamDrain(_DrainState[RunpodClient], Iterator[Any]):
    """Chunks of one job's stream, polled until the job is terminal and a poll brings none.

    Yields each chunk object as received (`{"output": ...}`). Afterwards `final` is the answer
    that ended it (its `status` tells COMPLETED from FAILED or CANCELLED) and `polls` counts the
    stream calls. Raises JobTimeoutError after `timeout_s` counted from the first poll (the last
    request may overrun by its own timeout), and ApiError on a non-2xx answer or a body without
    `status` and `stream`.
    """

    def __next__(self) -> Any:
        while not self._pending:
            if self.final is not None:
                raise StopIteration
            pause = self._pause_before_poll()
            if pause > 0:
                self._client._sleep(pause)
            self._take(self._client.stream(self.job_id, wait_ms=self._wait_ms))
        return self._pending.popleft()
