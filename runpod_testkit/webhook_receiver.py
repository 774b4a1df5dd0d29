"""A webhook receiver: an HTTP server that records every POST it gets.

The contract suite gives its URL to jobs and reads what arrived; the load suite's `WebhookUser`
takes a job's end from it; `runpod-testkit webhook-sink` prints what arrives. It can refuse the
first K deliveries to a path (answering 503), to exercise a sender's retries.

    with WebhookReceiver() as receiver:                   # 127.0.0.1, a free port
        url = receiver.url_for("job-1")                   # http://127.0.0.1:PORT/job-1
        ...submit with {"webhook": url}...
        receiver.wait_for(lambda: receiver.deliveries("/job-1"), timeout_s=30)

Behind a tunnel (live runs), `public_url` is what the endpoint is given and the server listens
on `host`/`port`, where the tunnel forwards. Runs in daemon threads (greenlets under Locust).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Delivery", "WebhookReceiver", "parse_listen_address"]

_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as it arrived."""

    path: str
    body: bytes
    arrived_at: float
    """Epoch seconds (the receiver's clock, time.time() by default) when its headers had been
    read."""
    arrived_mono: float
    """time.monotonic() at the same moment, for intervals."""
    answered: int
    """The status code the receiver answered with."""
    headers: dict[str, str]

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not)."""
        return json.loads(self.body)

    @property
    def accepted(self) -> bool:
        return 200 <= self.answered < 300


def parse_listen_address(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPV6]:PORT` (an option's value) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of deliveries beyond it has its SYNs
    # dropped and retransmitted a second later.
    request_queue_size = 1024
    receiver: WebhookReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that gave up (its timeout) closes the connection before the answer: normal.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        arrived_at, arrived_mono = self.server.receiver.clock(), time.monotonic()
        length = self.headers.get("content-length", "")
        if not length.isdigit() or int(length) > _MAX_BODY_BYTES:
            self._answer(411 if not length.isdigit() else 413)
            return
        body = self.rfile.read(int(length))
        path = urlsplit(self.path).path
        headers = {key.lower(): value for key, value in self.headers.items()}
        status = self.server.receiver.receive(path, body, headers, arrived_at, arrived_mono)
        self._answer(status)

    def do_GET(self) -> None:
        self._answer(405)

    def _answer(self, status: int) -> None:
        payload = json.dumps({"received": 200 <= status < 300}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `on_delivery` is the way to see deliveries."""


class WebhookReceiver:
    """Records POSTs on `host`:`port` (0: a free port). `refuse_first` deliveries to each path
    are answered 503 before the rest get 200; `refuse(path, k)` sets it for one path.
    `on_delivery` is called with each delivery (from the server's thread)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        public_url: str | None = None,
        refuse_first: int = 0,
        refuse_status: int = 503,
        on_delivery: Callable[[Delivery], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        """Stamps `Delivery.arrived_at` (mock mode passes its virtual clock)."""
        self.host = host
        self.port = port
        self.public_url = public_url.rstrip("/") if public_url else None
        self.refuse_first = refuse_first
        self.refuse_status = refuse_status
        self.on_delivery = on_delivery
        self._refusals: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        server = _Server((self.host, self.port), _Handler)
        server.receiver = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------

    @property
    def listen_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """What to give the endpoint: `public_url` if set, else where it listens."""
        return self.public_url or self.listen_url

    def url_for(self, name: str) -> str:
        """A URL of its own for one job or check (`name` is one path segment), so that
        deliveries can be told apart."""
        if not name or "/" in name:
            raise ValueError(f"a webhook name is one path segment, got {name!r}")
        return f"{self.url}/{name}"

    # --- deliveries -----------------------------------------------------------------------

    def refuse(self, path: str, times: int) -> None:
        """Answer the first `times` deliveries to `path` (a url_for name or URL) with a refusal."""
        with self._changed:
            self._refusals[_name(path)] = times

    def deliveries(self, path: str | None = None) -> list[Delivery]:
        """What arrived (to `path`, or anywhere), oldest first."""
        with self._changed:
            if path is None:
                return list(self._deliveries)
            wanted = _name(path)
            return [delivery for delivery in self._deliveries if _name(delivery.path) == wanted]

    def wait_for(self, predicate: Callable[[], object], timeout_s: float) -> bool:
        """Until `predicate()` is truthy (re-checked on each delivery) or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))
        return True

    def receive(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        arrived_at: float | None = None,
        arrived_mono: float | None = None,
    ) -> int:
        """Record one delivery and return the status to answer with. The HTTP server calls it
        for each POST; mock mode calls it directly (no server started)."""
        if arrived_at is None:
            arrived_at = self.clock()
        if arrived_mono is None:
            arrived_mono = time.monotonic()
        headers = headers or {}
        name = _name(path)
        with self._changed:
            seen = self._seen[name] = self._seen.get(name, 0) + 1
            refusals = self._refusals.get(name, self.refuse_first)
            status = self.refuse_status if seen <= refusals else 200
            delivery = Delivery(path, body, arrived_at, arrived_mono, status, headers)
            self._deliveries.append(delivery)
            self._changed.notify_all()
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        return status


def _name(path_or_url: str) -> str:
    """The last path segment: what `url_for` named. A tunnel may forward PUBLIC_URL's path
    prefix or not, so deliveries are told apart by the name alone."""
    path = urlsplit(path_or_url).path if "://" in path_or_url else path_or_url
    return path.rstrip("/").rsplit("/", 1)[-1]
