"""The `runpod-testkit` command: `emulator` serves a local endpoint; `check` validates one;
`compare` sets a load run against a baseline; `openapi` describes the queue API;
`simulate` plans capacity offline."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from runpod_testkit.argtypes import bounded

__all__ = ["main"]


class OneLineParser(argparse.ArgumentParser):
    """Bad input ends with one line naming the problem (argparse's usage dump is noise there)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_emulator(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    from runpod_testkit.emulator.model import SCALERS, EmulatorConfig
    from runpod_testkit.emulator.webhooks import WEBHOOK_RETRY_DELAY_S, WEBHOOK_TIMEOUT_S

    defaults = EmulatorConfig()
    parser = commands.add_parser(
        "emulator",
        help="serve a production-faithful Runpod queue endpoint on loopback",
        description=(
            "Serve /v2/{endpoint_id}/{run,runsync,status,status-sync,stream,cancel,retry,"
            "purge-queue,health} for any endpoint id (each id its own queue), or only for the "
            "ids given with --endpoint-id. Jobs run the probe protocol in simulation (or, with "
            "--worker, your own handler in real worker processes): queue, workers, cold starts, "
            "scaling, retention."
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
        "--endpoint-id",
        action="append",
        default=None,
        metavar="ID",
        help="serve only this endpoint id (repeatable); any other id answers 404 on every "
        "route, /health included. Without it every id exists, each its own queue",
    )

    def config_option(flag: str, kind: Callable[[str], object], help: str) -> None:
        """An option whose default is EmulatorConfig's field of the same name."""
        field = flag.removeprefix("--").replace("-", "_")
        parser.add_argument(flag, type=kind, default=getattr(defaults, field), help=help)

    config_option(
        "--workers-min", bounded(int, 0), "workers kept warm at all times (active workers)"
    )
    config_option("--workers-max", bounded(int, 1), "the most workers the scaler starts")
    parser.add_argument(
        "--cold-start-ms",
        type=bounded(int, 0),
        default=None,
        help=f"time from a worker's start to its first job (default {defaults.cold_start_ms}; "
        "with --worker, added to the process's real start-up, default 0)",
    )
    seconds = bounded(float, 0.0)
    config_option(
        "--idle-timeout-s", seconds, "an idle worker above --workers-min stops after this long"
    )
    config_option(
        "--queue-delay-s",
        seconds,
        "queue-delay scaler: a job waiting this long starts another worker",
    )
    parser.add_argument(
        "--scaler",
        choices=SCALERS,
        default=defaults.scaler,
        help="queue-delay: a job queued --scaler-threshold seconds starts a worker; "
        "request-count: ceil((queued + running jobs) / --scaler-threshold) workers",
    )
    parser.add_argument(
        "--scaler-threshold",
        type=bounded(float, 0.0),
        default=None,
        help="the scaler's threshold: seconds for queue-delay (default --queue-delay-s), "
        "requests per worker for request-count (default 1); as `simulate` takes it",
    )
    config_option("--retention-async-s", seconds, "how long /status keeps a finished /run job")
    config_option("--retention-sync-s", seconds, "how long /status keeps a finished /runsync job")
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
    parser.add_argument(
        "--worker-log",
        default=None,
        metavar="FILE",
        help="append one JSON line per worker that stops: its start, stop and billed seconds "
        "(rounded up); workers still up are written as the emulator stops",
    )
    parser.add_argument(
        "--worker",
        default=None,
        metavar="COMMAND",
        help="run each worker as a real process of COMMAND (split like a shell line, e.g. "
        '"python handler.py"): your handler, through the official runpod SDK',
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for job and worker ids and for --faults"
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="JSON|@FILE",
        help="inject faults: per operation the odds of a 429, 500, 502, 503 or a reset "
        "connection and an added latency; per job a worker crash, an unhealthy or throttled "
        "worker, a cold-start spike, a lost output (README: Fault injection)",
    )
    parser.add_argument(
        "--webhook-retry-delay-s",
        type=bounded(float, 0.0),
        default=WEBHOOK_RETRY_DELAY_S,
        help="a failed webhook delivery is retried up to 2 more times, this far apart",
    )
    parser.add_argument(
        "--webhook-timeout-s",
        type=bounded(float, 0.001),
        default=WEBHOOK_TIMEOUT_S,
        help="how long one webhook POST waits for the receiver's answer",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level",
    )
    parser.set_defaults(run=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    from runpod_testkit.emulator.app import EmulatorApp
    from runpod_testkit.emulator.factory import check_faults_for_runtime
    from runpod_testkit.emulator.faults import FaultConfigError, load_faults
    from runpod_testkit.emulator.model import EmulatorConfig
    from runpod_testkit.emulator.server import EmulatorServer, tune_gc_for_serving

    try:
        faults = None if args.faults is None else load_faults(args.faults)
    except FaultConfigError as exc:
        return _fail(f"--faults: {exc}")
    if args.workers_max < args.workers_min:
        return _fail(
            f"--workers-max ({args.workers_max}) must be at least --workers-min "
            f"({args.workers_min})"
        )
    if args.worker is not None:
        from runpod_testkit.emulator.workers import WorkerCommandError, parse_worker_command

        try:
            parse_worker_command(args.worker)
        except WorkerCommandError as exc:
            return _fail(str(exc))
    queue_delay_s, requests_per_worker = args.queue_delay_s, 1
    if args.scaler_threshold is not None:
        if args.scaler == "queue-delay":
            queue_delay_s = args.scaler_threshold
        elif args.scaler_threshold < 1 or not float(args.scaler_threshold).is_integer():
            return _fail(
                "--scaler-threshold of request-count is a whole number of requests per worker "
                f"(1 or more), got {args.scaler_threshold:g}"
            )
        else:
            requests_per_worker = int(args.scaler_threshold)
    cold_start_ms = args.cold_start_ms
    if cold_start_ms is None:  # a real process has a real cold start: nothing on top of it
        cold_start_ms = 0 if args.worker is not None else EmulatorConfig().cold_start_ms
    try:
        config = EmulatorConfig(
            workers_min=args.workers_min,
            workers_max=args.workers_max,
            cold_start_ms=cold_start_ms,
            idle_timeout_s=args.idle_timeout_s,
            queue_delay_s=queue_delay_s,
            scaler=args.scaler,
            requests_per_worker=requests_per_worker,
            retention_async_s=args.retention_async_s,
            retention_sync_s=args.retention_sync_s,
            seed=args.seed,
            faults=faults,
        )
        if args.worker is not None:
            check_faults_for_runtime(config)
        endpoint_ids = _endpoint_ids(args.endpoint_id)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        app = EmulatorApp(
            config,
            api_key=args.api_key,
            rate_limits=args.rate_limits,
            job_log=args.job_log,
            worker_log=args.worker_log,
            endpoint_ids=endpoint_ids,
            worker=args.worker,
            webhook_retry_delay_s=args.webhook_retry_delay_s,
            webhook_timeout_s=args.webhook_timeout_s,
        )
    except OSError as exc:
        which = "--job-log" if exc.filename == args.job_log else "--worker-log"
        path = args.job_log if which == "--job-log" else args.worker_log
        return _fail(f"{which}: cannot append to {path!r}: {_reason(exc)}")
    try:
        # Bound here, not by uvicorn, so that a bad --host or a taken --port gets a reason that
        # names the option.
        listening = _bind(args.host, args.port)
    except OSError as exc:
        if app.job_log is not None:
            app.job_log.close()
        if app.worker_log is not None:
            app.worker_log.close()
        return _fail(f"cannot listen on --host {args.host!r} --port {args.port}: {_reason(exc)}")
    server = EmulatorServer(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # Scripts and EmulatorProcess read the URL (with --port 0 known only now) from stdout.
        on_started=lambda url: print(f"emulator listening on {url}", flush=True),
        # The tally of --faults, printed before uvicorn re-raises the signal that stopped it.
        on_stopped=None
        if faults is None
        else lambda: print(app.faults_injected.describe(), flush=True),
    )
    tune_gc_for_serving()
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
    return 0 if server.started else 1


def _endpoint_ids(values: list[str] | None) -> list[str] | None:
    """The --endpoint-id values, each checked as one path segment (ConfigError otherwise)."""
    from runpod_testkit.config import validate_endpoint_id

    if values is None:
        return None
    return [validate_endpoint_id(value, name="--endpoint-id") for value in values]


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError:
        listening.close()
        raise
    return listening


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _fail(reason: str) -> int:
    print(f"runpod-testkit emulator: error: {reason}", file=sys.stderr)
    return 2


def _add_webhook_sink(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    parser = commands.add_parser(
        "webhook-sink",
        help="receive webhook POSTs and print each one (for testing your own consumers)",
        description=(
            "Listen for webhook deliveries and print one JSON line per POST: arrival time, "
            "path, the status answered and the body. --refuse-first K answers the first K "
            "POSTs to each path with 503, to watch a sender's retries. Stop it with Ctrl-C."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--port", type=bounded(int, 0, 65535), default=8080, help="0 picks a free port"
    )
    parser.add_argument(
        "--refuse-first",
        type=bounded(int, 0),
        default=0,
        metavar="K",
        help="answer the first K deliveries to each path with 503",
    )
    parser.set_defaults(run=_run_webhook_sink)


def _run_webhook_sink(args: argparse.Namespace) -> int:
    import json
    import threading

    from runpod_testkit.webhook_receiver import Delivery, WebhookReceiver

    def show(delivery: Delivery) -> None:
        try:
            body: object = delivery.json()
        except ValueError:
            body = delivery.body.decode("utf-8", "replace")
        line = {
            "arrivedAt": round(delivery.arrived_at * 1000),
            "path": delivery.path,
            "answered": delivery.answered,
            "body": body,
        }
        print(json.dumps(line, separators=(",", ":")), flush=True)

    receiver = WebhookReceiver(
        args.host, args.port, refuse_first=args.refuse_first, on_delivery=show
    )
    try:
        receiver.start()
    except OSError as exc:
        print(
            f"runpod-testkit webhook-sink: error: cannot listen on --host {args.host!r} "
            f"--port {args.port}: {_reason(exc)}",
            file=sys.stderr,
        )
        return 2
    print(f"webhook sink listening on {receiver.listen_url}", flush=True)
    try:
        threading.Event().wait()  # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


def _add_openapi(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    parser = commands.add_parser(
        "openapi",
        help="write an OpenAPI 3.1 document of the queue API",
        description=(
            "Write an OpenAPI 3.1 document (JSON) of the queue operations, assembled from the "
            "suite's operations table and JSON schemas, for client generators and API tools."
        ),
    )
    parser.add_argument(
        "--output", metavar="FILE", help="write it to FILE (default: standard output)"
    )
    parser.add_argument(
        "--server",
        action="append",
        metavar="URL",
        type=_endpoint_url,
        help="an endpoint URL ({base}/{endpoint_id}) to list as the server, instead of "
        "production's and the emulator's with an endpoint_id variable (repeatable)",
    )
    parser.set_defaults(run=_run_openapi)


def _endpoint_url(raw: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s) endpoint URL, got {raw!r}")
    return raw


def _run_openapi(args: argparse.Namespace) -> int:
    from runpod_testkit.openapi import openapi_json

    text = openapi_json(args.server)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        reason = f"cannot write --output {args.output!r}: {_reason(exc)}"
        print(f"runpod-testkit openapi: error: {reason}", file=sys.stderr)
        return 2
    return 0


def _add_check(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    from runpod_testkit.check_command import add_check_command

    add_check_command(commands)


def _add_compare(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    from runpod_testkit.compare_command import add_compare_command

    add_compare_command(commands)


def _add_simulate(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    from runpod_testkit.simulate.command import add_simulate_command

    add_simulate_command(commands)


_COMMANDS: dict[str, Callable[[argparse._SubParsersAction[OneLineParser]], None]] = {
    "emulator": _add_emulator,
    "webhook-sink": _add_webhook_sink,
    "openapi": _add_openapi,
    "check": _add_check,
    "compare": _add_compare,
    "simulate": _add_simulate,
}
"""Each command's parser, in --help's order. A command's modules (and what they import: the
emulator, httpx, the schemas) are imported only when its parser is built."""


def build_parser(only: str | None = None) -> OneLineParser:
    """The whole parser, or with `only` (a command's name) just that command's: what
    `main` builds when the command is named, so that `runpod-testkit compare` does not import
    the emulator, the client or the contract suite to read two JSON files."""
    parser = OneLineParser(
        prog="runpod-testkit",
        description="Contract tests, an emulator and load runs for Runpod queue endpoints.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name, add in _COMMANDS.items():
        if only is None or name == only:
            add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The command is the first argument (the top level has no options but --help); anything
    # else (no command, --help, a misspelt one) gets the whole parser and its message.
    named = arguments[0] if arguments and arguments[0] in _COMMANDS else None
    args = build_parser(only=named).parse_args(arguments)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
