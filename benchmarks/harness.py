"""Processes for the throughput benchmark: a pinned server (benchmarks/serve.py) and wrk runs.

Every process started here is stopped by its owner on exit, whatever happened; each wait is
bounded.
"""

from __future__ import annotations

import collections
import http.client
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from runpod_testkit.emulator.server import stop_process

__all__ = [
    "BenchmarkError",
    "HttpReply",
    "ServerProcess",
    "WrkResult",
    "run_wrk",
    "write_lua_script",
]

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(RuntimeError):
    """The benchmark could not measure (a tool missing, a server not answering, a bad reply)."""


@dataclass
class HttpReply:
    status: int
    header_names: list[str]
    content_type: str
    body: bytes


class ServerProcess:
    """`benchmarks/serve.py KIND` pinned to one CPU; stopped on exit, whatever happened.

    The API key goes through the environment (never argv); the output is drained all along (a
    full pipe would stall the server) and its tail kept for error messages.
    """

    def __init__(
        self, kind: str, api_key: str, *args: str, cpu: int, prefix: tuple[str, ...] = ()
    ) -> None:
        self.kind = kind
        self.api_key = api_key
        self.command = [*prefix, "taskset", "-c", str(cpu), sys.executable, str(HERE / "serve.py")]
        self.command += [kind, *args]
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.output: collections.deque[str] = collections.deque(maxlen=40)
        self.tracebacks = 0
        """Tracebacks the server logged (a request it failed with a 500)."""

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "BENCH_API_KEY": self.api_key, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            # Its own session: a Ctrl-C reaches only the benchmark, which then stops it in order.
            start_new_session=True,
        )
        try:
            self.port = self._read_port(timeout_s=30.0)
            threading.Thread(target=self._drain, name=f"drain-{self.kind}", daemon=True).start()
            self._wait_until_serving(timeout_s=30.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _read_port(self, timeout_s: float) -> int:
        assert self.process is not None
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise BenchmarkError(f"{self.kind} server printed nothing in {timeout_s} s")
        line = self.process.stdout.readline()
        match = re.search(r"listening on (?:http://)?127\.0\.0\.1:(\d+)", line)
        if not match:
            rest = line + self.process.stdout.read() if self.process_exited() else line
            raise BenchmarkError(f"{self.kind} server did not start: {rest.strip()[-300:]}")
        return int(match.group(1))

    def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip())
            if line.startswith("Traceback"):
                self.tracebacks += 1

    def _wait_until_serving(self, timeout_s: float) -> None:
        """The port is bound before uvicorn listens on it: poll until a request gets through."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.request("GET", "/")
                return
            except OSError:
                if time.monotonic() > deadline or self.process_exited():
                    raise BenchmarkError(f"{self.kind} server is not answering") from None
                time.sleep(0.05)

    def process_exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def request(self, method: str, path: str, body: bytes | None = None) -> HttpReply:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return HttpReply(
                response.status,
                sorted(name.lower() for name, _ in response.getheaders()),
                response.getheader("content-type", ""),
                response.read(),
            )
        finally:
            connection.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _proc(self, name: str) -> str:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/{name}").read_text(encoding="ascii")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        fields = self._proc("stat").rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        for line in self._proc("status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchmarkError("no VmRSS for the server process")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    requests_per_s: float
    server_cpu_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def server_utilisation(self) -> float:
        """Share of its core the server used: near 1.0 means it was the bottleneck."""
        return self.server_cpu_s / self.seconds

    @property
    def requests_per_cpu_s(self) -> float:
        """Requests per second of server CPU: the throughput a saturated core delivers, and
        unlike wall-clock req/s unaffected when other work slows the load generator."""
        return self.requests / self.server_cpu_s if self.server_cpu_s else 0.0


def write_lua_script(path: Path, method: str, api_key: str, body: bytes | None = None) -> Path:
    """wrk builds its request once from this (no per-request Lua)."""
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "Bearer {api_key}"']
    if body is not None:
        lines += [
            'wrk.headers["Content-Type"] = "application/json"',
            f"wrk.body = [[{body.decode()}]]",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_wrk(
    server: ServerProcess,
    path: str,
    script: Path,
    seconds: float,
    *,
    cpu: int,
    connections: int,
    prefix: tuple[str, ...] = (),
) -> WrkResult:
    command = [*prefix, "taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{seconds:g}s", "--latency", "-s", str(script), server.url(path)]
    cpu_before = server.cpu_seconds()
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    server_cpu_s = server.cpu_seconds() - cpu_before
    out = completed.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if completed.returncode != 0 or not rps or not total:
        raise BenchmarkError(f"wrk failed: {(completed.stderr or out).strip()[-300:]}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    measured_s = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=measured_s,
        requests_per_s=float(rps.group(1)),
        server_cpu_s=server_cpu_s,
        latency_p50_ms=_latency_ms(out, "50%"),
        latency_p99_ms=_latency_ms(out, "99%"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def _latency_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
