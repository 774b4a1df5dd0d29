"""`AsyncRunpodClient`, the asynchronous client, and its stream drain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
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


class AsyncRunpodClient(
    _ClientBase[httpx.AsyncBaseTransport, httpx.AsyncClient, Callable[[float], Awaitable[None]]]
):
    """Asynchronous twin of `RunpodClient` over httpx.AsyncClient (asyncio or trio); its
    `sleep` is awaited (`anyio.sleep` when None)."""

    def _new_http(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, trust_env=self._use_env)

    def _real_sleep(self) -> Callable[[float], Awaitable[None]]:
        return anyio.sleep

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: _Client) -> _Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def request(
        self, operation_name: str | Operation, **options: Unpack[RequestOptions]
    ) -> ApiResponse:
        """Send any operation of the table; see `RunpodClient.request`."""
        return await self._execute(self._prepare(operation_name, **options))

    async def _execute(self, call: _Call) -> ApiResponse:
        attempts = _Attempts(self, call)
        while True:
            request = self._build_request(self._http, call)
            try:
                with attempts.sending(request):
                    response = await self._http.send(request)
            except TransportError as exc:
                dropped_delay = attempts.retry_delay_after_drop(exc)
                if dropped_delay is None:
                    raise
                await self._sleep(dropped_delay)
                continue
            delay = attempts.retry_delay(response)
            if delay is None:
                return attempts.result(response)
            await response.aclose()
            await self._sleep(delay)

    # -- operations
    async def run(
        self, input: Mapping[str, Any] | None = None, **options: Unpack[SubmitOptions]
    ) -> ApiResponse:
        """Submit a job: `{"input": input}` plus the options given (input defaults to {}), or
        `body` (JSON) / `content` (raw bytes) sent as is."""
        payload, call_options = _submission(input, options)
        return await self._execute(self._build_submission("run", payload, call_options))

    async def runsync(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        wait_ms: int | None = None,
        **options: Unpack[SubmitOptions],
    ) -> ApiResponse:
        """Submit a job and wait up to `wait_ms` (the server's default when None) for its end;
        the HTTP timeout is that wait plus the call's timeout."""
        payload, call_options = _submission(input, options)
        return await self._execute(
            self._build_submission("runsync", payload, call_options, wait_ms)
        )

    async def status(
        self,
        job_id: str,
        *,
        ttl_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """The job's state; `ttl_ms` asks the server to delete the job that many ms from now.
        `method="POST"` sends the alternative method the table lists."""
        call = self._build_job_call("status", job_id, options, method, ttl=ttl_ms)
        return await self._execute(call)

    async def status_sync(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Legacy status-sync: like status, but held up to `wait_ms` for the job to end."""
        call = self._build_job_call("status-sync", job_id, options, method, wait=wait_ms)
        return await self._execute(call)

    async def stream(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """One stream poll: the chunks produced since the previous one (see
        `stream_until_drained`)."""
        call = self._build_job_call("stream", job_id, options, method, wait=wait_ms)
        return await self._execute(call)

    async def cancel(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        return await self._execute(self._build_job_call("cancel", job_id, options))

    async def retry(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        """Requeue a FAILED or TIMED_OUT job (the API operation, not a client-side retry)."""
        return await self._execute(self._build_job_call("retry", job_id, options))

    async def purge_queue(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return await self._execute(self._prepare("purge-queue", **options))

    async def health(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return await self._execute(self._prepare("health", **options))

    # -- helpers
    async def wait_for_terminal(
        self, job_id: str, *, timeout_s: float = 60.0, poll_interval_s: float = 0.5
    ) -> ApiResponse:
        """Poll status until the job is terminal and return that answer.

        Raises JobTimeoutError after `timeout_s` (at least one poll is made; the last request
        may overrun by its own timeout), and ApiError on a non-2xx answer or a body without a
        status.
        """
        waiting = _TerminalWait(job_id, timeout_s, poll_interval_s, self._clock)
        while True:
            response = await self.status(job_id)
            pause = waiting.pause_after(response)
            if pause is None:
                return response
            await self._sleep(pause)

    def stream_until_drained(
        self,
        job_id: str,
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.25,
        wait_ms: int | None = None,
    ) -> AsyncStreamDrain:
        """Iterate with `async for` over the job's stream chunks until it is terminal and a poll
        brings none; see `StreamDrain`."""
        return AsyncStreamDrain(self, job_id, timeout_s, poll_interval_s, wait_ms)


class AsyncStreamDrain(_DrainState[AsyncRunpodClient], AsyncIterator[Any]):
    """Asynchronous twin of `StreamDrain`: `async for chunk in drain`."""

    async def __anext__(self) -> Any:
        while not self._pending:
            if self.final is not None:
                raise StopAsyncIteration
            pause = self._pause_before_poll()
            if pause > 0:
                await self._client._sleep(pause)
            self._take(await self._client.stream(self.job_id, wait_ms=self._wait_ms))
        return self._pending.popleft()
