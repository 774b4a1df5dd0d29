"""Real worker processes behind the emulator: the user's handler, run by the official runpod SDK.

`runpod-testkit emulator --worker "python handler.py"` makes each worker of an endpoint a process of
that command, in its own process group, with the environment `runpod.serverless` reads in
production (`RUNPOD_WEBHOOK_GET_JOB` and friends, so the SDK leaves local-test mode). The emulator
plays Runpod's side of the worker protocol, on routes under `/_worker` of the same server
(runpod 1.12, `runpod/serverless/modules/rp_job.py`, `rp_scale.py`, `rp_http.py`, `rp_ping.py`):

- `GET job-take/{worker}?token=..&job_in_progress=0|1`: a long poll, answered the moment a job is
  queued (`{"id", "input"}`), or 204 after `poll_hold_s` (the SDK asks again at once).
- `GET job-take-batch/{worker}?..&batch_size=N&job_in_progress=..`: the same, a list of up to N
  jobs (`concurrency_modifier` > 1).
- `GET job-stop/{worker}?token=..`: a long poll answered `{"jobsToStop": [ids]}` when a running
  job is cancelled or times out. The SDK cancels the job's asyncio task and polls again at once,
  which is the sign that the job stopped. A sync handler blocks the SDK's event loop, so no such
  sign comes: after `stop_grace_s` the worker's process group is killed (and replaced if needed).
- `POST job-done/{worker}/{job}?token=..&isStream=..`: the result, a JSON string sent as a form
  body: `{"output"}`, `{"error"}`, plus `"stopPod": true` (refresh_worker: the process is
  stopped and another one serves the next job), or `{"status": "IN_PROGRESS", "output"}` from
  `progress_update` (shown as the job's output while it runs; ignored once the job has ended).
- `POST job-stream/{worker}/{job}?..`: one `{"output": value}` per value a generator yields.
- `GET ping/{worker}?token=..&job_id=..&runpod_version=..`: the heartbeat (from a child process
  of the worker: workers are stopped by process group).

Workers are not authenticated by their Authorization header (the SDK sends the key of
`~/.runpod/config.toml` instead when that file exists, and HOME is a private temporary directory
anyway) but by a random token in the URLs. A worker counts as initializing from its spawn until
its first job-take (plus the configured cold start on top), so delayTime includes the real cold
start. Every process is stopped on every exit path: server shutdown, idle retirement, and an
`atexit` hook that kills what is left.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hmac
import itertools
import json
import os
import secrets
import shlex
import shutil
import signal
import site
import sys
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runpod_testkit.emulator.model import Job, Model, Worker, WorkerState
from runpod_testkit.operations import JobStatus

__all__ = [
    "ROUTE_PREFIX",
    "RUNTIME_ENV",
    "ProcessRuntime",
    "WorkerCommandError",
    "parse_worker_command",
]

ROUTE_PREFIX = "/_worker"
RUNTIME_ENV = "RUNPOD_TESTKIT_RUNTIME"
"""Set in every worker's environment to its runtime's id (`PID-N` of the emulator), so that a
leak check can find every process a runtime started, grandchildren included."""

_NOT_INHERITED = ("RUNPOD_API_KEY",)
"""The user's own key never reaches a worker (production's workers do not get it either)."""
_LINE_LIMIT = 1024 * 1024
_SETTLE_S = 1.0
"""How long after a job-take the SDK surely runs the job (it queues it, then starts a task at
its next 0.1 s tick): a stop is not sent earlier."""
_NO_CONTENT = Response(status_code=204)
_runtime_ids = itertools.count(1)


class WorkerCommandError(ValueError):
    """`--worker` is not a command that can be started; the message says why."""


def parse_worker_command(command: str) -> list[str]:
    """Split COMMAND like a shell line and check that its program exists."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise WorkerCommandError(
            f"--worker {command!r} is not a valid command line: {exc}"
        ) from None
    if not argv:
        raise WorkerCommandError('--worker needs a command, e.g. --worker "python handler.py"')
    if shutil.which(argv[0]) is None:
        raise WorkerCommandError(
            f"--worker {command!r}: program {argv[0]!r} not found (not on PATH, or not executable)"
        )
    return argv


# Process groups of live workers, killed at interpreter exit whatever else happened.
_LIVE_GROUPS: set[int] = set()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


@atexit.register
def _kill_live_groups() -> None:
    for pgid in list(_LIVE_GROUPS):
        _signal_group(pgid, signal.SIGKILL)
    _LIVE_GROUPS.clear()


@dataclass(eq=False)
class _TakePoll:
    """An open job-take: the jobs handed to it, and the future that wakes its request."""

    future: asyncio.Future[None]
    jobs: list[Job] = field(default_factory=list)


@dataclass(eq=False)
class WorkerProcess:
    """One worker's process and its side of the protocol."""

    worker: Worker
    process: asyncio.subprocess.Process | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    """Jobs the process runs (a cancelled or timed-out one until it has really stopped)."""
    take_poll: _TakePoll | None = None
    stop_waiter: asyncio.Future[None] | None = None
    stops_pending: list[str] = field(default_factory=list)
    """Ids of jobs to stop, not yet sent on job-stop."""
    stops_sent: list[str] = field(default_factory=list)
    """Ids sent on job-stop; the worker's next job-stop poll says they stopped."""
    stop_deadlines: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    """Per job being stopped: the timer that sends the stop, then the one that kills."""
    taken_at: dict[str, float] = field(default_factory=dict)
    """Loop time at which each running job was handed to the worker."""
    polled: bool = False
    """True once the process made its first job-take (it is up)."""
    refresh: bool = False
    """stopPod was asked: stop the process once its jobs have left it."""
    stopping: bool = False
    exit_code: int | None = None
    pings: int = 0
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class ProcessRuntime:
    """The `WorkerRuntime` of real worker processes: one process of `command` per worker."""

    def __init__(
        self,
        command: str,
        *,
        stop_grace_s: float = 2.0,
        poll_hold_s: float = 20.0,
    ) -> None:
        self.command = command
        self.argv = parse_worker_command(command)
        self.stop_grace_s = stop_grace_s
        """How long a cancelled or timed-out job may take to stop (and a stopped process to
        exit) before its process group is killed."""
        self.poll_hold_s = poll_hold_s
        """How long a job-take or job-stop poll is held open with nothing to answer (the SDK
        gives up on one after 90 s)."""
        self.runtime_id = f"{os.getpid()}-{next(_runtime_ids)}"
        self.processes: dict[str, WorkerProcess] = {}
        """Every worker process not yet exited, by worker id."""
        self.after_change: Callable[[], None] = lambda: None
        """Called after the runtime changed the model outside a /v2 request (the app re-arms
        its timer for the model's next event)."""
        self.model: Model | None = None
        self._token = secrets.token_urlsafe(24)
        self._worker_key = secrets.token_urlsafe(24)
        self._home: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._base_url: str | None = None
        self._unspawned: list[WorkerProcess] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    def __repr__(self) -> str:
        return f"ProcessRuntime({self.command!r}, workers={len(self.processes)})"

    # --- lifecycle -----------------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop, base_url: str) -> None:
        """The server listens at `base_url` (`http://127.0.0.1:PORT`) on `loop`: workers can
        start (those asked for before are started now)."""
        self._loop = loop
        self._base_url = base_url.rstrip("/")
        unspawned, self._unspawned = self._unspawned, []
        for handle in unspawned:
            self._spawn(handle)

    def begin_shutdown(self) -> None:
        """Stop every worker (SIGTERM, polls answered so the SDK can exit) and start no more."""
        self._closing = True
        unspawned, self._unspawned = self._unspawned, []
        for handle in unspawned:
            self.processes.pop(handle.worker.id, None)
            handle.exited.set()
        for handle in list(self.processes.values()):
            self._stop(handle)

    async def aclose(self) -> None:
        """Stop every worker and wait (bounded) until each process group is gone."""
        self.begin_shutdown()
        waits = [handle.exited.wait() for handle in self.processes.values()]
        if waits:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), self.stop_grace_s + 2)
        for handle in list(self.processes.values()):
            if handle.process is not None:
                _signal_group(handle.process.pid, signal.SIGKILL)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    # --- WorkerRuntime ---------------------------------------------------------------------------

    def attach(self, model: Model) -> None:
        self.model = model

    def start_worker(self, worker: Worker, now: float, *, warm: bool) -> None:
        # `warm` does not apply: a real process always starts cold.
        worker.starting_cold = True
        if self._closing:  # the server is stopping: nothing new starts
            worker.state = WorkerState.UNHEALTHY
            return
        handle = WorkerProcess(worker)
        self.processes[worker.id] = handle
        if self._loop is None:
            self._unspawned.append(handle)
        else:
            self._spawn(handle)

    def start_job(self, worker: Worker, job: Job, now: float) -> None:
        handle = self.processes[worker.id]
        poll = handle.take_poll
        assert poll is not None, "a worker process takes jobs only through an open job-take"
        handle.jobs[job.id] = job
        assert self._loop is not None
        handle.taken_at[job.id] = self._loop.time()
        self._model.schedule_timeout(job, now)
        poll.jobs.append(job)
        worker.slots -= 1
        if not poll.future.done():
            poll.future.set_result(None)

    def job_ended(self, worker: Worker, job: Job, now: float) -> None:
        handle = self.processes.get(worker.id)
        if handle is None or job.id not in handle.jobs or handle.stopping:
            return  # the worker reported this end itself
        # Cancelled, timed out or expired while the handler runs: tell the worker (job-stop),
        # and stop the whole process if the job is still running after the grace period.
        # A job taken a moment ago may not be in the SDK's task table yet (it would ignore the
        # stop, then poll again as if it had stopped the job): the stop waits until it is.
        assert self._loop is not None
        deliver_at = handle.taken_at.get(job.id, 0.0) + _SETTLE_S
        handle.stop_deadlines[job.id] = self._loop.call_at(
            max(deliver_at, self._loop.time()), self._deliver_stop, handle, job.id
        )

    def _deliver_stop(self, handle: WorkerProcess, job_id: str) -> None:
        if job_id not in handle.jobs or handle.stopping:
            return
        handle.stops_pending.append(job_id)
        if handle.stop_waiter is not None and not handle.stop_waiter.done():
            handle.stop_waiter.set_result(None)
        assert self._loop is not None
        handle.stop_deadlines[job_id] = self._loop.call_later(
            self.stop_grace_s, self._stop_stuck, handle, job_id
        )

    def retire_worker(self, worker: Worker) -> None:
        handle = self.processes.get(worker.id)
        if handle is not None:
            self._say(worker, "idle timeout: stopping the worker process")
            self._stop(handle)

    # --- processes -------------------------------------------------------------------------------

    @property
    def _model(self) -> Model:
        assert self.model is not None, "the runtime is attached to a model"
        return self.model

    def _spawn(self, handle: WorkerProcess) -> None:
        self._background(self._run(handle))

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _environment(self, worker: Worker) -> dict[str, str]:
        if self._home is None:
            self._home = tempfile.mkdtemp(prefix="runpod-testkit-worker-home-")
        base = f"{self._base_url}{ROUTE_PREFIX}"
        query = f"?token={self._token}"
        env = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED}
        # A private HOME keeps ~/.runpod/config.toml (whose key the SDK would send) out; the
        # user's site-packages under the real HOME stay importable.
        env.setdefault("PYTHONUSERBASE", site.getuserbase())
        env.setdefault("RUNPOD_LOG_LEVEL", "INFO")
        env.update(
            {
                "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID{query}",
                "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID{query}",
                "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID{query}",
                "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID{query}",
                "RUNPOD_AI_API_KEY": self._worker_key,
                "RUNPOD_POD_ID": worker.id,
                "RUNPOD_POD_HOSTNAME": worker.id,
                "RUNPOD_ENDPOINT_ID": worker.endpoint.id,
                # The start-up fitness checks (memory, disk, a public DNS server, a GPU) would
                # kill a worker on a laptop or a CI runner.
                "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
                "RUNPOD_SKIP_GPU_CHECK": "true",
                "HOME": self._home,
                "PYTHONUNBUFFERED": "1",
                RUNTIME_ENV: self.runtime_id,
            }
        )
        return env

    async def _run(self, handle: WorkerProcess) -> None:
        """Start the process, relay its output, and handle its exit."""
        worker = handle.worker
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._environment(worker),
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            self._say(worker, f"could not start {self.command!r}: {exc}")
            worker.state = WorkerState.UNHEALTHY
            self.processes.pop(worker.id, None)
            handle.exited.set()
            return
        handle.process = process
        _LIVE_GROUPS.add(process.pid)
        if handle.stopping:  # stopped while it was being started
            _signal_group(process.pid, signal.SIGTERM)
        assert process.stdout is not None
        assert process.stderr is not None
        relays = [
            asyncio.ensure_future(self._relay(process.stdout, worker, to_stderr=False)),
            asyncio.ensure_future(self._relay(process.stderr, worker, to_stderr=True)),
        ]
        try:
            handle.exit_code = await process.wait()
            await asyncio.wait(relays, timeout=1)
        finally:
            for relay in relays:
                relay.cancel()
            # The SDK's ping runs in a child process: nothing of the group may outlive it.
            _signal_group(process.pid, signal.SIGKILL)
            _LIVE_GROUPS.discard(process.pid)
            self._exited(handle)

    async def _relay(
        self, stream: asyncio.StreamReader, worker: Worker, *, to_stderr: bool
    ) -> None:
        """Copy the process's output to ours, each line prefixed by the worker id."""
        prefix = f"[worker {worker.id}] "
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the limit: pass on what there is
                line = await stream.read(_LINE_LIMIT)
            if not line:
                return
            target = sys.stderr if to_stderr else sys.stdout
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            with contextlib.suppress(OSError, ValueError):
                target.write(f"{prefix}{text}\n")
                target.flush()

    def _exited(self, handle: WorkerProcess) -> None:
        worker = handle.worker
        handle.exited.set()
        self.processes.pop(worker.id, None)
        self._release_polls(handle)
        for deadline in handle.stop_deadlines.values():
            deadline.cancel()
        handle.stop_deadlines.clear()
        if handle.stopping:
            return  # stopped by the emulator: already off the model's worker list
        handle.stopping = True
        code = handle.exit_code
        if not handle.polled:
            # Died while starting (an import error, a bad handler file): listed as unhealthy
            # and not replaced, so a broken command cannot restart in a loop.
            self._say(worker, f"exited with code {code} before taking a job: marked unhealthy")
            worker.state = WorkerState.UNHEALTHY
            worker.slots = 0
            return
        running = [job for job in handle.jobs.values() if job.status == JobStatus.IN_PROGRESS]
        detail = f" while running {len(running)} job(s)" if running else ""
        self._say(worker, f"exited with code {code}{detail}")
        handle.jobs.clear()
        self._model.remove_worker(
            worker, running, reason=f"worker {worker.id} exited with code {code} mid-job"
        )
        self.after_change()

    def _stop(self, handle: WorkerProcess, *, kill: bool = False) -> None:
        """Stop a worker's process: SIGTERM (the SDK then ends once its polls return, which
        they do now), SIGKILL to the group if it has not exited within the grace period."""
        if handle.stopping:
            return
        handle.stopping = True
        self._release_polls(handle)
        process = handle.process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        if not kill:
            self._background(self._kill_after_grace(handle, process.pid))

    async def _kill_after_grace(self, handle: WorkerProcess, pgid: int) -> None:
        try:
            await asyncio.wait_for(handle.exited.wait(), self.stop_grace_s)
        except asyncio.TimeoutError:
            _signal_group(pgid, signal.SIGKILL)

    def _stop_stuck(self, handle: WorkerProcess, job_id: str) -> None:
        """A cancelled or timed-out job did not stop: its handler cannot be interrupted (a sync
        handler blocks the SDK's event loop). Stop the process; a new one takes over."""
        handle.stop_deadlines.pop(job_id, None)
        if job_id not in handle.jobs or handle.stopping:
            return
        worker = handle.worker
        self._say(
            worker,
            f"job {job_id} did not stop within {self.stop_grace_s:g} s (a sync handler cannot "
            "be interrupted): killing the worker process",
        )
        others = [job for job in handle.jobs.values() if job.status == JobStatus.IN_PROGRESS]
        handle.jobs.clear()
        self._stop(handle, kill=True)
        self._model.remove_worker(
            worker, others, reason=f"worker {worker.id} was killed to stop job {job_id}"
        )
        self.after_change()

    def _release_polls(self, handle: WorkerProcess) -> None:
        handle.worker.slots = 0
        for future in (
            handle.take_poll.future if handle.take_poll is not None else None,
            handle.stop_waiter,
        ):
            if future is not None and not future.done():
                future.set_result(None)

    def _job_left(self, handle: WorkerProcess, job_id: str) -> None:
        """A job is no longer on the worker (reported, or stopped as asked)."""
        handle.jobs.pop(job_id, None)
        handle.taken_at.pop(job_id, None)
        deadline = handle.stop_deadlines.pop(job_id, None)
        if deadline is not None:
            deadline.cancel()
        if job_id in handle.stops_pending:
            handle.stops_pending.remove(job_id)
        if handle.jobs or handle.stopping:
            return
        worker = handle.worker
        if handle.refresh:
            self._say(worker, "stopPod (refresh_worker): stopping the worker process")
            self._stop(handle)
            self._model.remove_worker(worker)
        elif worker.state is WorkerState.RUNNING:
            self._model.worker_idle(worker, self._model.now())

    def _say(self, worker: Worker, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"[emulator] worker {worker.id}: {message}\n")
            sys.stderr.flush()

    # --- the worker protocol's routes ------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route(ROUTE_PREFIX + "/job-take/{worker_id}", self._job_take, methods=["GET"]),
            Route(ROUTE_PREFIX + "/job-take-batch/{worker_id}", self._job_take, methods=["GET"]),
            Route(ROUTE_PREFIX + "/job-stop/{worker_id}", self._job_stop, methods=["GET"]),
            Route(
                ROUTE_PREFIX + "/job-done/{worker_id}/{job_id}", self._job_done, methods=["POST"]
            ),
            Route(
                ROUTE_PREFIX + "/job-stream/{worker_id}/{job_id}",
                self._job_stream,
                methods=["POST"],
            ),
            Route(ROUTE_PREFIX + "/ping/{worker_id}", self._ping, methods=["GET"]),
        ]

    def _caller(self, request: Request) -> WorkerProcess | Response:
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return JSONResponse({"error": "not a worker of this emulator"}, 401)
        handle = self.processes.get(request.path_params["worker_id"])
        if handle is None:
            return JSONResponse({"error": "no such worker"}, 404)
        return handle

    async def _job_take(self, request: Request) -> Response:
        handle = self._caller(request)
        if isinstance(handle, Response):
            return handle
        try:
            return await self._take(handle, request)
        finally:
            self.after_change()

    async def _take(self, handle: WorkerProcess, request: Request) -> Response:
        model, worker = self._model, handle.worker
        if handle.stopping or handle.refresh or handle.take_poll is not None:
            return _NO_CONTENT
        if not handle.polled:
            handle.polled = True
            # The configured cold start comes on top of the process's real start-up.
            cold_start_s = model.config.cold_start_ms / 1000
            if cold_start_s > 0:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                handle.take_poll = _TakePoll(waiter)
                await asyncio.wait((waiter,), timeout=cold_start_s)
                handle.take_poll = None
                if handle.stopping:
                    return _NO_CONTENT
            model.worker_idle(worker, model.now())
        batch = request.url.path.startswith(ROUTE_PREFIX + "/job-take-batch/")
        slots = _positive_int(request.query_params.get("batch_size")) if batch else 1
        poll = handle.take_poll = _TakePoll(asyncio.get_running_loop().create_future())
        try:
            model.take_jobs(worker, slots)
            if not poll.jobs:
                await asyncio.wait((poll.future,), timeout=self.poll_hold_s)
        finally:
            handle.take_poll = None
            worker.slots = 0
        if not poll.jobs:
            return _NO_CONTENT
        taken = [{"id": job.id, "input": job.input} for job in poll.jobs]
        return JSONResponse(taken if batch else taken[0])

    async def _job_stop(self, request: Request) -> Response:
        handle = self._caller(request)
        if isinstance(handle, Response):
            return handle
        try:
            # This poll follows the one that carried the ids: the SDK has cancelled their tasks.
            sent, handle.stops_sent = handle.stops_sent, []
            for job_id in sent:
                self._job_left(handle, job_id)
            if not handle.stops_pending and not handle.stopping:
                waiter = handle.stop_waiter = asyncio.get_running_loop().create_future()
                try:
                    await asyncio.wait((waiter,), timeout=self.poll_hold_s)
                finally:
                    handle.stop_waiter = None
            if handle.stopping or not handle.stops_pending:
                return _NO_CONTENT
            ids, handle.stops_pending = handle.stops_pending, []
            handle.stops_sent.extend(ids)
            return JSONResponse({"jobsToStop": ids})
        finally:
            self.after_change()

    async def _job_done(self, request: Request) -> Response:
        handle = self._caller(request)
        if isinstance(handle, Response):
            return handle
        body = _result_body(await request.body())
        if body is None:
            return JSONResponse({"error": "job-done takes a JSON object"}, 400)
        try:
            job = handle.jobs.get(request.path_params["job_id"])
            if job is None:
                return JSONResponse({})  # a late report of a job the worker no longer holds
            if body.get("status") == JobStatus.IN_PROGRESS:
                self._model.set_progress(job, body.get("output"))
                return JSONResponse({})
            if body.get("stopPod"):
                handle.refresh = True
                self._release_polls(handle)
            if job.status == JobStatus.IN_PROGRESS:
                output, error = _outcome(body)
                self._model.finish_job(job, output=output, error=error)
            self._job_left(handle, job.id)
            return JSONResponse({})
        finally:
            self.after_change()

    async def _job_stream(self, request: Request) -> Response:
        handle = self._caller(request)
        if isinstance(handle, Response):
            return handle
        body = _result_body(await request.body())
        if body is None:
            return JSONResponse({"error": "job-stream takes a JSON object"}, 400)
        job = handle.jobs.get(request.path_params["job_id"])
        if job is not None and "output" in body:
            self._model.add_chunk(job, body["output"])
        return JSONResponse({})

    async def _ping(self, request: Request) -> Response:
        handle = self._caller(request)
        if isinstance(handle, Response):
            return handle
        handle.pings += 1
        return JSONResponse({})


def _positive_int(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1


def _result_body(raw: bytes) -> dict[str, Any] | None:
    """The SDK posts `json.dumps(result)` as a form-encoded body (it may hold NaN)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _outcome(body: dict[str, Any]) -> tuple[Any, str | None]:
    """(output, error) of a job-done body. A truthy string `error` fails the job; a truthy
    error of another type completes it without output, as production does (runpod-python #299)."""
    error = body.get("error")
    if error:
        return None, error if isinstance(error, str) else None
    return body.get("output"), None
