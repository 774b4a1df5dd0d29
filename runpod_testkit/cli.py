"""The `runpod-testkit` command: `emulator` serves a local endpoint; `check` validates one."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

__all__ = ["main"]

T = TypeVar("T", int, float)


class OneLineParser(argparse.ArgumentParser):
    """Bad input ends with one line naming the problem (argparse's usage dump is noise there)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def bounded(kind: Callable[[str], T], low: T, high: T | None = None) -> Callable[[str], T]:
    """An argparse type: a number of `kind` from `low` to `high`."""

    def parse(raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {span}, got {raw}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _add_emulator(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    from runpod_testkit.emulator.model import EmulatorConfig

    defaults = EmulatorConfig()
    parser = commands.add_parser(
        "emulator",
        help="serve a production-faithful Runpod queue endpoint on loopback",
        description=(
            "Serve /v2/{endpoint_id}/{run,runsync,status,status-sync,stream,cancel,retry,"
            "purge-queue,health} for any endpoint id (each id its own queue). Jobs run the "
            "probe protocol in simulation: queue, workers, cold starts, scaling, retention."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--port", type=bounded(int, 0, 65535), default=8000, help="0 picks a free port"
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="the only key accepted (raw or 'Bearer KEY'); without it any non-empty key is "
        "accepted. A request with no key always gets 401",
    )
    parser.add_argument(
        "--workers-min",
        type=bounded(int, 0),
        default=defaults.workers_min,
        help="workers kept warm at all times (active workers)",
    )
    parser.add_argument(
        "--workers-max",
        type=bounded(int, 1),
        default=defaults.workers_max,
        help="the most workers the scaler starts",
    )
    parser.add_argument(
        "--cold-start-ms",
        type=bounded(int, 0),
        default=defaults.cold_start_ms,
        help="time from a worker's start to its first job",
    )
    parser.add_argument(
        "--idle-timeout-s",
        type=bounded(float, 0.0),
        default=defaults.idle_timeout_s,
        help="an idle worker above --workers-min stops after this long",
    )
    parser.add_argument(
        "--queue-delay-s",
        type=bounded(float, 0.0),
        default=defaults.queue_delay_s,
        help="queue-delay scaler: a job waiting this long starts another worker",
    )
    parser.add_argument(
        "--retention-async-s",
        type=bounded(float, 0.0),
        default=defaults.retention_async_s,
        help="how long /status keeps a finished /run job",
    )
    parser.add_argument(
        "--retention-sync-s",
        type=bounded(float, 0.0),
        default=defaults.retention_sync_s,
        help="how long /status keeps a finished /runsync job",
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="answer 429 beyond production's documented per-operation rate limits",
    )
    parser.add_argument(
        "--job-log",
        default=None,
        metavar="FILE",
        help="append one JSON line per job that reaches a terminal state",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for job and worker ids")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level",
    )
    parser.set_defaults(run=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    import uvicorn

    from runpod_testkit.emulator.app import EmulatorApp
    from runpod_testkit.emulator.model import EmulatorConfig

    try:
        config = EmulatorConfig(
            workers_min=args.workers_min,
            workers_max=args.workers_max,
            cold_start_ms=args.cold_start_ms,
            idle_timeout_s=args.idle_timeout_s,
            queue_delay_s=args.queue_delay_s,
            retention_async_s=args.retention_async_s,
            retention_sync_s=args.retention_sync_s,
            seed=args.seed,
        )
        app = EmulatorApp(
            config, api_key=args.api_key, rate_limits=args.rate_limits, job_log=args.job_log
        )
    except (ValueError, OSError) as exc:
        print(f"runpod-testkit emulator: error: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(
        uvicorn.Config(
            app.starlette,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,
        )
    )
    _announce_when_started(server, args.host)
    server.run()
    return 0 if server.started else 1


def _announce_when_started(server: object, host: str) -> None:
    """Print the bound URL once listening (with --port 0 the port is only known then), so that
    scripts and tests can read it from the first line of stdout."""
    import uvicorn

    assert isinstance(server, uvicorn.Server)
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets=sockets)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"emulator listening on http://{shown}:{port}/v2", flush=True)

    server.startup = startup  # type: ignore[method-assign]


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="runpod-testkit",
        description="Contract tests, an emulator and load runs for Runpod queue endpoints.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_emulator(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
