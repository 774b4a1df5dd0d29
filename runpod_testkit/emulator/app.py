"""The emulator over real HTTP: a Starlette app that drives the model with the wall clock.

Requests for `/v2/{endpoint_id}/{operation}[/{job_id}]` go through `EmulatorService`. A timer
on the event loop fires at the model's next event time, so jobs end on time even when nobody
asks; held requests (/runsync, /status-sync, /stream) sleep on a future that the model's
`on_change` hook resolves, or until the next chunk or their deadline. A held request also ends
early when its client goes away (freeing its rate-limit slot) or the server shuts down (it then
answers with the job as it stands, as an expired wait does), so a stop never waits out a hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runpod_testkit.emulator.factory import build_service
from runpod_testkit.emulator.faults import FaultCounts
from runpod_testkit.emulator.model import EmulatorConfig, Job, Worker, WorkerRuntime
from runpod_testkit.emulator.service import (
    Call,
    Hold,
    Refusal,
    Reply,
    describe_size,
    error,
    too_large,
)
from runpod_testkit.emulator.webhooks import (
    WEBHOOK_RETRY_DELAY_S,
    WEBHOOK_TIMEOUT_S,
    AsyncWebhookSender,
)
from runpod_testkit.operations import OPERATIONS, Operation

__all__ = ["EmulatorApp", "JobLog", "create_app", "describe_size", "wall_clock"]

API_PREFIX = "/v2"
# The service answers a wrong method with 405 itself, naming the methods the operation accepts
# in `Allow` (TRACE too: left to Starlette it would be a 405 that names none).
_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
_TIMER_SLACK_S = 0.005
# Starlette tries routes in order: put the operations a load sends most first (polls, then
# submissions); the rest keep the table's order.
_BUSIEST_FIRST = ("status", "run", "stream", "runsync")


def _by_expected_traffic(op: Operation) -> int:
    return _BUSIEST_FIRST.index(op.name) if op.name in _BUSIEST_FIRST else len(_BUSIEST_FIRST)


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


class WorkerLog:
    """--worker-log: one JSON line per worker that stops (its billing): endpointId, workerId,
        startedAt and stoppedAt (epoch ms), seconds (exact) and billedSeconds (rounded up, as Runpod
        bills), and coldStartJobs (jobs it picked up at the end of its cold start: they waited on
    its start-up). Workers still up when the emulator stops are written then, with "atShutdown"."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8", buffering=1)

    def write(self, worker: Worker, stopped_at: float, *, at_shutdown: bool = False) -> None:
        seconds = max(0.0, stopped_at - worker.started_at)
        record: dict[str, Any] = {
            "endpointId": worker.endpoint.id,
            "workerId": worker.id,
            "startedAt": round(worker.started_at * 1000),
            "stoppedAt": round(stopped_at * 1000),
            "seconds": round(seconds, 3),
            "billedSeconds": math.ceil(round(seconds, 6)),
            "coldStartJobs": worker.cold_start_jobs,
        }
        if at_shutdown:
            record["atShutdown"] = True
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

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
        worker_log: str | Path | None = None,
        clock: Callable[[], float] | None = None,
        endpoint_ids: Collection[str] | None = None,
        worker: str | None = None,
        webhook_retry_delay_s: float = WEBHOOK_RETRY_DELAY_S,
        webhook_timeout_s: float = WEBHOOK_TIMEOUT_S,
    ) -> None:
        self.clock = clock or wall_clock()
        # Real worker processes of `worker` (a command line), or the simulated probe.
        self.worker_processes = None
        runtime: WorkerRuntime | None = None
        if worker is not None:
            from runpod_testkit.emulator.workers import ProcessRuntime

            runtime = self.worker_processes = ProcessRuntime(worker)
            runtime.after_change = self._arm_timer
        self.job_log = JobLog(job_log) if job_log else None
        self.webhooks = AsyncWebhookSender(
            self.clock, retry_delay_s=webhook_retry_delay_s, timeout_s=webhook_timeout_s
        )
        self.service = build_service(
            config,
            self.clock,
            api_key=api_key,
            rate_limits=rate_limits,
            on_terminal=self._job_ended,
            on_change=self._wake_waiters,
            endpoint_ids=endpoint_ids,
            runtime=runtime,
        )
        self.model = self.service.model
        self.worker_log = WorkerLog(worker_log) if worker_log else None
        if self.worker_log is not None:
            self.model.on_worker_stopped = self.worker_log.write
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._held = 0
        self._stopping = False
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        """Loop time at which `_timer` fires."""
        self._timer_for: float | None = None
        """The model time `_timer` was armed for."""
        self._checked_at_update = -1
        """`model.scheduled` when the timer was last checked against the next event."""
        self._steady_clock = clock is None
        """The default wall clock advances with loop time (both monotonic); an injected clock
        may jump, so the timer is then re-checked in loop time on every request."""
        self.starlette = Starlette(
            routes=[
                *(
                    Route(
                        API_PREFIX + "/{endpoint_id}" + op.path,
                        self._endpoint_for(op),
                        methods=_ANY,
                    )
                    for op in sorted(OPERATIONS.values(), key=_by_expected_traffic)
                ),
                # Everything else under the prefix: a trailing slash, or what the service's 404
                # names (an unknown operation, a job id missing, extra segments).
                Route(
                    API_PREFIX + "/{endpoint_id}/{op_path:path}",
                    self._endpoint_for(None),
                    methods=_ANY,
                ),
                *(self.worker_processes.routes() if self.worker_processes else ()),
            ],
            exception_handlers={HTTPException: self._http_error},
            lifespan=self._lifespan,
        )
        # A path without an operation gets the JSON 404, not a bodiless redirect to a slash.
        self.starlette.router.redirect_slashes = False

    def _job_ended(self, job: Job) -> None:
        if self.job_log is not None:
            self.job_log.write(job)
        if job.webhook is not None:
            self.webhooks.job_ended(job)

    @property
    def faults_injected(self) -> FaultCounts:
        """Every fault injected so far (--faults), by kind."""
        return self.model.fault_counts

    @property
    def held_requests(self) -> int:
        """Requests currently held open (/runsync, /status-sync, /stream waiting)."""
        return self._held

    def serving_at(self, base_url: str) -> None:
        """The server listens at `base_url` (`http://HOST:PORT`; called on the loop's thread):
        worker processes can be started, pointed at it."""
        if self.worker_processes is not None:
            self.worker_processes.bind(asyncio.get_running_loop(), base_url)

    def stop_holding(self) -> None:
        """Answer every held request now and hold no more (called by the server as it stops,
        on the event loop's thread). Worker processes are told to stop."""
        self._stopping = True
        if self.worker_processes is not None:
            self.worker_processes.begin_shutdown()
        for waiters in list(self._waiters.values()):
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._arm_timer()
        self.webhooks.warm_up()
        try:
            yield
        finally:
            if self._timer is not None:
                self._timer.cancel()
            if self.worker_processes is not None:
                await self.worker_processes.aclose()
            await self.webhooks.aclose()
            if self.job_log is not None:
                self.job_log.close()
            if self.worker_log is not None:
                now = self.clock()
                for endpoint in self.model.endpoints.values():
                    for worker in endpoint.live_workers():
                        self.worker_log.write(worker, now, at_shutdown=True)
                self.worker_log.close()

    async def _http_error(self, _request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            reply = error(404, f"not found: paths look like {API_PREFIX}/{{endpoint_id}}/run")
        else:
            reply = error(exc.status_code, str(exc.detail), **(exc.headers or {}))
        return _response(reply)

    def _endpoint_for(
        self, op: Operation | None
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route handler of one operation (Starlette has matched its path), or with None
        the handler of every other path under the prefix (the service routes it, or names
        what is wrong). One coroutine per request: every await layer costs time under load."""

        async def endpoint(request: Request) -> Response:
            service = self.service  # looked up per request: tests swap in other services
            scope = request.scope
            path_params = scope["path_params"]
            authorization, content_length, chunked = _scan_headers(scope["headers"])
            # Read straight from the scope: Starlette would build a QueryParams and a Headers
            # object per request, which costs more than the lookups themselves.
            query = request.query_params if scope["query_string"] else _NO_QUERY
            try:
                if op is None:
                    call = service.preflight(
                        scope["method"],
                        path_params["endpoint_id"],
                        path_params["op_path"],
                        query,
                        authorization,
                    )
                else:
                    call = service.admit(
                        op,
                        scope["method"],
                        path_params["endpoint_id"],
                        path_params.get("job_id"),
                        query=query,
                        authorization=authorization,
                    )
                try:
                    if call.delay_s:
                        await asyncio.sleep(call.delay_s)  # an injected latency
                    if content_length is None and not chunked:
                        body = b""  # HTTP/1.1: no body (most GETs): skip the receive
                    else:
                        body = await _read_body(request, call, content_length)
                    result = service.execute(call, body)
                    if isinstance(result, Hold):
                        await self._wait(result, request)
                        result = result.reply()
                    return _response(result)
                finally:
                    service.release(call)
            except Refusal as refusal:
                return await _refused(refusal.reply, request)
            finally:
                self._arm_timer()

        return endpoint

    async def _wait(self, hold: Hold, request: Request) -> None:
        """Until the hold is ready, the server stops or the client goes away."""
        if self._stopping or hold.ready():
            return  # most holds are ready at once: skip the disconnect watcher's task
        loop = asyncio.get_running_loop()
        job_id = hold.job.id
        gone = asyncio.ensure_future(_client_gone(request))
        self._held += 1
        try:
            while not hold.ready() and not self._stopping and not gone.done():
                self._arm_timer()
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.setdefault(job_id, []).append(future)
                try:
                    await asyncio.wait(
                        (future, gone),
                        timeout=max(0.0, hold.wake_at() - self.clock()),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    future.cancel()
                    waiters = self._waiters.get(job_id)
                    if waiters is not None and future in waiters:
                        waiters.remove(future)
                        if not waiters:
                            del self._waiters[job_id]
                self.model.advance()
        finally:
            self._held -= 1
            gone.cancel()

    def _wake_waiters(self, job: Job) -> None:
        if not self._waiters:
            return  # nobody holds a request (the usual case): skip the lookup
        for future in self._waiters.pop(job.id, ()):
            if not future.done():
                future.set_result(None)

    def _arm_timer(self) -> None:
        """Make sure the loop wakes at the model's next event (earlier than any timer set).
        Compared in loop time, so a clock that jumps ahead (an injected one) re-arms it too."""
        model = self.model
        if (
            self._timer is not None
            and model.scheduled == self._checked_at_update
            and self._steady_clock
        ):
            return  # nothing scheduled since the last look (see `Model.scheduled`); steady clock
        next_at = model.next_event_time()
        self._checked_at_update = model.scheduled
        if next_at is None:
            return
        if next_at == self._timer_for and self._timer is not None and self._steady_clock:
            return  # armed for this very event, and loop time and the clock move together
        loop = asyncio.get_running_loop()
        wake_at = loop.time() + max(0.0, next_at - self.clock())
        # uvloop's loop.time() is cached per loop iteration while the clock is not, so an exact
        # comparison would cancel and re-create the timer on nearly every request; a timer due
        # a few ms later than asked is re-armed, anything closer is kept.
        if self._timer is not None and self._timer_when <= wake_at + _TIMER_SLACK_S:
            return
        if self._timer is not None:
            self._timer.cancel()
        # Kept here: uvloop answers a due call_at with a plain Handle that has no when().
        self._timer_when = wake_at
        self._timer_for = next_at
        self._timer = loop.call_at(wake_at, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.model.advance()
        self._arm_timer()


async def _client_gone(request: Request) -> None:
    """Returns once the client disconnects (called after the body has been read, when the next
    ASGI message can only be the disconnect)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:
        # A transport that cannot tell: hold on as if the client stayed (until cancelled).
        await asyncio.get_running_loop().create_future()


async def _refused(reply: Reply, request: Request) -> Response:
    """A refusal's reply; an injected fault's waits out its latency first, or closes the
    connection without an answer (a TCP reset) and ends once the server has seen it go."""
    if reply.delay_s:
        await asyncio.sleep(reply.delay_s)
    if not reply.reset:
        return _response(reply)
    _reset_connection(request)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_client_gone(request), timeout=1.0)
    # The server saw the connection go, so it sends nothing for this (unsent) response.
    return Response(b"", 500)


def _reset_connection(request: Request) -> None:
    """Abort the request's TCP connection with a reset (SO_LINGER 0), nothing answered.
    ASGI has no such message: the transport is reached through uvicorn's request cycle, which
    is what `receive` is bound to."""
    cycle = getattr(request.receive, "__self__", None)
    transport: asyncio.Transport | None = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("an injected reset needs uvicorn's HTTP transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


_NO_QUERY: dict[str, str] = {}


def _scan_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None, bool]:
    """(Authorization, Content-Length, chunked?) in one pass over the ASGI header list (names
    arrive in lower case; the first Authorization counts)."""
    authorization: str | None = None
    content_length: str | None = None
    chunked = False
    for key, value in headers:
        if key == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif key == b"content-length":
            content_length = value.decode("latin-1")
        elif key == b"transfer-encoding":
            chunked = True
    return authorization, content_length, chunked


async def _read_body(request: Request, call: Call, declared: str | None) -> bytes:
    """The body; refused as soon as it is known to exceed the operation's limit (never
    buffering past it) or the client has gone."""
    limit = call.max_body_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(call)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            # Nobody is left to read an answer; end quietly instead of raising into uvicorn.
            raise Refusal.error(400, "the client closed the connection mid-body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(call)
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: the whole body in one message, no join
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _response(reply: Reply) -> Response:
    # No headers mapping when there are none: Starlette then skips re-encoding an empty dict.
    return Response(
        reply.encode(), reply.status, reply.headers or None, media_type="application/json"
    )


def create_app(config: EmulatorConfig | None = None, **options: Any) -> Starlette:
    """An ASGI app for `uvicorn runpod_testkit.emulator.app:create_app --factory`."""
    return EmulatorApp(config, **options).starlette
