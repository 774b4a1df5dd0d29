"""Start runpod-python's local dev server around a handler module, on a free loopback port.

    with running_devserver() as base_url:   # e.g. "http://127.0.0.1:40123"
        httpx.post(f"{base_url}/runsync", json={"input": {}})

The dev server has no endpoint id in its paths, no auth, and only POST routes
(docs/README.md#sources says why it is no reference). It runs with every `RUNPOD_*` variable
unset, so it never contacts Runpod and never sees a key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import httpx

from runpod_testkit.emulator.server import stop_process

__all__ = ["DevServerError", "running_devserver"]

LOOPBACK = "127.0.0.1"
READINESS_PATH = "/openapi.json"


class DevServerError(RuntimeError):
    """The dev server did not start; the message carries the end of its output."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _local_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPOD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("UVICORN_LOG_LEVEL", "warning")
    return env


def _tail(log: IO[bytes], limit: int = 2000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


def _wait_until_ready(
    process: subprocess.Popen[bytes], base_url: str, log: IO[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DevServerError(
                    f"dev server exited with status {process.returncode}:\n{_tail(log)}"
                )
            try:
                if client.get(READINESS_PATH).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            # Polling interval while the port is not open yet; bounded by the deadline.
            time.sleep(0.05)
    raise DevServerError(f"dev server not ready after {timeout:.0f} s:\n{_tail(log)}")


@contextmanager
def running_devserver(
    module: str = "runpod_testkit.probe",
    *,
    startup_timeout: float = 30.0,
    stop_grace: float = 5.0,
) -> Iterator[str]:
    """Run `python -m MODULE --rp_serve_api` on a free loopback port; yield its base URL."""
    port = _free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    command = [
        sys.executable,
        "-m",
        module,
        "--rp_serve_api",
        "--rp_api_host",
        LOOPBACK,
        "--rp_api_port",
        str(port),
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=_local_environment()
        )
        try:
            _wait_until_ready(process, base_url, log, startup_timeout)
            yield base_url
        finally:
            stop_process(process, stop_grace)
