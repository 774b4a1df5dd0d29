"""The tampering wrapper: an ASGI app around an endpoint that can answer a request itself,
change its headers or body, and rewrite the (fully buffered) response on its way out."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOT_JSON = object()
"""`Outgoing.body` of a response whose body is not JSON (then `raw` holds it)."""


@dataclass
class Incoming:
    """A request as the variant's tamper hooks see it; `headers` and `body` may be changed."""

    method: str
    operation: str | None
    job_id: str | None
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    memo: dict[str, Any]
    """State a stateful rewrite keeps across requests (one per variant endpoint)."""

    def json_body(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return NOT_JSON


@dataclass
class Outgoing:
    """A response on its way out; set `body` (JSON) or `raw` (bytes, when `body` is not JSON)."""

    status: int
    headers: dict[str, str]
    """Lower-case names; content-length is recomputed when sent."""
    body: Any = NOT_JSON
    raw: bytes = b""

    @classmethod
    def json(cls, status: int, body: Any) -> Outgoing:
        return cls(status, {"content-type": "application/json"}, body)

    @property
    def is_json(self) -> bool:
        return self.body is not NOT_JSON

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode() if self.is_json else self.raw

    async def send(self, send: Send) -> None:
        content = self.encoded()
        headers = [(name.encode(), value.encode()) for name, value in self.headers.items()]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


Intercept = Callable[[Incoming], "Outgoing | None"]
Rewrite = Callable[[Incoming, Outgoing], None]


class Tamper:
    """Wraps an endpoint's ASGI app: `before` may answer a request itself or change it,
    `after` rewrites the (fully buffered) response."""

    def __init__(
        self, app: ASGIApp, *, before: Intercept | None = None, after: Rewrite | None = None
    ) -> None:
        self.app = app
        self.before = before
        self.after = after
        self.memo: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _incoming(scope, await read_body(receive), self.memo)
        if self.before is not None:
            answer = self.before(incoming)
            if answer is not None:
                await answer.send(send)
                return
        headers = [(name.encode(), value.encode()) for name, value in incoming.headers.items()]
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": incoming.body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        captured = _Captured()
        await self.app({**scope, "headers": headers}, replay, captured)
        outgoing = captured.outgoing()
        if self.after is not None:
            self.after(incoming, outgoing)
        await outgoing.send(send)


class _Captured:
    def __init__(self) -> None:
        self.status = 500
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() != b"content-length":
                    self.headers[name.decode().lower()] = value.decode()
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def outgoing(self) -> Outgoing:
        raw = b"".join(self.chunks)
        try:
            body = json.loads(raw) if raw else NOT_JSON
        except ValueError:
            body = NOT_JSON
        return Outgoing(self.status, self.headers, body, raw)


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _incoming(scope: Scope, body: bytes, memo: dict[str, Any]) -> Incoming:
    # /v2/{endpoint_id}/{operation}[/{job_id}]
    segments = scope["path"].strip("/").split("/")
    operation = segments[2] if len(segments) > 2 else None
    job_id = segments[3] if len(segments) > 3 else None
    query = dict(parse_qsl(scope.get("query_string", b"").decode()))
    headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
    return Incoming(scope["method"], operation, job_id, query, headers, body, memo)


class GzipEverything:
    """Compresses every response (a CDN in front of production may), whatever its size."""

    def __init__(self, app: ASGIApp) -> None:
        self.tamper = Tamper(app, after=self._compress)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.tamper(scope, receive, send)

    @staticmethod
    def _compress(request: Incoming, response: Outgoing) -> None:
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return
        response.raw = gzip.compress(response.encoded())
        response.body = NOT_JSON
        response.headers["content-encoding"] = "gzip"
        response.headers["vary"] = "Accept-Encoding"
