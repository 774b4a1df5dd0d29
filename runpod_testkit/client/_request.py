"""Call options, argument checks and the I/O-free request builder both clients share."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, Literal, TypedDict, TypeVar, cast
from urllib.parse import quote

import httpx
import orjson

from runpod_testkit.client._backoff import READS, RETRIED_READ_STATUSES, Backoff, parse_retry_after
from runpod_testkit.client._errors import (
    RequestTimeout,
    RunpodClientError,
    TransportError,
    _Secret,
)
from runpod_testkit.client._response import ApiError, ApiResponse
from runpod_testkit.config import Target, resolve_target, validate_api_key, validate_endpoint_url
from runpod_testkit.operations import POLICY_LIMITS, JobStatus, Operation, operation

DEFAULT_TIMEOUT_S = 10.0
"""Seconds a call may take beyond any server-side hold (?wait) before it times out."""

AuthScheme = Literal["bearer", "raw"]

_logger = logging.getLogger("runpod_testkit.client")  # the name it had as one module

# The query parameter that makes the server hold the request (runsync, status-sync, stream):
# the HTTP timeout must outlast it.
_HOLD_PARAM = "wait"


def _package_version() -> str:
    try:
        return metadata.version("runpod-testkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


_USER_AGENT = f"runpod-testkit/{_package_version()} httpx/{httpx.__version__}"


class CallOptions(TypedDict, total=False):
    """Keyword options every operation method takes."""

    headers: Mapping[str, str] | None
    """Extra headers; they replace the client's (e.g. a wrong Authorization)."""
    authenticate: bool
    """False sends no Authorization header (default True)."""
    timeout: float | None
    """Seconds allowed beyond any ?wait hold; default the client's `timeout`."""
    retry_429: bool
    """False returns a 429 (and a read's 5xx or dropped connection) at once instead of backing
    off (default True)."""


class SubmitOptions(CallOptions, total=False):
    """Keyword options of run and runsync: what the request body carries besides the input
    (or the whole body, sent as is), and every operation's options."""

    body: Any
    """The whole request body as JSON, sent as is (e.g. an invalid one, on purpose)."""
    content: bytes | str | None
    """The whole raw request body, sent as is."""
    webhook: str | None
    policy: Mapping[str, Any] | None
    s3_config: Mapping[str, Any] | None


_BODY_OPTIONS = frozenset({"body", "content", "webhook", "policy", "s3_config"})


class RequestOptions(CallOptions, total=False):
    """Keyword options of `request`, the engine under every operation method."""

    job_id: str | None
    method: str | None
    """One of the operation's methods; default the documented one."""
    params: Mapping[str, str | int] | None
    """Query parameters, checked against the operation's ranges unless validate=False."""
    body: Any
    """A JSON body (any JSON value), serialised as is."""
    content: bytes | str | None
    """A raw body, e.g. malformed JSON; exclusive with `body`."""
    validate: bool
    """False sends the method, query and job id unchecked, for negative tests."""


@dataclass(frozen=True)
class _Call:
    """A fully prepared request, ready to send (and to resend after a 429)."""

    operation: Operation
    method: str
    url: str
    params: dict[str, str]
    headers: httpx.Headers
    content: bytes | None
    timeout_s: float
    retry_429: bool


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_non_negative(value: float, name: str) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _check_policy(policy: Mapping[str, Any]) -> None:
    for name, limit in POLICY_LIMITS.items():
        if name not in policy:
            continue
        value = policy[name]
        valid = isinstance(value, int) and not isinstance(value, bool)
        if not valid or not limit.minimum <= value <= limit.maximum:
            raise ValueError(
                f"policy[{name!r}] must be an integer number of milliseconds from "
                f"{limit.minimum} to {limit.maximum}, got {value!r:.40}; "
                f"pass body=... to send an invalid policy on purpose"
            )


def _submission(
    job_input: Mapping[str, Any] | None, options: SubmitOptions
) -> tuple[tuple[Any, bytes | str | None], CallOptions]:
    """((JSON body, raw content), the call's own options) of /run or /runsync: `content` or
    `body` sent as is, or a body built from `input` and the options."""
    call_options = cast(
        "CallOptions", {key: value for key, value in options.items() if key not in _BODY_OPTIONS}
    )
    return _submission_body(job_input, **options), call_options


def _submission_body(
    job_input: Mapping[str, Any] | None,
    *,
    body: Any = None,
    content: bytes | str | None = None,
    webhook: str | None = None,
    policy: Mapping[str, Any] | None = None,
    s3_config: Mapping[str, Any] | None = None,
    **_call_options: Any,
) -> tuple[Any, bytes | str | None]:
    options = (webhook, policy, s3_config)
    if content is not None:
        if body is not None or job_input is not None or any(v is not None for v in options):
            raise ValueError(
                "content= is the whole raw request body; do not combine it with "
                "input, body=, webhook=, policy= or s3_config="
            )
        return None, content
    if body is not None:
        if job_input is not None or any(v is not None for v in options):
            raise ValueError(
                "pass either body= (the whole request body, sent as is) or input with "
                "webhook=/policy=/s3_config=, not both"
            )
        return body, None
    request: dict[str, Any] = {"input": {} if job_input is None else dict(job_input)}
    if webhook is not None:
        request["webhook"] = webhook
    if policy is not None:
        _check_policy(policy)
        request["policy"] = dict(policy)
    if s3_config is not None:
        request["s3Config"] = dict(s3_config)
    return request, None


def _query(**values: int | None) -> dict[str, int]:
    return {name: value for name, value in values.items() if value is not None}


def _hold_seconds(op: Operation, params: Mapping[str, str]) -> float:
    """How long the server may hold this request: its ?wait, or the table's default."""
    param = op.query_param(_HOLD_PARAM)
    if param is None:
        return 0.0
    held_ms = param.default or 0
    raw = params.get(param.name)
    if raw is not None:
        # Sent unvalidated and unparsable: the server should refuse it fast.
        with contextlib.suppress(ValueError):
            held_ms = int(raw)
    return min(max(held_ms, 0), param.maximum) / 1000.0


def _job_status(response: ApiResponse, job_id: str) -> str:
    """The status of a job read, or ApiError if the answer is not a usable job object."""
    if not response.ok:
        raise ApiError(response, f"while following job {job_id!r}")
    status = response.status
    if status is None:
        raise ApiError(response, f"no job status in the body while following job {job_id!r}")
    return status


def _drain_step(response: ApiResponse, job_id: str) -> tuple[list[Any], bool]:
    """The chunks of one /stream answer, and whether the stream is now drained."""
    status = _job_status(response, job_id)
    chunks = response.stream_chunks
    if chunks is None or not isinstance(response.json, dict):
        raise ApiError(response, f"no `stream` list in the body while streaming job {job_id!r}")
    return chunks, status in JobStatus.TERMINAL and not chunks


# What the sync and async clients differ in: their httpx transport and client, and their sleep.
_Transport = TypeVar("_Transport")
_Http = TypeVar("_Http")
_Sleep = TypeVar("_Sleep")


class _ClientBase(Generic[_Transport, _Http, _Sleep]):
    """Configuration and request building shared by the sync and async clients (no I/O), and
    their one constructor: see `RunpodClient` for its arguments."""

    def __init__(
        self,
        endpoint_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        auth_scheme: AuthScheme = "bearer",
        backoff: Backoff | None = None,
        headers: Mapping[str, str] | None = None,
        transport: _Transport | None = None,
        http_client: _Http | None = None,
        sleep: _Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint_url = validate_endpoint_url(endpoint_url)
        self._secret = _Secret(None if api_key is None else validate_api_key(api_key))
        self._timeout_s = _check_positive(timeout, "timeout")
        if auth_scheme not in ("bearer", "raw"):
            raise ValueError(
                f"auth_scheme must be 'bearer' (Authorization: Bearer KEY, as every SDK sends) "
                f"or 'raw' (Authorization: KEY, as the docs' cURL samples), got {auth_scheme!r}"
            )
        self._auth_scheme: AuthScheme = auth_scheme
        self._backoff = Backoff() if backoff is None else backoff
        # Proxy variables (HTTP_PROXY...) cannot apply to a loopback endpoint such as the
        # emulator: a proxy elsewhere would not reach this machine's 127.0.0.1.
        self._use_env = not _is_loopback(self._endpoint_url)
        self._default_headers = httpx.Headers(
            {"Accept": "application/json", "User-Agent": _USER_AGENT}
        )
        self._default_headers.update(headers or {})
        self._clock = clock
        if http_client is not None and transport is not None:
            raise ValueError("pass either transport= or http_client=, not both")
        # A client passed in belongs to the caller, who closes it.
        self._owns_http = http_client is None
        self._http: _Http = self._new_http(transport) if http_client is None else http_client
        self._sleep: _Sleep = self._real_sleep() if sleep is None else sleep

    def _new_http(self, transport: _Transport | None) -> _Http:
        """The httpx client this client makes (and closes) when none is passed in."""
        raise NotImplementedError

    def _real_sleep(self) -> _Sleep:
        """The sleep used when none is injected."""
        raise NotImplementedError

    @classmethod
    def from_target(cls: type[_Client], target: Target, **options: Any) -> _Client:
        """A client for a resolved `config.Target`; `options` go to the constructor."""
        return cls(target.endpoint_url, target.api_key, **options)

    @classmethod
    def from_env(
        cls: type[_Client],
        *,
        env: Mapping[str, str] | None = None,
        require_api_key: bool = True,
        **options: Any,
    ) -> _Client:
        """A client for RUNPOD_ENDPOINT_URL or ENDPOINT_ID (+ RUNPOD_ENDPOINT_BASE_URL) with
        RUNPOD_API_KEY; see `config.resolve_target`."""
        return cls.from_target(resolve_target(env=env, require_api_key=require_api_key), **options)

    @property
    def endpoint_url(self) -> str:
        return self._endpoint_url

    @property
    def endpoint_id(self) -> str:
        return self._endpoint_url.rsplit("/", 1)[1]

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @property
    def auth_scheme(self) -> AuthScheme:
        return self._auth_scheme

    @property
    def backoff(self) -> Backoff:
        return self._backoff

    @property
    def has_api_key(self) -> bool:
        return self._secret.value is not None

    def redact(self, text: str) -> str:
        """`text` with this client's API key replaced by ***."""
        return self._secret.redact(text)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint_url={self._endpoint_url!r}, "
            f"api_key={self._secret!r}, auth_scheme={self._auth_scheme!r}, "
            f"timeout={self._timeout_s:g})"
        )

    def _prepare(
        self,
        operation_name: str | Operation,
        *,
        job_id: str | None = None,
        method: str | None = None,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        timeout: float | None = None,
        retry_429: bool = True,
        validate: bool = True,
    ) -> _Call:
        op = operation_name if isinstance(operation_name, Operation) else operation(operation_name)
        verb = (method or op.method).upper()
        if validate and verb not in op.methods:
            raise ValueError(
                f"operation {op.name!r} accepts {' or '.join(op.methods)}, not {verb}; "
                f"pass validate=False to send it anyway"
            )
        if validate and job_id is not None and not op.takes_job_id:
            raise ValueError(f"operation {op.name!r} takes no job id")
        query: dict[str, str] = {}
        for name, value in (params or {}).items():
            text = str(value)
            if validate:
                param = op.query_param(name)
                if param is None:
                    known = ", ".join(p.name for p in op.query) or "none"
                    raise ValueError(
                        f"operation {op.name!r} takes no query parameter {name!r} "
                        f"(it takes: {known}); pass validate=False to send it anyway"
                    )
                param.parse(text)  # QueryParamError (a ValueError) names the range
            query[name] = text
        if body is not None and content is not None:
            raise ValueError("pass either body= (JSON) or content= (raw bytes), not both")
        payload: bytes | None
        if body is not None:
            payload = orjson.dumps(body)
        elif isinstance(content, str):
            payload = content.encode()
        else:
            payload = content
        # A job id is one path segment: quote it so that "/" or "?" cannot reshape the URL.
        url = op.url(self._endpoint_url, None if job_id is None else quote(job_id, safe=""))
        request_headers = httpx.Headers(self._default_headers)
        if authenticate and self._secret.value is not None:
            key = self._secret.value
            request_headers["Authorization"] = (
                f"Bearer {key}" if self._auth_scheme == "bearer" else key
            )
        if payload is not None:
            request_headers["Content-Type"] = "application/json"
        request_headers.update(headers or {})
        base_timeout = self._timeout_s if timeout is None else _check_positive(timeout, "timeout")
        return _Call(
            operation=op,
            method=verb,
            url=url,
            params=query,
            headers=request_headers,
            content=payload,
            timeout_s=base_timeout + _hold_seconds(op, query),
            retry_429=retry_429,
        )

    def _build_submission(
        self,
        name: Literal["run", "runsync"],
        payload: tuple[Any, bytes | str | None],
        options: CallOptions,
        wait_ms: int | None = None,
    ) -> _Call:
        """The call of run or runsync; `payload` is what `_submission` made of the arguments."""
        body, content = payload
        params = _query(wait=wait_ms)
        return self._prepare(name, params=params, body=body, content=content, **options)

    def _build_job_call(
        self,
        name: str,
        job_id: str,
        options: CallOptions,
        method: str | None = None,
        **query: int | None,
    ) -> _Call:
        """The call of an operation on one job; `query` values that are None are left out."""
        return self._prepare(name, job_id=job_id, method=method, params=_query(**query), **options)

    def _build_request(self, http: httpx.Client | httpx.AsyncClient, call: _Call) -> httpx.Request:
        return http.build_request(
            call.method,
            call.url,
            params=call.params or None,
            headers=call.headers,
            content=call.content,
            timeout=call.timeout_s,
        )

    def _send_error(self, call: _Call, request: httpx.Request, exc: Exception) -> RunpodClientError:
        url = self.redact(str(request.url))
        where = f"{call.operation.name}: {call.method} {url}"
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeout(
                self.redact(
                    f"{where} got no response within {call.timeout_s:g} s "
                    f"({type(exc).__name__}); the endpoint may be overloaded or unreachable: "
                    f"check it, or pass a larger timeout="
                ),
                operation=call.operation.name,
                url=url,
                timeout_s=call.timeout_s,
            )
        return TransportError(
            self.redact(f"{where} failed: {type(exc).__name__}: {exc}"),
            operation=call.operation.name,
            url=url,
        )

    def _retry_delay(
        self, call: _Call, response: httpx.Response, retry_index: int, slept_s: float
    ) -> float | None:
        status = response.status_code
        if not call.retry_429 or not (
            status == 429 or (status in RETRIED_READ_STATUSES and call.operation.name in READS)
        ):
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        delay = self._backoff.delay(retry_index, retry_after, slept_s)
        what = f"{status} {response.reason_phrase}".strip()
        if delay is None:
            _logger.info(
                "%s: %s after %d attempt(s); not retrying",
                call.operation.name,
                what,
                retry_index + 1,
            )
        else:
            _logger.info(
                "%s: %s; retrying in %.2f s (Retry-After: %s)",
                call.operation.name,
                what,
                delay,
                "absent" if retry_after is None else f"{retry_after:g} s",
            )
        return delay

    def _retry_delay_after_drop(
        self, call: _Call, error: RunpodClientError, retry_index: int, slept_s: float
    ) -> float | None:
        """A read whose connection dropped (no answer at all) is sent again after a backoff;
        a timeout is not (its budget is spent), nor is anything but a read, nor a connection
        that was never made (a name that does not resolve, a closed port: resending cannot
        help, and a preflight must say so at once)."""
        if (
            not call.retry_429
            or call.operation.name not in READS
            or not isinstance(error, TransportError)
            or isinstance(error.__cause__, httpx.ConnectError)
        ):
            return None
        delay = self._backoff.delay(retry_index, None, slept_s)
        _logger.info(
            "%s: connection dropped (%s); %s",
            call.operation.name,
            error,
            "not retrying" if delay is None else f"retrying in {delay:.2f} s",
        )
        return delay

    def _result(
        self, call: _Call, response: httpx.Response, elapsed_ms: float, attempts: int, slept: float
    ) -> ApiResponse:
        _logger.debug(
            "%s: %s %s -> %d in %.1f ms",
            call.operation.name,
            call.method,
            self.redact(str(response.request.url)),
            response.status_code,
            elapsed_ms,
        )
        return ApiResponse(
            call.operation.name,
            response,
            elapsed_ms=elapsed_ms,
            attempts=attempts,
            retry_wait_s=slept,
            redact=self.redact,
        )


_Client = TypeVar("_Client", bound="_ClientBase[Any, Any, Any]")
