"""Start the emulator on a free loopback port: in a thread of this process, or as a subprocess.

`running_emulator()` serves from a background thread (fast; the tests and `pytest contract
--emulator` use it). `EmulatorProcess` runs `python -m runpod_testkit emulator --port 0` and reads
the URL it prints (the Locust embedded default uses it, since Locust's gevent patching and
uvicorn's asyncio loop do not share a process well). Every wait is bounded.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from runpod_testkit.emulator.app import EmulatorApp
from runpod_testkit.emulator.model import EmulatorConfig

__all__ = [
    "EmulatorProcess",
    "EmulatorServer",
    "RunningEmulator",
    "running_emulator",
    "stop_process",
    "tune_gc_for_serving",
]

_LISTENING = re.compile(r"emulator listening on (?P<url>http://\S+)")
# Held requests are answered at once on shutdown; this only bounds a request stuck elsewhere.
_GRACEFUL_SHUTDOWN_S = 5


def tune_gc_for_serving() -> None:
    """For a process that only serves the emulator (`runpod-testkit emulator`): under load it
    retains hundreds of thousands of jobs for 30 minutes, and with the default thresholds the
    collector walks all of them over and over (a large share of /run's cost and its p99).
    Jobs form no reference cycles that need the collector to be freed, so collect rarely;
    objects from start-up are moved out of its sight for good."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class EmulatorServer(uvicorn.Server):
    """uvicorn serving an `EmulatorApp`; on shutdown it first answers every held request (as
    an expired wait would), so that stopping never waits out a 90-second /runsync."""

    def __init__(
        self,
        app: EmulatorApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        on_started: Callable[[str], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            uvicorn.Config(
                app.starlette,
                host=host,
                port=port,
                log_level=log_level,
                access_log=False,
                timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
            )
        )
        self.emulator = app
        self.on_started = on_started
        """Called with the base URL (`http://HOST:PORT/v2`) once listening."""
        self.on_stopped = on_stopped
        """Called once shut down (before uvicorn re-raises a SIGTERM or SIGINT it caught)."""
        self.ignores_ctrl_c = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        """Started with SIGINT ignored (by a parent that stops it itself): keep ignoring it, as
        a shell's background job does, rather than let uvicorn's handler stop on it."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT and self.ignores_ctrl_c:
            return
        super().handle_exit(sig, frame)

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.config.host)}:{self.bound_port}/v2"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # Worker processes call back on loopback when the server listens on every interface.
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
                self.config.host, self.config.host
            )
            self.emulator.serving_at(f"http://{_url_host(host)}:{self.bound_port}")
        if self.started and self.on_started is not None:
            self.on_started(self.base_url)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.emulator.stop_holding()
        await super().shutdown(sockets)
        if self.on_stopped is not None:
            self.on_stopped()

    @property
    def bound_port(self) -> int:
        """The port actually bound (with port 0 the system picks it); valid once started."""
        port: int = self.servers[0].sockets[0].getsockname()[1]
        return port


@dataclass
class RunningEmulator:
    base_url: str
    """`http://127.0.0.1:PORT/v2`, the official SDK's `endpoint_url_base`."""
    app: EmulatorApp

    def endpoint_url(self, endpoint_id: str = "emulated") -> str:
        return f"{self.base_url}/{endpoint_id}"


@contextmanager
def running_emulator(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    startup_timeout_s: float = 10.0,
    **options: Any,
) -> Iterator[RunningEmulator]:
    """Serve an `EmulatorApp` over real HTTP on a free port of `host` for the block's duration."""
    app = EmulatorApp(config, **options)
    server = EmulatorServer(app, host=host)
    thread = threading.Thread(target=server.run, name="runpod-testkit-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the emulator did not start on {host} within {startup_timeout_s} s")
        time.sleep(0.01)
    try:
        yield RunningEmulator(server.base_url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """Ask a child process to end (SIGTERM), and kill it if it has not within `timeout_s`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)


class EmulatorProcess:
    """`runpod-testkit emulator` as a child process on a free port; stopped on exit."""

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 20.0,
        job_log: str | Path | None = None,
        worker: str | None = None,
        worker_log: str | Path | None = None,
        survives_ctrl_c: bool = False,
    ) -> None:
        self.command = [sys.executable, "-m", "runpod_testkit", "emulator", "--host", host]
        self.command += ["--port", "0", *args]
        if job_log is not None:
            self.command += ["--job-log", str(job_log)]
        if worker_log is not None:
            self.command += ["--worker-log", str(worker_log)]
        if worker is not None:  # real worker processes of this command line
            self.command += ["--worker", worker]
        self.startup_timeout_s = startup_timeout_s
        self.survives_ctrl_c = survives_ctrl_c and os.name == "posix"
        """Started with SIGINT ignored: a Ctrl-C in the terminal reaches the whole foreground
        process group, and the parent still needs the emulator for what it does on the way out
        (a load run cancels its jobs in flight); the parent stops it itself, by SIGTERM."""
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.output_tail: deque[str] = deque(maxlen=20)
        """The last lines the emulator printed (after startup), e.g. its faults summary."""
        self._reader: threading.Thread | None = None

    def start(self) -> str:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            # Between fork and exec it only calls signal.signal, which takes no lock another
            # thread could hold (the hazard the lint names); the SIG_IGN survives exec.
            preexec_fn=_ignore_sigint if self.survives_ctrl_c else None,  # noqa: PLW1509
        )
        stdout = self.process.stdout
        assert stdout is not None
        lines: list[str] = []
        found: list[str] = []

        def read_until_listening() -> None:
            for line in stdout:
                lines.append(line.rstrip())
                match = _LISTENING.search(line)
                if match:
                    found.append(match.group("url"))
                    return

        self._reader = threading.Thread(target=read_until_listening, daemon=True)
        self._reader.start()
        try:
            self._reader.join(self.startup_timeout_s)
        except BaseException:  # a Ctrl-C while it starts: nobody else knows of it yet
            self.stop()
            raise
        if not found:
            self.stop()
            detail = "; ".join(lines[-5:]) or "no output"
            raise RuntimeError(f"the emulator process did not start: {detail}")
        # Keep draining its output so that a full pipe never blocks the emulator.
        tail = self.output_tail
        self._reader = threading.Thread(
            target=lambda: tail.extend(line.rstrip() for line in stdout), daemon=True
        )
        self._reader.start()
        self.base_url = found[0]
        return self.base_url

    @property
    def faults_summary(self) -> str | None:
        """The `faults injected: ...` line the emulator prints as it stops (with --faults)."""
        return next((line for line in self.output_tail if line.startswith("faults injected")), None)

    def stop(self, timeout_s: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        stop_process(process, timeout_s)
        # The child is gone, so its output ends: let the reader see the end, then close the pipe.
        if self._reader is not None:
            self._reader.join(timeout_s)
            self._reader = None
        if process.stdout is not None and not process.stdout.closed:
            process.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
