"""One benchmark server process: `python benchmarks/serve.py emulator|bare|store [...]`.

Every app is served by uvicorn with httptools and uvloop, one process, no access log, on a
loopback port; the first line of stdout names it (`... listening on [http://]127.0.0.1:PORT`).
The emulator runs through `runpod-testkit emulator` itself (the CLI's `main`, in this process),
so it is measured exactly as users run it, process settings included. The API key comes from the
BENCH_API_KEY environment variable, so it never shows in a process listing.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import uvicorn
from bare_app import create_bare_app, create_store_app
from starlette.applications import Starlette

from runpod_testkit import cli

__all__ = ["build_bare_app", "main", "serve", "serve_emulator"]

HOST = "127.0.0.1"


def serve_emulator() -> int:
    """`runpod-testkit emulator` with its defaults (scaling, retention), an API key required."""
    key = os.environ["BENCH_API_KEY"]
    return cli.main(["emulator", "--host", HOST, "--port", "0", "--api-key", key])


def build_bare_app(kind: str, status_body: Path | None, run_body: Path | None) -> Starlette:
    if status_body is None or run_body is None:
        raise SystemExit(f"serve.py {kind}: --status-body and --run-body are required")
    build = create_store_app if kind == "store" else create_bare_app
    return build(status_body.read_bytes(), run_body.read_bytes())


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
    parser.add_argument("kind", choices=["emulator", "bare", "store"])
    parser.add_argument("--status-body", type=Path, help="floors: the bytes GET /status answers")
    parser.add_argument("--run-body", type=Path, help="floors: the bytes POST /run answers")
    args = parser.parse_args(argv)
    if args.kind == "emulator":
        return serve_emulator()
    serve(build_bare_app(args.kind, args.status_body, args.run_body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
