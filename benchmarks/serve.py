"""One benchmark server process: `python benchmarks/serve.py emulator|bare [...]`.

Both apps are served the same way (uvicorn, httptools, uvloop, one process, no access log) on a
loopback socket bound here; the first line of stdout is `listening on 127.0.0.1:PORT`. The API
key comes from the BENCH_API_KEY environment variable, so it never shows in a process listing.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import uvicorn
from bare_app import create_bare_app
from starlette.applications import Starlette

from runpod_testkit.emulator.app import EmulatorApp
from runpod_testkit.emulator.model import EmulatorConfig

__all__ = ["build_app", "main", "serve"]

HOST = "127.0.0.1"


def build_app(kind: str, status_body: Path | None, run_body: Path | None) -> Starlette:
    if kind == "emulator":
        # The emulator as `runpod-testkit emulator` runs it: default scaling and retention.
        return EmulatorApp(EmulatorConfig(), api_key=os.environ["BENCH_API_KEY"]).starlette
    if status_body is None or run_body is None:
        raise SystemExit("serve.py bare: --status-body and --run-body are required")
    return create_bare_app(status_body.read_bytes(), run_body.read_bytes())


def serve(app: Starlette) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    print(f"listening on {HOST}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["emulator", "bare"])
    parser.add_argument("--status-body", type=Path, help="bare: the bytes GET /status answers")
    parser.add_argument("--run-body", type=Path, help="bare: the bytes POST /run answers")
    args = parser.parse_args(argv)
    serve(build_app(args.kind, args.status_body, args.run_body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
