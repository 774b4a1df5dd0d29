"""The emulator over real HTTP: a Starlette app that drives the model with the wall clock.

Requests for `/v2/{endpoint_id}/{operation}[/{job_id}]` go through `EmulatorService`. A timer
on the event loop fires at the model's next event time, so jobs end on time even when nobody
asks; held requests (/runsync, /status-sync, /stream) sleep on a future that the model's
`on_change` hook resolves, or until the next chunk or their deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runpod_testkit.emulator.model import EmulatorConfig, Job, Model
from runpod_testkit.emulator.service import (
    EmulatorService,
    Hold,
    RateLimiter,
    Reply,
    error,
    production_rate_limits,
)

__all__ = ["EmulatorApp", "JobLog", "create_app", "wall_clock"]

API_PREFIX = "/v2"
# The service answers a wrong method with 405 itself, naming the methods the operation accepts.
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def wall_clock() -> Callable[[], float]:
    """Epoch seconds that never jump: the wall clock read once, then advanced monotonically."""
    epoch0, mono0 = time.time(), time.monotonic()
    return lambda: epoch0 + (time.monotonic() - mono0)


class JobLog:
    """--job-log: one JSON line per job that reaches a terminal state, written as it happens."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8", buffering=1)

    def write(self, job: Job) -> None:
        self._file.write(json.dumps(job.log_record(), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


class EmulatorApp:
    """Holds the model, the service and the timer; `starlette` is the ASGI app to serve."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        api_key: str | None = None,
        rate_limits: bool = False,
        job_log: str | Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.clock = clock or wall_clock()
        self.job_log = JobLog(job_log) if job_log else None
        self.model = Model(
            config,
            self.clock,
            on_terminal=self.job_log.write if self.job_log else None,
            on_change=self._wake_waiters,
        )
        limiter = RateLimiter(production_rate_limits()) if rate_limits else None
        self.service = EmulatorService(self.model, api_key=api_key, rate_limiter=limiter)
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.starlette = Starlette(
            routes=[
                Route(API_PREFIX + "/{endpoint_id}/{op_path:path}", self.endpoint, methods=_ANY)
            ],
            exception_handlers={HTTPException: self._http_error},
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._arm_timer()
        try:
            yield
        finally:
            if self._timer is not None:
                self._timer.cancel()
            if self.job_log is not None:
                self.job_log.close()

    async def _http_error(self, _request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            reply = error(404, f"not found: paths look like {API_PREFIX}/{{endpoint_id}}/run")
        else:
            reply = error(exc.status_code, str(exc.detail))
        return _response(reply)

    async def endpoint(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        finally:
            self._arm_timer()

    async def _handle(self, request: Request) -> Response:
        service = self.service
        call = service.preflight(
            request.method,
            request.path_params["endpoint_id"],
            request.path_params["op_path"],
            request.query_params,
            request.headers.get("authorization"),
        )
        if isinstance(call, Reply):
            return _response(call)
        try:
            body = await _read_body(request, call.max_body_bytes)
            if body is None:
                return _response(
                    error(
                        413,
                        f"request body is over the {call.max_body_bytes // (1024 * 1024)} MB limit "
                        f"of /{call.operation.name}",
                    )
                )
            result = service.execute(call, body)
            if isinstance(result, Hold):
                await self._wait(result)
                result = result.reply()
            return _response(result)
        finally:
            service.release(call)

    async def _wait(self, hold: Hold) -> None:
        loop = asyncio.get_running_loop()
        job_id = hold.job.id
        while not hold.ready():
            self._arm_timer()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(job_id, []).append(future)
            try:
                await asyncio.wait_for(future, max(0.0, hold.wake_at() - self.clock()))
            except asyncio.TimeoutError:
                pass
            finally:
                waiters = self._waiters.get(job_id)
                if waiters is not None and future in waiters:
                    waiters.remove(future)
                    if not waiters:
                        del self._waiters[job_id]
            self.model.advance()

    def _wake_waiters(self, job: Job) -> None:
        for future in self._waiters.pop(job.id, ()):
            if not future.done():
                future.set_result(None)

    def _arm_timer(self) -> None:
        """Make sure the loop wakes at the model's next event (earlier than any timer set)."""
        next_at = self.model.next_event_time()
        if next_at is None or (self._timer_at is not None and self._timer_at <= next_at):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = next_at
        self._timer = loop.call_at(loop.time() + max(0.0, next_at - self.clock()), self._tick)

    def _tick(self) -> None:
        self._timer = self._timer_at = None
        self.model.advance()
        self._arm_timer()


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` (never buffering past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _response(reply: Reply) -> Response:
    return Response(reply.encode(), reply.status, reply.headers, media_type="application/json")


def create_app(config: EmulatorConfig | None = None, **options: Any) -> Starlette:
    """An ASGI app for `uvicorn runpod_testkit.emulator.app:create_app --factory`."""
    return EmulatorApp(config, **options).starlette
