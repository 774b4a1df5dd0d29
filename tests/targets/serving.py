"""Serving variants over real HTTP on loopback: one uvicorn server, `/v2/{variant}/...` to
that variant's own emulator; and a forwarding proxy for a server without endpoint ids."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from runpod_testkit.emulator.app import EmulatorApp
from tests.targets.tamper import Outgoing, read_body
from tests.targets.variant import Variant


class _Router:
    """`/v2/{variant}/...` to that variant's endpoint; anything else 404."""

    def __init__(self, endpoints: Mapping[str, ASGIApp]) -> None:
        self.endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        segments = scope["path"].strip("/").split("/")
        app = self.endpoints.get(segments[1]) if len(segments) > 1 else None
        if app is None:
            await Outgoing.json(404, {"error": f"no variant at {scope['path']}"}).send(send)
            return
        await app(scope, receive, send)


class _Server(uvicorn.Server):
    """Answers every held request before it stops, as the emulator's own server does."""

    def __init__(self, app: ASGIApp, emulators: Iterable[EmulatorApp]) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self.emulators = list(emulators)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for emulator in self.emulators:
            emulator.stop_holding()
        await super().shutdown(sockets)


@contextmanager
def serving_apps(
    endpoints: Mapping[str, ASGIApp], emulators: Iterable[EmulatorApp] = ()
) -> Iterator[str]:
    """Serve `/v2/{name}/...` by `endpoints[name]` on a free loopback port; yields the base URL
    `http://127.0.0.1:PORT/v2`."""
    server = _Server(_Router(endpoints), emulators)
    thread = threading.Thread(target=server.run, name="contract-targets", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the variant server did not start within 10 s")
        time.sleep(0.01)  # bounded by the deadline above
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serving(variants: Iterable[Variant] | Mapping[str, Variant], *, api_key: str) -> Iterator[str]:
    """Serve each variant at `{base}/{name}`: its own name, or the name it is mapped to (one
    variant may be served under several names, each its own endpoint); yields the base URL."""
    named = variants if isinstance(variants, Mapping) else {each.name: each for each in variants}
    endpoints: dict[str, ASGIApp] = {}
    emulators: list[EmulatorApp] = []
    for name, each in named.items():
        app, emulator = each.build(api_key)
        endpoints[name] = app
        emulators.append(emulator)
    with serving_apps(endpoints, emulators) as base_url:
        yield base_url


class ForwardingProxy:
    """`/v2/{name}/{rest}` to `{upstream}/{rest}`: puts a server without an endpoint id in its
    paths (the runpod-python dev server) behind an endpoint URL the suite accepts."""

    def __init__(self, upstream: str, *, timeout_s: float = 30.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        rest = "/".join(scope["path"].strip("/").split("/")[2:])
        url = f"{self.upstream}/{rest}"
        query = scope.get("query_string", b"").decode()
        headers = [
            (name.decode(), value.decode())
            for name, value in scope["headers"]
            if name.lower() not in (b"host", b"content-length", b"connection")
        ]
        async with httpx.AsyncClient(timeout=self.timeout_s, trust_env=False) as client:
            try:
                answer = await client.request(
                    scope["method"],
                    url + (f"?{query}" if query else ""),
                    headers=headers,
                    content=body,
                )
            except httpx.HTTPError as exc:
                await Outgoing.json(502, {"error": f"upstream: {type(exc).__name__}"}).send(send)
                return
        kept = {
            name.lower(): value
            for name, value in answer.headers.items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        await Outgoing(answer.status_code, kept, raw=answer.content).send(send)
