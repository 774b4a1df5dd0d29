"""Helpers the contract checks share: the target's clock, traced jobs, stream drains, and the
lenient reading of undocumented answers (error bodies). Nothing here assumes emulator specifics:
ids are opaque, timings are only bounded by what the reference implies."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient
from runpod_testkit.operations import ERROR_SCHEMA, JobStatus, operation
from runpod_testkit.probe_protocol import ProbeInput, ProbeInputError
from runpod_testkit.schemas import misspelling_of
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

__all__ = [
    "HEALTH_LAG_S",
    "NON_TERMINAL",
    "RUNSYNC_DEFAULT_WAIT_MS",
    "RUNSYNC_SHORT_WAIT_MS",
    "TIMING_SLACK_MS",
    "JobTrace",
    "StreamRecord",
    "check",
    "drain_stream",
    "fail",
    "follow",
    "lifecycle_findings",
    "note_error_body",
    "note_undocumented_body",
    "now",
    "pause",
    "poll_until",
    "probe_plan",
    "redact_with",
    "refund",
    "require_ok",
    "send_budgeted",
    "shape",
    "submit_job",
    "submit_traced",
    "timing_findings",
    "unknown_job_id",
    "unknown_job_refused",
    "where",
    "wrong_key_headers",
]

NON_TERMINAL = frozenset({JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS, "RUNNING"})
"""States of a job still on its way; RUNNING is documented on one page only
(docs/job-states.md#state-words)."""

_RUNSYNC_WAIT = operation("runsync").query_param("wait")
assert _RUNSYNC_WAIT is not None
assert _RUNSYNC_WAIT.default is not None
RUNSYNC_SHORT_WAIT_MS = _RUNSYNC_WAIT.minimum
"""The shortest ?wait /runsync accepts (docs/operations/runsync.md: 1000-300000 ms)."""
RUNSYNC_DEFAULT_WAIT_MS = _RUNSYNC_WAIT.default
"""What /runsync waits without ?wait (90 s)."""

TIMING_SLACK_MS = 1000
"""Allowance for rounding and network time when a reported duration is compared with what the
suite observed from outside."""

HEALTH_LAG_S = 15.0
"""Longest wait for /health counters to catch up with the jobs (whether they lag is
undocumented); bounded by --job-timeout as well."""

# Position of a state in the job's life (docs/job-states.md#order); a job never moves to a
# lower rank.
_RANK = {
    JobStatus.IN_QUEUE: 0,
    JobStatus.IN_PROGRESS: 1,
    "RUNNING": 1,
    **dict.fromkeys(JobStatus.TERMINAL, 2),
}


# --- failing with a message that names operation and rule -------------------------------------


_redactors: list[Callable[[str], str]] = []


@contextlib.contextmanager
def redact_with(redactor: Callable[[str], str]) -> Iterator[None]:
    """Within it, every failure message passes through `redactor` (a client's, which removes
    the API key): an endpoint that echoes the key into a body must not get it printed."""
    _redactors.append(redactor)
    try:
        yield
    finally:
        _redactors.remove(redactor)


def fail(message: str) -> NoReturn:
    for redactor in _redactors:
        message = redactor(message)
    pytest.fail(message, pytrace=False)


def check(condition: bool, message: str) -> None:
    """Fail the check with `message` (which names the operation and the rule) unless true."""
    if not condition:
        fail(message)


def where(response: ApiResponse) -> str:
    return f"{response.operation} -> HTTP {response.status_code}"


def state_of(response: ApiResponse) -> str:
    """The job status a read shows, or what made it unreadable (for failure messages)."""
    if response.status is not None:
        return response.status
    return f"unreadable ({where(response)}, no job status in the body)"


def require_ok(response: ApiResponse, rule: str) -> None:
    """A 2xx answer, or fail naming the rule (the body excerpt is redacted by the client)."""
    if not response.ok:
        fail(f"{rule}: {response.describe('expected a 2xx answer')}")


def shape(contract: ContractChecks, response: ApiResponse, rule: str) -> Any:
    """A 2xx JSON answer with a JSON content type whose body matches its schema; the body."""
    require_ok(response, rule)
    try:
        body = contract.shape(response)
        contract.json_content_type(response)
    except pytest.fail.Exception as failure:
        fail(f"{rule}: {failure.msg}")  # the same finding, with the rule it breaks
    return body


def note_error_body(contract: ContractChecks, response: ApiResponse) -> None:
    """Error bodies are undocumented (docs/operations/status.md#unknown-job-404): anything but a
    JSON object with a string `error` is reported as drift, never as a failure."""
    note_undocumented_body(contract, response, ERROR_SCHEMA)


def note_undocumented_body(contract: ContractChecks, response: ApiResponse, schema: str) -> Any:
    """Check an answer whose body the reference does not pin down against `schema`, reporting
    every difference as drift; the parsed body (None when it is not JSON)."""
    messages: list[str] = []
    if not response.is_json:
        messages.append(response.describe("the body is not JSON"))
    else:
        result = contract.suite.validator.check(schema, response.json)
        messages += [finding.message for finding in result.violations + result.drift]
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type.lower():
            messages.append(f"content type {content_type!r} of a JSON body")
    contract.drift(where(response), messages)
    return response.json


def unknown_job_refused(
    client: RunpodClient,
    contract: ContractChecks,
    operation: str,
    *,
    route_seen: ApiResponse | None = None,
    must_see_route: bool = False,
) -> None:
    """`operation` on an id no job has is refused: 404 (exactly, for /status), another 4xx is
    drift, a 2xx claims a job that does not exist. A server without the route answers 404 to
    everything, so with `must_see_route` the 404 counts only if `route_seen`, the same route's
    answer for a job that exists, is not a 404 too (docs/operations/cancel.md#unknown-job-404)."""
    rule = f"{operation}: unknown-job-404"
    job_id = unknown_job_id()
    answer = client.request(operation, job_id=job_id)
    if answer.ok:
        fail(f"{rule}: answered as if job {job_id!r} existed: {answer.describe()}")
    if operation == "status":
        check(answer.status_code == 404, f"{rule}: {answer.describe('expected 404 Not Found')}")
    else:
        check(400 <= answer.status_code < 500, f"{rule}: {answer.describe('expected 404')}")
        if answer.status_code != 404:
            contract.drift(operation, [f"HTTP {answer.status_code} for an unknown job"])
    note_error_body(contract, answer)
    if not must_see_route:
        return
    if route_seen is None:
        pytest.skip(
            f"no /{operation} of a job that exists was answered, so its 404 for an unknown id "
            "cannot be told from a missing route"
        )
    if route_seen.status_code == 404:
        fail(
            f"{rule}: the route is not served: {route_seen.describe('for a job that exists')}; "
            f"its 404 for an unknown id proves nothing"
        )


def unknown_job_id() -> str:
    """An id no endpoint has issued (ids are opaque strings, docs/operations/run.md#shape)."""
    return f"contract-unknown-{uuid.uuid4().hex}"


def wrong_key_headers(client: RunpodClient) -> dict[str, str]:
    """An Authorization header with a key no account has, in the form the target takes."""
    wrong = f"contract-suite-wrong-key-{uuid.uuid4().hex}"
    return {"Authorization": f"Bearer {wrong}" if client.auth_scheme == "bearer" else wrong}


# --- the target's clock: real time, or the mock's virtual clock (which jumps, never sleeps) ----


def now(target: SuiteTarget) -> float:
    return target.now()


def pause(target: SuiteTarget, seconds: float) -> None:
    target.sleep(seconds)


def poll_until(
    target: SuiteTarget,
    read: Callable[[], ApiResponse],
    done: Callable[[ApiResponse], bool],
    *,
    timeout_s: float | None = None,
    interval_s: float | None = None,
) -> tuple[ApiResponse, bool]:
    """Read until `done(answer)` or the time is up (at least one read); (last answer, done)."""
    limit = target.job_timeout_s if timeout_s is None else min(timeout_s, target.job_timeout_s)
    interval = target.poll_interval_s if interval_s is None else interval_s
    deadline = now(target) + limit
    while True:
        answer = read()
        if done(answer):
            return answer, True
        remaining = deadline - now(target)
        if remaining <= 0:
            return answer, False
        pause(target, min(interval, remaining))


# --- probe expectations -------------------------------------------------------------------------


def probe_plan(probe_inputs: ProbeInputs, job_input: dict[str, Any]) -> ProbeInput | None:
    """What a probe handler does with `job_input`, or None when the target runs another handler
    (then only shapes can be checked)."""
    if not probe_inputs.is_probe:
        return None
    try:
        return ProbeInput.parse(job_input)
    except ProbeInputError:
        return None


# --- traced jobs ----------------------------------------------------------------------------------


@dataclass
class JobTrace:
    """One job followed from its submission to a terminal state: every answer, in order."""

    job_id: str
    job_input: dict[str, Any]
    first: ApiResponse
    """The answer that started this stretch of the job's life (/run, /runsync or /retry)."""
    started_at: float
    """Target clock just before `first` was requested."""
    first_at: float
    """Target clock when `first` arrived."""
    reads: list[ApiResponse] = field(default_factory=list)
    """Every /status answer after `first`, in order."""
    read_at: list[float] = field(default_factory=list)
    """Target clock when each read arrived."""

    @property
    def final(self) -> ApiResponse:
        return self.reads[-1] if self.reads else self.first

    @property
    def answers(self) -> list[ApiResponse]:
        return [self.first, *self.reads]

    @property
    def statuses(self) -> list[str | None]:
        return [answer.status for answer in self.answers]

    def elapsed_ms(self, index: int) -> float:
        """Milliseconds from just before submission to the arrival of answer `index`."""
        arrived = self.first_at if index == 0 else self.read_at[index - 1]
        return (arrived - self.started_at) * 1000


def follow(
    client: RunpodClient,
    ledger: JobLedger,
    target: SuiteTarget,
    trace: JobTrace,
) -> JobTrace:
    """Poll /status until the job is terminal, recording every answer; fail naming the
    operation if a read is refused or the job outlasts --job-timeout."""
    deadline = now(target) + target.job_timeout_s
    answer = trace.final
    while not answer.is_terminal:
        _fail_if_misspelled(answer, trace.job_id)
        remaining = deadline - now(target)
        if remaining <= 0:
            fail(
                f"status: job {trace.job_id!r} is still {answer.status} after "
                f"{target.job_timeout_s:g} s (--job-timeout); the endpoint may have no workers"
            )
        if trace.reads:
            pause(target, min(target.poll_interval_s, remaining))
        answer = client.status(trace.job_id)
        trace.reads.append(answer)
        trace.read_at.append(now(target))
        if not answer.ok:
            fail(f"status: while following job {trace.job_id!r}: {answer.describe()}")
        if answer.status is None:
            fail(f"status: no job status in the answer: {answer.describe()}")
    ledger.observe(answer)
    return trace


def _fail_if_misspelled(answer: ApiResponse, job_id: str) -> None:
    """A documented state spelled another way never reads as terminal: say so at once instead
    of waiting out --job-timeout (docs/job-states.md#spelling)."""
    if answer.status is None:
        return
    documented = misspelling_of(answer.status, JobStatus.ALL)
    if documented is not None:
        fail(
            f"{answer.operation}: job {job_id!r} reads {answer.status!r}, the documented "
            f"{documented!r} spelled another way: clients compare states exactly"
        )


def refund(ledger: JobLedger) -> None:
    """Give back the budget of a submission the endpoint refused: it started no job, so it
    is not counted among the jobs submitted."""
    ledger.refund()


def send_budgeted(
    ledger: JobLedger, client: RunpodClient, send: Callable[[], ApiResponse]
) -> ApiResponse:
    """Send a request that may start a job (a submission or a retry, valid or not) within the
    job budget: a refused one is refunded, an accepted one is tracked until it settles."""
    ledger.reserve()
    answer = send()
    if not answer.ok:
        refund(ledger)
    elif answer.job_id and not answer.is_terminal:
        ledger.track(answer.job_id, client)
    return answer


def submit_job(
    ledger: JobLedger,
    client: RunpodClient,
    job_input: dict[str, Any],
    *,
    sync: bool = False,
    wait_ms: int | None = None,
) -> ApiResponse:
    """Submit a valid job through the ledger (/run, or /runsync when `sync`); fail naming the
    operation if the endpoint refuses it or answers without a job id."""
    operation = "runsync" if sync else "run"
    answer = ledger.submit(client, job_input, sync=sync, wait_ms=wait_ms)
    if not answer.ok:
        refund(ledger)
        fail(f"{operation}: a valid job was refused: {answer.describe()}")
    if not answer.job_id:
        fail(f"{operation}: no job id in the answer: {answer.describe()}")
    return answer


def submit_traced(
    client: RunpodClient,
    ledger: JobLedger,
    target: SuiteTarget,
    job_input: dict[str, Any],
    *,
    sync: bool = False,
    wait_ms: int | None = None,
    run_to_end: bool = True,
) -> JobTrace:
    """Submit one job through the ledger (budgeted, cancelled at the end if left running) and,
    unless told otherwise, follow it to its end."""
    started = now(target)
    first = submit_job(ledger, client, job_input, sync=sync, wait_ms=wait_ms)
    assert first.job_id is not None  # submit_job fails otherwise
    trace = JobTrace(first.job_id, job_input, first, started, now(target))
    if first.is_terminal:
        ledger.observe(first)
    elif run_to_end:
        follow(client, ledger, target, trace)
    return trace


# --- judging a trace ------------------------------------------------------------------------------


def lifecycle_findings(statuses: list[str | None]) -> tuple[list[str], list[str]]:
    """(breaks, drift) of a sequence of observed states: a job only moves forward, IN_QUEUE ->
    IN_PROGRESS -> one terminal state, and a terminal state never changes
    (docs/job-states.md#order). Going back from IN_PROGRESS to IN_QUEUE is implied (worker
    loss) but undocumented: drift."""
    breaks: list[str] = []
    drift: list[str] = []
    previous: str | None = None
    for index, status in enumerate(statuses):
        if status not in _RANK:
            continue  # unknown states are the shape check's business
        if previous is not None and status != previous:
            step = f"{previous} -> {status} (answer {index})"
            if previous in JobStatus.TERMINAL:
                breaks.append(f"a terminal job changed state: {step}")
            elif _RANK[status] < _RANK[previous]:
                if status == JobStatus.IN_QUEUE:
                    drift.append(f"a running job went back to the queue: {step}")
                else:
                    breaks.append(f"the job went backwards: {step}")
        previous = status
    return breaks, drift


def timing_findings(trace: JobTrace, plan: ProbeInput | None) -> list[str]:
    """Reported timings that cannot be true: more time than the suite saw pass, or (for a probe
    job, whose handler sleeps a known time) less execution time than the handler ran."""
    problems: list[str] = []
    for index, answer in enumerate(trace.answers):
        delay, execution = answer.delay_time_ms, answer.execution_time_ms
        reported = (delay or 0) + (execution or 0)
        observed = trace.elapsed_ms(index)
        allowed = observed * 1.05 + TIMING_SLACK_MS
        if reported > allowed:
            problems.append(
                f"{answer.operation} answer {index}: delayTime + executionTime = {reported} ms, "
                f"but only {observed:.0f} ms passed since the job was submitted"
            )
    final = trace.final
    execution = final.execution_time_ms
    if (
        plan is not None
        and final.status in (JobStatus.COMPLETED, JobStatus.FAILED)
        and execution is not None
    ):
        ran_ms = plan.duration_ms
        if execution < ran_ms * 0.9 - 10:
            problems.append(
                f"{final.operation}: executionTime {execution} ms, but the probe handler "
                f"ran {ran_ms} ms (milliseconds expected)"
            )
    return problems


# --- /stream ------------------------------------------------------------------------------------


@dataclass
class StreamRecord:
    """One job's stream drained to its end: every /stream answer, and what followed."""

    job_id: str
    job_input: dict[str, Any]
    polls: list[ApiResponse] = field(default_factory=list)
    drained: ApiResponse | None = None
    """The terminal answer with an empty stream that ended the drain; None if never reached."""
    problem: str | None = None
    """Why the drain stopped early (a refused poll, no `stream` list, the time ran out)."""
    again: ApiResponse | None = None
    """One more poll after the drain."""
    status: ApiResponse | None = None
    """/status after the drain."""

    @property
    def outputs(self) -> list[Any]:
        """The `output` of every chunk handed out before the drain ended, in order."""
        return [output for poll in self.polls for output in poll.stream_outputs]


def drain_stream(
    client: RunpodClient, target: SuiteTarget, job_id: str, job_input: dict[str, Any]
) -> StreamRecord:
    """Poll /stream until the job is terminal and a poll brings no chunk
    (docs/operations/stream.md#drains), bounded by --job-timeout and a poll count, recording
    every answer."""
    record = StreamRecord(job_id, job_input)
    deadline = now(target) + target.job_timeout_s
    max_polls = 2000
    while True:
        answer = client.stream(job_id)
        record.polls.append(answer)
        chunks = answer.stream_chunks
        if not answer.ok or answer.status is None or chunks is None:
            record.problem = answer.describe("expected a 2xx answer with `status` and `stream`")
            return record
        if answer.is_terminal and not chunks:
            record.drained = answer
            break
        remaining = deadline - now(target)
        if remaining <= 0 or len(record.polls) >= max_polls:
            record.problem = (
                f"not drained after {len(record.polls)} polls in {target.job_timeout_s:g} s "
                f"(--job-timeout); last status {answer.status}"
            )
            return record
        # After a poll that brought chunks more may be ready soon; an empty one waits longer.
        interval = target.poll_interval_s / 5 if chunks else target.poll_interval_s
        pause(target, min(interval, remaining))
    record.again = client.stream(job_id)
    record.status = client.status(job_id)
    return record
