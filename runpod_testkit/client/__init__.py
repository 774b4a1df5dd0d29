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

from runpod_testkit.client._async import AsyncRunpodClient, AsyncStreamDrain
from runpod_testkit.client._backoff import READS, RETRIED_READ_STATUSES, Backoff, parse_retry_after
from runpod_testkit.client._errors import RequestTimeout, RunpodClientError, TransportError
from runpod_testkit.client._request import (
    DEFAULT_TIMEOUT_S,
    AuthScheme,
    CallOptions,
    RequestOptions,
    SubmitOptions,
)
from runpod_testkit.client._response import ApiError, ApiResponse, JobTimeoutError
from runpod_testkit.client._sync import RunpodClient, StreamDrain

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
    "SubmitOptions",
    "TransportError",
    "parse_retry_after",
]

# Reprs, tracebacks and pickles keep naming the package, as they did before the split (httpx
# does the same for its own modules).
for _name in __all__:
    _member = globals()[_name]
    if isinstance(_member, type):
        _member.__module__ = __name__
del _name, _member
