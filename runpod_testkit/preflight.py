"""The preflight: one GET /health with the key before a run submits any job.

Every entry point that can reach a paid endpoint (`runpod-testkit check`, the contract suite in
live and `--emulator` mode, every Locust load run) calls `preflight()` first. It either returns
what it learned (the auth scheme the endpoint takes, the /health body) or raises
`PreflightError`, whose message is the one line to print: what is wrong and what to do. The
caller then ends with exit status 2, having submitted no job.

What it refuses, in order:

1. A host that is not this machine (not loopback) with no API key: refused before any
   connection, since every request there would be a 401 at best.
2. Transport failures: a name that does not resolve (DNS), a refused connection (nothing
   listens), no answer within the timeout, any other connection error.
3. 401/403: the key was refused (or none was given); the message says which, and what to set.
4. 404: no endpoint with that id at that base URL.
5. 429 after a short bounded backoff, and any other non-2xx answer.
6. A 2xx body that is not JSON, or JSON that is not an object (not a Runpod queue endpoint).

The /health body's shape beyond "an object" is the contract suite's business, not the
preflight's. The key never appears in a message: it is not written into one, and any body
excerpt goes through the client's redaction.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from runpod_testkit.client import (
    ApiResponse,
    AuthScheme,
    Backoff,
    RequestTimeout,
    RunpodClient,
    RunpodClientError,
)
from runpod_testkit.config import ENV_API_KEY

__all__ = [
    "PREFLIGHT_TIMEOUT_S",
    "PreflightError",
    "PreflightResult",
    "Problem",
    "is_loopback_url",
    "preflight",
    "refuse_remote_without_key",
]

PREFLIGHT_TIMEOUT_S = 5.0
"""Seconds the /health request may take: a target that answers slower is not ready for a run."""

# A 429 on /health is retried briefly (Retry-After honoured up to 2 s), then refused: a load
# run started into a rate limit would only deepen it.
_BACKOFF = Backoff(max_retries=2, max_backoff_s=2.0, max_total_s=3.0, base_delay_s=0.5)
_EXCERPT_CHARS = 120

Problem = Literal[
    "remote-without-key",
    "no-key",
    "key-refused",
    "dns",
    "connection-refused",
    "timeout",
    "unreachable",
    "no-such-endpoint",
    "rate-limited",
    "http-error",
    "not-json",
]


class PreflightError(Exception):
    """The target cannot take a run. `str()` is one line saying what is wrong and what to do
    (never the key); `problem` names the kind, for callers and tests."""

    def __init__(self, message: str, *, problem: Problem) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever went into it
        self.problem: Problem = problem


@dataclass(frozen=True)
class PreflightResult:
    endpoint_url: str
    auth_scheme: AuthScheme
    """The first of the schemes tried that the endpoint accepted."""
    health: dict[str, Any]
    """The /health body (a JSON object)."""


def is_loopback_url(url: str) -> bool:
    """True when `url`'s host is this machine: `localhost`, 127.0.0.0/8 or ::1."""
    host = httpx.URL(url).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_remote_without_key(
    endpoint_url: str, api_key: str | None, *, key_name: str = ENV_API_KEY
) -> None:
    """PreflightError if `endpoint_url` is not on this machine and there is no key. Makes no
    request: it is the check that keeps a keyless run off a real (paid) endpoint."""
    if api_key is None and not is_loopback_url(endpoint_url):
        raise PreflightError(
            f"no API key for {endpoint_url}: {key_name} is not set, and a host that is not "
            f"this machine gets nothing without one; set {key_name} to your Runpod API key "
            f"(Runpod console > Settings > API Keys)",
            problem="remote-without-key",
        )


def preflight(
    endpoint_url: str,
    api_key: str | None,
    *,
    key_name: str = ENV_API_KEY,
    placeholder_key: str | None = None,
    auth_schemes: Sequence[AuthScheme] = ("bearer",),
    timeout_s: float = PREFLIGHT_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> PreflightResult:
    """GET `endpoint_url`/health with the key; PreflightError unless the endpoint answered it.

    `key_name` is where the key came from, for messages. `placeholder_key` is sent when
    `api_key` is None (a load run's stand-in that an emulator without --api-key accepts); a
    refusal then says that no key was set. `auth_schemes` are tried in order while the
    endpoint answers 401/403 (the contract suite also tries the raw key, as the docs' cURL
    samples send it). `transport` is for tests.
    """
    refuse_remote_without_key(endpoint_url, api_key, key_name=key_name)
    sent_key = api_key if api_key is not None else placeholder_key
    if not auth_schemes:
        raise ValueError("auth_schemes must name at least one scheme")
    response: ApiResponse | None = None
    for scheme in auth_schemes:
        with RunpodClient(
            endpoint_url,
            sent_key,
            timeout=timeout_s,
            auth_scheme=scheme,
            backoff=_BACKOFF,
            transport=transport,
        ) as client:
            try:
                response = client.health()
            except RunpodClientError as exc:
                raise _unreachable(endpoint_url, exc, timeout_s) from None
            if response.status_code not in (401, 403):
                body = _health_body(endpoint_url, response, client.redact)
                return PreflightResult(endpoint_url, scheme, body)
            if sent_key is None:
                break  # no key to present another way
    assert response is not None
    raise _refused(endpoint_url, response.status_code, api_key is None, key_name)


# --------------------------------------------------------------------------- classification


def _refused(endpoint_url: str, status: int, no_key: bool, key_name: str) -> PreflightError:
    if is_loopback_url(endpoint_url):
        right_key = "the key the emulator was started with (its --api-key)"
    else:
        right_key = "your Runpod API key (Runpod console > Settings > API Keys)"
    if no_key:
        return PreflightError(
            f"{endpoint_url} refused a request without an API key (HTTP {status} on /health): "
            f"{key_name} is not set; set it to {right_key}",
            problem="no-key",
        )
    return PreflightError(
        f"{endpoint_url} refused the API key in {key_name} (HTTP {status} on /health): "
        f"set {key_name} to {right_key}",
        problem="key-refused",
    )


def _unreachable(endpoint_url: str, exc: RunpodClientError, timeout_s: float) -> PreflightError:
    host = httpx.URL(endpoint_url).host
    where = f"cannot reach {endpoint_url}"
    if isinstance(exc, RequestTimeout):
        return PreflightError(
            f"{where}: no answer to /health within {timeout_s:g} s; check the URL and the "
            f"network, and that the endpoint is up",
            problem="timeout",
        )
    if _caused_by(exc, socket.gaierror):
        return PreflightError(
            f"{where}: the host name {host!r} does not resolve (DNS); check the URL's host",
            problem="dns",
        )
    if _caused_by(exc, ConnectionRefusedError):
        port = httpx.URL(endpoint_url).port
        at = f"{host}:{port}" if port is not None else host
        return PreflightError(
            f"{where}: connection refused at {at} (nothing listens there); check the host and "
            f"port, or start the emulator (runpod-testkit emulator --port PORT)",
            problem="connection-refused",
        )
    reason = _root_reason(exc)
    return PreflightError(
        f"{where}: {reason}; check the URL and the network", problem="unreachable"
    )


def _health_body(
    endpoint_url: str, response: ApiResponse, redact: Callable[[str], str]
) -> dict[str, Any]:
    status = response.status_code
    if status == 404:
        base, _, endpoint_id = endpoint_url.rpartition("/")
        raise PreflightError(
            f"no endpoint {endpoint_id!r} at {base} (HTTP 404 on /health): check the endpoint "
            f"id (Runpod console > Serverless), or the URL's path ({{base}}/{{endpoint_id}})",
            problem="no-such-endpoint",
        )
    if status == 429:
        raise PreflightError(
            f"{endpoint_url} answered /health with HTTP 429 Too Many Requests, also after "
            f"backing off: the endpoint is rate-limiting this key; wait, then try again",
            problem="rate-limited",
        )
    if not response.ok:
        excerpt = _excerpt(response, redact)
        raise PreflightError(
            f"{endpoint_url} answered /health with HTTP {status}{excerpt}: it is not ready to "
            f"take a run; check the endpoint, then try again",
            problem="http-error",
        )
    body = response.json
    if not response.is_json or not isinstance(body, dict):
        got = "a body that is not JSON" if not response.is_json else f"JSON {_kind(body)}"
        excerpt = _excerpt(response, redact)
        raise PreflightError(
            f"{endpoint_url} answered /health with {got}{excerpt}, not a Runpod /health "
            f"object: is this an endpoint URL ({{base}}/{{endpoint_id}})?",
            problem="not-json",
        )
    return body


def _excerpt(response: ApiResponse, redact: Callable[[str], str]) -> str:
    """` (content type: '...')` for a message, redacted and on one line; "" for no body."""
    error = response.error if isinstance(response.json, dict) else None
    text = error if error is not None else response.text
    text = " ".join(text.split())
    if not text:
        return ""
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    content_type = response.headers.get("content-type", "no content type")
    return redact(f" ({content_type}: {text!r})")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # bounded: chains are short, and a cycle must not hang
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_reason(exc: BaseException) -> str:
    """The innermost cause's message (e.g. `[Errno 101] Network is unreachable`)."""
    deepest: BaseException = exc
    for _ in range(10):
        cause = deepest.__cause__ or deepest.__context__
        if cause is None:
            break
        deepest = cause
    return str(deepest) or type(deepest).__name__
