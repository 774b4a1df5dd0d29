"""httpx clients for a Runpod queue-based endpoint: one method per operation of the table.

`RunpodClient` (sync) and `AsyncRunpodClient` share one request builder: the URL is
`operation.url(endpoint_url, job_id)`, the method is the operation's documented one unless a
listed alternative is asked for (POST for status, status-sync and stream, as the Go SDK sends),
and query parameters are checked against the table's ranges before anything is sent.

The clients never raise on an HTTP status or an unparsable body: every call returns an
`ApiResponse`, because the contract suite points them at endpoints that misbehave on purpose.
`ApiResponse.raise_for_status()` turns a non-2xx answer into `ApiError` when wanted. Transport
failures raise `RequestTimeout` or `TransportError`.

429 Too Many Requests is retried for every operation, honouring `Retry-After` (see `Backoff`).
That is safe even for the POSTs run and runsync: a rate limiter answers 429 *instead of* handling
the request, so the job was not accepted and a repeat cannot submit it twice. A cancel, retry or
purge-queue refused with 429 did nothing either. Reads (status, status-sync, stream, health) are
idempotent, so they are also retried, with the same backoff, after a 500, 502, 503 or 504 and
after a dropped connection (a reset, a closed connection, a refused connect). Nothing else is
retried: a run that got a 5xx or lost its connection may have been accepted, and a second
submission would be a second (paid) job.

The API key lives only in the Authorization header of outgoing requests. Reprs, log lines and
exception messages redact it; httpx's own logs carry URLs and status lines, never headers.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timezone
from functools import cached_property
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import anyio
import httpx
import orjson

from runpod_testkit.config import Target, resolve_target, validate_api_key, validate_endpoint_url
from runpod_testkit.operations import POLICY_LIMITS, JobStatus, Operation, operation

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "READS",
    "RETRIED_READ_STATUSES",
    "ApiError",
    "ApiResponse",
    "AsyncRunpodClient",
    "AsyncStreamDrain",
    "AuthScheme",
    "Backoff",
    "CallOptions",
    "JobTimeoutError",
    "RequestOptions",
    "RequestTimeout",
    "RunpodClient",
    "RunpodClientError",
    "StreamDrain",
    "TransportError",
    "parse_retry_after",
]

DEFAULT_TIMEOUT_S = 10.0
"""Seconds a call may take beyond any server-side hold (?wait) before it times out."""

AuthScheme = Literal["bearer", "raw"]

_logger = logging.getLogger(__name__)

# The query parameter that makes the server hold the request (runsync, status-sync, stream):
# the HTTP timeout must outlast it.
_HOLD_PARAM = "wait"
_REDACTED = "***"
# Shorter "keys" (test placeholders such as "k") are not redacted: replacing every "k" in a
# message would mangle it and protect nothing.
_MIN_REDACTED_KEY_CHARS = 6
_BODY_EXCERPT_CHARS = 200
_MAX_BACKOFF_EXPONENT = 30
_NOT_PARSED = object()


def _package_version() -> str:
    try:
        return metadata.version("runpod-testkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


_USER_AGENT = f"runpod-testkit/{_package_version()} httpx/{httpx.__version__}"


class _Secret:
    """The API key, kept out of reprs; `redact` removes it from any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    @property
    def value(self) -> str | None:
        return self._value

    def redact(self, text: str) -> str:
        if self._value and len(self._value) >= _MIN_REDACTED_KEY_CHARS:
            return text.replace(self._value, _REDACTED)
        return text

    def __repr__(self) -> str:
        return "None" if self._value is None else repr(_REDACTED)


def _no_redaction(text: str) -> str:
    return text


# --------------------------------------------------------------------------- errors


class RunpodClientError(Exception):
    """Base class of the errors this module raises."""


class RequestTimeout(RunpodClientError, TimeoutError):
    """No response within the call's timeout (httpx.TimeoutException underneath)."""

    def __init__(self, message: str, *, operation: str, url: str, timeout_s: float) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.timeout_s = timeout_s


class TransportError(RunpodClientError):
    """The request could not be sent or its response not read (connection refused, reset...)."""

    def __init__(self, message: str, *, operation: str, url: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url


class ApiError(RunpodClientError):
    """The endpoint answered, but not as asked: a non-2xx status, or a body that is not a job."""

    def __init__(self, response: ApiResponse, problem: str | None = None) -> None:
        self.response = response
        super().__init__(response.describe(problem))

    @property
    def status_code(self) -> int:
        return self.response.status_code


class JobTimeoutError(RunpodClientError, TimeoutError):
    """A job did not reach a terminal state (or drain its stream) within the time allowed."""

    def __init__(
        self,
        job_id: str,
        *,
        last_status: str | None,
        timeout_s: float,
        polls: int,
        operation: str,
        last_response: ApiResponse | None,
    ) -> None:
        self.job_id = job_id
        self.last_status = last_status
        self.timeout_s = timeout_s
        self.polls = polls
        self.last_response = last_response
        super().__init__(
            f"job {job_id!r} is still {last_status or 'in an unknown state'} after "
            f"{timeout_s:g} s ({polls} {operation} call(s)); raise the timeout, or check the "
            f"endpoint's workers (health) and the job's own run time"
        )


# --------------------------------------------------------------------------- results


class ApiResponse:
    """One operation's answer: status code, headers, parsed body and typed accessors.

    Accessors never raise on a malformed body; they return None (or an empty list) instead.
    `response` is the raw httpx.Response, kept for contract checks.
    """

    def __init__(
        self,
        operation: str,
        response: httpx.Response,
        *,
        elapsed_ms: float,
        attempts: int = 1,
        retry_wait_s: float = 0.0,
        redact: Callable[[str], str] = _no_redaction,
    ) -> None:
        self.operation = operation
        self.response = response
        self.elapsed_ms = elapsed_ms
        """Duration of the last HTTP attempt, in milliseconds (backoff excluded)."""
        self.attempts = attempts
        """HTTP attempts made, 1 + the number of retries (429; 5xx and dropped connections on
        reads)."""
        self.retry_wait_s = retry_wait_s
        """Seconds slept in backoff before the last attempt."""
        self._redact = redact

    # -- raw facts
    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    @property
    def method(self) -> str:
        return self.response.request.method

    @property
    def url(self) -> str:
        return str(self.response.request.url)

    @property
    def content(self) -> bytes:
        return self.response.content

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @cached_property
    def _parsed(self) -> Any:
        try:
            return orjson.loads(self.response.content)
        except orjson.JSONDecodeError:
            return _NOT_PARSED

    @property
    def is_json(self) -> bool:
        """Whether the body parses as JSON (whatever its Content-Type says)."""
        return self._parsed is not _NOT_PARSED

    @property
    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON (see `is_json`)."""
        return None if self._parsed is _NOT_PARSED else self._parsed

    # -- typed accessors
    def _field(self, name: str) -> Any:
        body = self.json
        return body.get(name) if isinstance(body, dict) else None

    def _str_field(self, name: str) -> str | None:
        value = self._field(name)
        return value if isinstance(value, str) else None

    def _int_field(self, name: str) -> int | None:
        value = self._field(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def job_id(self) -> str | None:
        return self._str_field("id")

    @property
    def status(self) -> str | None:
        """The job status (IN_QUEUE, ..., or `completed` for purge-queue), if a string."""
        return self._str_field("status")

    @property
    def is_terminal(self) -> bool:
        return self.status in JobStatus.TERMINAL

    @property
    def delay_time_ms(self) -> int | None:
        """`delayTime`: milliseconds the job waited in the queue."""
        return self._int_field("delayTime")

    @property
    def execution_time_ms(self) -> int | None:
        """`executionTime`: milliseconds the job ran."""
        return self._int_field("executionTime")

    @property
    def output(self) -> Any:
        return self._field("output")

    @property
    def error(self) -> str | None:
        return self._str_field("error")

    @property
    def worker_id(self) -> str | None:
        return self._str_field("workerId")

    @property
    def stream_chunks(self) -> list[Any] | None:
        """The chunk objects of a /stream answer (`{"output": ...}` each), or None if absent.

        The documentation prints /stream's body as a bare chunk list; that is accepted too."""
        body = self.json
        chunks = body.get("stream") if isinstance(body, dict) else body
        return chunks if isinstance(chunks, list) else None

    @property
    def stream_outputs(self) -> list[Any]:
        """The `output` of each stream chunk that has one."""
        return [
            chunk["output"]
            for chunk in self.stream_chunks or []
            if isinstance(chunk, dict) and "output" in chunk
        ]

    # -- errors
    def describe(self, problem: str | None = None) -> str:
        """One line for error messages: operation, request, status, body excerpt (redacted)."""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        excerpt = self.text[:_BODY_EXCERPT_CHARS].replace("\n", " ")
        if len(self.text) > _BODY_EXCERPT_CHARS:
            excerpt += "..."
        line = (
            f"{self.operation}: {self.method} {self.url} answered {self.status_code} "
            f"{self.response.reason_phrase}{tries}"
        )
        line += f": {problem}" if problem else ""
        line += f"; body: {excerpt!r}" if excerpt else "; empty body"
        return self._redact(line)

    def raise_for_status(self) -> ApiResponse:
        """Return self if the status is 2xx, else raise ApiError."""
        if not self.ok:
            raise ApiError(self)
        return self

    def __repr__(self) -> str:
        return self._redact(
            f"ApiResponse(operation={self.operation!r}, status_code={self.status_code}, "
            f"status={self.status!r}, job_id={self.job_id!r}, "
            f"elapsed_ms={self.elapsed_ms:.1f}, attempts={self.attempts})"
        )


# --------------------------------------------------------------------------- backoff

READS = frozenset({"status", "status-sync", "stream", "health"})
"""Idempotent operations: retried after a 5xx or a dropped connection as well as a 429."""
RETRIED_READ_STATUSES = frozenset({500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date.

    Returns None for a missing or unusable value; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


@dataclass(frozen=True)
class Backoff:
    """How 429 answers are retried.

    A Retry-After header is honoured exactly; if it asks for more than `max_backoff_s`, or any
    wait would take the total past `max_total_s`, the 429 is returned instead. Without the header
    the wait is jittered exponential: `base_delay_s * 2**n` capped at `max_backoff_s`, drawn from
    the upper half of that. `Backoff(max_retries=0)` turns retrying off.
    """

    max_retries: int = 5
    max_backoff_s: float = 30.0
    max_total_s: float = 60.0
    base_delay_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_retries", "max_backoff_s", "max_total_s", "base_delay_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Backoff.{name} must be a finite number >= 0, got {value!r}")

    def delay(self, retry_index: int, retry_after_s: float | None, slept_s: float) -> float | None:
        """Seconds to wait before retry number `retry_index` (0-based), or None to give up."""
        if retry_index >= self.max_retries:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_backoff_s:
                return None
            delay = retry_after_s
        else:
            exponent = min(retry_index, _MAX_BACKOFF_EXPONENT)
            ceiling = min(self.max_backoff_s, self.base_delay_s * 2**exponent)
            delay = ceiling / 2 + random.uniform(0.0, ceiling / 2)
        return None if slept_s + delay > self.max_total_s else delay


# --------------------------------------------------------------------------- request building


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
    job_input: Mapping[str, Any] | None,
    *,
    body: Any,
    content: bytes | str | None,
    webhook: str | None,
    policy: Mapping[str, Any] | None,
    s3_config: Mapping[str, Any] | None,
) -> tuple[Any, bytes | str | None]:
    """(JSON body, raw content) of /run or /runsync: `content` or `body` sent as is, or a body
    built from `input` and the options."""
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


class _ClientBase:
    """Configuration and request building shared by the sync and async clients (no I/O)."""

    def __init__(
        self,
        endpoint_url: str,
        api_key: str | None,
        *,
        timeout: float,
        auth_scheme: AuthScheme,
        backoff: Backoff | None,
        headers: Mapping[str, str] | None,
        clock: Callable[[], float],
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


_Client = TypeVar("_Client", bound=_ClientBase)


def _owns_http(transport: object, http_client: object) -> bool:
    """Whether the client makes (and so closes) its own httpx client."""
    if http_client is not None and transport is not None:
        raise ValueError("pass either transport= or http_client=, not both")
    return http_client is None


class _Attempts:
    """The 429 retry bookkeeping of one call, shared by the sync and async send loops (no I/O)."""

    def __init__(self, client: _ClientBase, call: _Call) -> None:
        self._client = client
        self._call = call
        self._retries = 0
        self._slept = 0.0
        self._elapsed_ms = 0.0

    @contextlib.contextmanager
    def sending(self, request: httpx.Request) -> Iterator[None]:
        """Time one HTTP attempt and turn its transport failure into this module's error."""
        started = time.perf_counter()
        try:
            yield
        except httpx.RequestError as exc:
            raise self._client._send_error(self._call, request, exc) from exc
        self._elapsed_ms = (time.perf_counter() - started) * 1000.0

    def retry_delay_after_drop(self, error: RunpodClientError) -> float | None:
        """Seconds to back off before resending after a transport failure, or None to raise."""
        delay = self._client._retry_delay_after_drop(self._call, error, self._retries, self._slept)
        if delay is not None:
            self._slept += delay
            self._retries += 1
        return delay

    def retry_delay(self, response: httpx.Response) -> float | None:
        """Seconds to back off before resending, or None when `response` is the answer."""
        delay = self._client._retry_delay(self._call, response, self._retries, self._slept)
        if delay is not None:
            self._slept += delay
            self._retries += 1
        return delay

    def result(self, response: httpx.Response) -> ApiResponse:
        return self._client._result(
            self._call, response, self._elapsed_ms, self._retries + 1, self._slept
        )


class _JobPoll:
    """The time limit of a loop that polls one job, shared by both clients' loops (no I/O)."""

    def __init__(
        self,
        job_id: str,
        timeout_s: float,
        poll_interval_s: float,
        clock: Callable[[], float],
        operation_name: str,
    ) -> None:
        self.job_id = job_id
        self.timeout_s = _check_non_negative(timeout_s, "timeout_s")
        self.poll_interval_s = _check_non_negative(poll_interval_s, "poll_interval_s")
        self.polls = 0
        self._clock = clock
        self._operation = operation_name
        self._deadline = 0.0

    def _start(self) -> None:
        self._deadline = self._clock() + self.timeout_s

    def _time_left(self, last: ApiResponse) -> float:
        """Seconds until the deadline; JobTimeoutError once there are none."""
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise JobTimeoutError(
                self.job_id,
                last_status=last.status,
                timeout_s=self.timeout_s,
                polls=self.polls,
                operation=self._operation,
                last_response=last,
            )
        return remaining


class _TerminalWait(_JobPoll):
    """The decisions of `wait_for_terminal`; the clients only send and sleep."""

    def __init__(
        self, job_id: str, timeout_s: float, poll_interval_s: float, clock: Callable[[], float]
    ) -> None:
        super().__init__(job_id, timeout_s, poll_interval_s, clock, "status")
        self._start()

    def pause_after(self, response: ApiResponse) -> float | None:
        """None if `response` shows the job terminal, else the seconds to sleep before polling
        again; ApiError on an unusable answer, JobTimeoutError once the time is up."""
        self.polls += 1
        if _job_status(response, self.job_id) in JobStatus.TERMINAL:
            return None
        return min(self.poll_interval_s, self._time_left(response))


class _DrainState(_JobPoll, Generic[_Client]):
    """Bookkeeping shared by StreamDrain and AsyncStreamDrain; they only send and sleep."""

    def __init__(
        self,
        client: _Client,
        job_id: str,
        timeout_s: float,
        poll_interval_s: float,
        wait_ms: int | None,
    ) -> None:
        super().__init__(job_id, timeout_s, poll_interval_s, client._clock, "stream")
        self._client = client
        self.final: ApiResponse | None = None
        """The answer that ended the stream (terminal status, no chunks); None until then."""
        self._wait_ms = wait_ms
        self._pending: deque[Any] = deque()
        self._last: ApiResponse | None = None

    def _pause_before_poll(self) -> float:
        """Seconds to sleep before the next poll; JobTimeoutError once the time is up."""
        if self._last is None:
            self._start()
            return 0.0
        remaining = self._time_left(self._last)
        # After a poll that brought chunks more may be ready at once; only an empty one waits.
        return 0.0 if self._last.stream_chunks else min(self.poll_interval_s, remaining)

    def _take(self, response: ApiResponse) -> None:
        self.polls += 1
        self._last = response
        chunks, drained = _drain_step(response, self.job_id)
        if drained:
            self.final = response
        self._pending.extend(chunks)


# --------------------------------------------------------------------------- sync client


class RunpodClient(_ClientBase):
    """Synchronous client for one endpoint, `{base}/{endpoint_id}`.

    `timeout` is the seconds a call may take beyond the server-side hold of its ?wait (so a
    runsync with the default 90 s wait gets 90 s + timeout). Pass `transport` (e.g.
    `httpx.MockTransport(respx_router.handler)`) or an existing `http_client` for tests; a
    client passed in is not closed by this one. `sleep` (429 backoff, polling) and `clock`
    (polling deadlines) are injectable so that tests never sleep.
    """

    def __init__(
        self,
        endpoint_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        auth_scheme: AuthScheme = "bearer",
        backoff: Backoff | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            endpoint_url,
            api_key,
            timeout=timeout,
            auth_scheme=auth_scheme,
            backoff=backoff,
            headers=headers,
            clock=clock,
        )
        self._owns_http = _owns_http(transport, http_client)
        self._http = (
            httpx.Client(transport=transport, trust_env=self._use_env)
            if http_client is None
            else http_client
        )
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self, operation_name: str | Operation, **options: Unpack[RequestOptions]
    ) -> ApiResponse:
        """Send any operation of the table; the typed methods below all come through here."""
        return self._execute(self._prepare(operation_name, **options))

    def _execute(self, call: _Call) -> ApiResponse:
        attempts = _Attempts(self, call)
        while True:
            request = self._build_request(self._http, call)
            try:
                with attempts.sending(request):
                    response = self._http.send(request)
            except TransportError as exc:
                dropped_delay = attempts.retry_delay_after_drop(exc)
                if dropped_delay is None:
                    raise
                self._sleep(dropped_delay)
                continue
            delay = attempts.retry_delay(response)
            if delay is None:
                return attempts.result(response)
            response.close()
            self._sleep(delay)

    # -- operations
    def run(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        body: Any = None,
        content: bytes | str | None = None,
        webhook: str | None = None,
        policy: Mapping[str, Any] | None = None,
        s3_config: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Submit a job: `{"input": input}` plus the options given (input defaults to {}), or
        `body` (JSON) / `content` (raw bytes) sent as is."""
        payload = _submission(
            input, body=body, content=content, webhook=webhook, policy=policy, s3_config=s3_config
        )
        return self._execute(self._build_submission("run", payload, options))

    def runsync(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        wait_ms: int | None = None,
        body: Any = None,
        content: bytes | str | None = None,
        webhook: str | None = None,
        policy: Mapping[str, Any] | None = None,
        s3_config: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Submit a job and wait up to `wait_ms` (the server's default when None) for its end;
        the HTTP timeout is that wait plus the call's timeout."""
        payload = _submission(
            input, body=body, content=content, webhook=webhook, policy=policy, s3_config=s3_config
        )
        return self._execute(self._build_submission("runsync", payload, options, wait_ms))

    def status(
        self,
        job_id: str,
        *,
        ttl_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """The job's state; `ttl_ms` asks the server to delete the job that many ms from now.
        `method="POST"` sends the alternative method the table lists."""
        return self._execute(self._build_job_call("status", job_id, options, method, ttl=ttl_ms))

    def status_sync(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Legacy status-sync: like status, but held up to `wait_ms` for the job to end."""
        call = self._build_job_call("status-sync", job_id, options, method, wait=wait_ms)
        return self._execute(call)

    def stream(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """One stream poll: the chunks produced since the previous one (see
        `stream_until_drained`)."""
        return self._execute(self._build_job_call("stream", job_id, options, method, wait=wait_ms))

    def cancel(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        return self._execute(self._build_job_call("cancel", job_id, options))

    def retry(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        """Requeue a FAILED or TIMED_OUT job (the API operation, not a client-side retry)."""
        return self._execute(self._build_job_call("retry", job_id, options))

    def purge_queue(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return self._execute(self._prepare("purge-queue", **options))

    def health(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return self._execute(self._prepare("health", **options))

    # -- helpers
    def wait_for_terminal(
        self, job_id: str, *, timeout_s: float = 60.0, poll_interval_s: float = 0.5
    ) -> ApiResponse:
        """Poll status until the job is terminal and return that answer.

        Raises JobTimeoutError after `timeout_s` (at least one poll is made; the last request
        may overrun by its own timeout), and ApiError on a non-2xx answer or a body without a
        status.
        """
        waiting = _TerminalWait(job_id, timeout_s, poll_interval_s, self._clock)
        while True:
            response = self.status(job_id)
            pause = waiting.pause_after(response)
            if pause is None:
                return response
            self._sleep(pause)

    def stream_until_drained(
        self,
        job_id: str,
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.25,
        wait_ms: int | None = None,
    ) -> StreamDrain:
        """Iterate over the job's stream chunks until it is terminal and a poll
        brings none; see `StreamDrain`."""
        return StreamDrain(self, job_id, timeout_s, poll_interval_s, wait_ms)


class StreamDrain(_DrainState[RunpodClient], Iterator[Any]):
    """Chunks of one job's stream, polled until the job is terminal and a poll brings none.

    Yields each chunk object as received (`{"output": ...}`). Afterwards `final` is the answer
    that ended it (its `status` tells COMPLETED from FAILED or CANCELLED) and `polls` counts the
    stream calls. Raises JobTimeoutError after `timeout_s` counted from the first poll (the last
    request may overrun by its own timeout), and ApiError on a non-2xx answer or a body without
    `status` and `stream`.
    """

    def __next__(self) -> Any:
        while not self._pending:
            if self.final is not None:
                raise StopIteration
            pause = self._pause_before_poll()
            if pause > 0:
                self._client._sleep(pause)
            self._take(self._client.stream(self.job_id, wait_ms=self._wait_ms))
        return self._pending.popleft()


# --------------------------------------------------------------------------- async client


class AsyncRunpodClient(_ClientBase):
    """Asynchronous twin of `RunpodClient` over httpx.AsyncClient (asyncio or trio)."""

    def __init__(
        self,
        endpoint_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        auth_scheme: AuthScheme = "bearer",
        backoff: Backoff | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            endpoint_url,
            api_key,
            timeout=timeout,
            auth_scheme=auth_scheme,
            backoff=backoff,
            headers=headers,
            clock=clock,
        )
        self._owns_http = _owns_http(transport, http_client)
        self._http = (
            httpx.AsyncClient(transport=transport, trust_env=self._use_env)
            if http_client is None
            else http_client
        )
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: _Client) -> _Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def request(
        self, operation_name: str | Operation, **options: Unpack[RequestOptions]
    ) -> ApiResponse:
        """Send any operation of the table; see `RunpodClient.request`."""
        return await self._execute(self._prepare(operation_name, **options))

    async def _execute(self, call: _Call) -> ApiResponse:
        attempts = _Attempts(self, call)
        while True:
            request = self._build_request(self._http, call)
            try:
                with attempts.sending(request):
                    response = await self._http.send(request)
            except TransportError as exc:
                dropped_delay = attempts.retry_delay_after_drop(exc)
                if dropped_delay is None:
                    raise
                await self._sleep(dropped_delay)
                continue
            delay = attempts.retry_delay(response)
            if delay is None:
                return attempts.result(response)
            await response.aclose()
            await self._sleep(delay)

    # -- operations
    async def run(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        body: Any = None,
        content: bytes | str | None = None,
        webhook: str | None = None,
        policy: Mapping[str, Any] | None = None,
        s3_config: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Submit a job: `{"input": input}` plus the options given (input defaults to {}), or
        `body` (JSON) / `content` (raw bytes) sent as is."""
        payload = _submission(
            input, body=body, content=content, webhook=webhook, policy=policy, s3_config=s3_config
        )
        return await self._execute(self._build_submission("run", payload, options))

    async def runsync(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        wait_ms: int | None = None,
        body: Any = None,
        content: bytes | str | None = None,
        webhook: str | None = None,
        policy: Mapping[str, Any] | None = None,
        s3_config: Mapping[str, Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Submit a job and wait up to `wait_ms` (the server's default when None) for its end;
        the HTTP timeout is that wait plus the call's timeout."""
        payload = _submission(
            input, body=body, content=content, webhook=webhook, policy=policy, s3_config=s3_config
        )
        return await self._execute(self._build_submission("runsync", payload, options, wait_ms))

    async def status(
        self,
        job_id: str,
        *,
        ttl_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """The job's state; `ttl_ms` asks the server to delete the job that many ms from now.
        `method="POST"` sends the alternative method the table lists."""
        call = self._build_job_call("status", job_id, options, method, ttl=ttl_ms)
        return await self._execute(call)

    async def status_sync(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """Legacy status-sync: like status, but held up to `wait_ms` for the job to end."""
        call = self._build_job_call("status-sync", job_id, options, method, wait=wait_ms)
        return await self._execute(call)

    async def stream(
        self,
        job_id: str,
        *,
        wait_ms: int | None = None,
        method: str | None = None,
        **options: Unpack[CallOptions],
    ) -> ApiResponse:
        """One stream poll: the chunks produced since the previous one (see
        `stream_until_drained`)."""
        call = self._build_job_call("stream", job_id, options, method, wait=wait_ms)
        return await self._execute(call)

    async def cancel(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        return await self._execute(self._build_job_call("cancel", job_id, options))

    async def retry(self, job_id: str, **options: Unpack[CallOptions]) -> ApiResponse:
        """Requeue a FAILED or TIMED_OUT job (the API operation, not a client-side retry)."""
        return await self._execute(self._build_job_call("retry", job_id, options))

    async def purge_queue(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return await self._execute(self._prepare("purge-queue", **options))

    async def health(self, **options: Unpack[CallOptions]) -> ApiResponse:
        return await self._execute(self._prepare("health", **options))

    # -- helpers
    async def wait_for_terminal(
        self, job_id: str, *, timeout_s: float = 60.0, poll_interval_s: float = 0.5
    ) -> ApiResponse:
        """Poll status until the job is terminal and return that answer.

        Raises JobTimeoutError after `timeout_s` (at least one poll is made; the last request
        may overrun by its own timeout), and ApiError on a non-2xx answer or a body without a
        status.
        """
        waiting = _TerminalWait(job_id, timeout_s, poll_interval_s, self._clock)
        while True:
            response = await self.status(job_id)
            pause = waiting.pause_after(response)
            if pause is None:
                return response
            await self._sleep(pause)

    def stream_until_drained(
        self,
        job_id: str,
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.25,
        wait_ms: int | None = None,
    ) -> AsyncStreamDrain:
        """Iterate with `async for` over the job's stream chunks until it is terminal and a poll
        brings none; see `StreamDrain`."""
        return AsyncStreamDrain(self, job_id, timeout_s, poll_interval_s, wait_ms)


class AsyncStreamDrain(_DrainState[AsyncRunpodClient], AsyncIterator[Any]):
    """Asynchronous twin of `StreamDrain`: `async for chunk in drain`."""

    async def __anext__(self) -> Any:
        while not self._pending:
            if self.final is not None:
                raise StopAsyncIteration
            pause = self._pause_before_poll()
            if pause > 0:
                await self._client._sleep(pause)
            self._take(await self._client.stream(self.job_id, wait_ms=self._wait_ms))
        return self._pending.popleft()
