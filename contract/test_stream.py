"""/stream: incremental results (docs/operations/stream.md): every answer is {"status", "stream":
[{"output": ...}, ...]}; each call hands out only the chunks produced since the previous one (it
drains); a terminal, drained job answers with an empty stream, and keeps doing so; /status then
agrees with how the stream ended."""

from __future__ import annotations

from typing import Any

import pytest

from runpod_testkit.client import RunpodClient
from runpod_testkit.operations import JobStatus
from runpod_testkit.suite.ledger import JobLedger
from runpod_testkit.suite.plugin import ContractChecks
from runpod_testkit.suite.probe_inputs import ProbeInputs
from runpod_testkit.suite.target import SuiteTarget

from ._support import (
    StreamRecord,
    check,
    drain_stream,
    fail,
    probe_plan,
    require_ok,
    shape,
    submit_job,
)

DOC = "docs/operations/stream.md"


@pytest.fixture(scope="module")
def stream_record(
    client: RunpodClient, ledger: JobLedger, target: SuiteTarget, probe_inputs: ProbeInputs
) -> StreamRecord:
    """A streaming job submitted with /run and drained once, every answer kept."""
    job_input = probe_inputs.get("stream")
    if job_input is None:
        pytest.skip("--probe-inputs gives no 'stream' input, so /stream cannot be checked")
    submitted = submit_job(ledger, client, job_input)
    record = drain_stream(client, target, submitted.job_id or "", job_input)
    if record.status is not None:
        ledger.observe(record.status)
    return record


def _require_drained(record: StreamRecord, rule: str) -> None:
    if record.problem is not None:
        fail(f"stream: {rule}: {record.problem}")


def _skip_if_nothing_streamed(record: StreamRecord, probe_inputs: ProbeInputs) -> None:
    if not record.outputs and probe_plan(probe_inputs, record.job_input) is None:
        pytest.skip(
            "the job ended without handing out a single chunk: the handler does not stream "
            "(or streams only to /status), so drain semantics cannot be checked"
        )


@pytest.mark.contract("stream", "shape", ref=f"{DOC}#shape")
def test_every_stream_answer_has_status_and_chunks(
    stream_record: StreamRecord, contract: ContractChecks
) -> None:
    """stream: every answer is 200 JSON {"status", "stream": [chunk...]}, each chunk an object
    with an `output`."""
    answers = [*stream_record.polls, *([stream_record.again] if stream_record.again else [])]
    for index, answer in enumerate(answers):
        shape(contract, answer, f"stream: shape (poll {index + 1})")


@pytest.mark.contract("stream", "drains", ref=f"{DOC}#drains")
def test_each_chunk_is_handed_out_once_in_order(
    stream_record: StreamRecord, probe_inputs: ProbeInputs
) -> None:
    """stream: the chunks handed out, in order, are exactly what the handler yielded: none
    repeated after it was drained, none lost."""
    _require_drained(stream_record, "drains")
    _skip_if_nothing_streamed(stream_record, probe_inputs)
    plan = probe_plan(probe_inputs, stream_record.job_input)
    if plan is None:
        return  # another handler: the repeat check after the drain is all that can be said
    outputs = stream_record.outputs
    expected = [plan.yielded(index) for index in range(plan.yield_count)]
    for index, output in enumerate(outputs):
        if output in outputs[:index]:
            fail(f"stream: drains: a chunk was repeated after it was drained (index {index})")
        if index >= len(expected) or output != expected[index]:
            wanted = expected[index] if index < len(expected) else "no more chunks"
            fail(f"stream: drains: chunk {index} is {output!r}, the probe yielded {wanted!r}")
    check(
        len(outputs) == len(expected),
        f"stream: drains: the job ended after {len(outputs)} of the {len(expected)} chunks "
        "the probe yields were handed out",
    )


@pytest.mark.contract("stream", "terminal-empty", ref=f"{DOC}#terminal-empty")
def test_a_drained_job_answers_an_empty_stream(stream_record: StreamRecord) -> None:
    """stream: once the job has ended and its chunks were handed out, /stream answers its
    terminal status with `"stream": []`, and keeps doing so (no chunk comes back)."""
    _require_drained(stream_record, "terminal-empty")
    drained, again = stream_record.drained, stream_record.again
    # Both are set whenever no problem was recorded.
    assert drained is not None
    assert again is not None
    check(
        drained.status == JobStatus.COMPLETED,
        f"stream: terminal-empty: the streaming job ended {drained.status}, expected COMPLETED",
    )
    require_ok(again, "stream: terminal-empty (a poll after the drain)")
    chunks = again.stream_chunks
    check(
        chunks is not None and not chunks,
        f"stream: terminal-empty: a poll after the drain handed out {len(chunks or [])} "
        "chunk(s) again",
    )
    check(
        again.status == drained.status,
        f"stream: terminal-empty: after the drain the status went from {drained.status} "
        f"to {again.status}",
    )


@pytest.mark.contract("stream", "status-agrees", ref=f"{DOC}#status-agrees")
def test_status_agrees_with_the_stream(
    stream_record: StreamRecord, probe_inputs: ProbeInputs
) -> None:
    """stream: /status after the drain shows the same terminal state; a probe job's output
    is the list of what it streamed (return_aggregate_stream)."""
    _require_drained(stream_record, "status-agrees")
    drained, status = stream_record.drained, stream_record.status
    assert drained is not None
    assert status is not None
    rule = "stream: status-agrees"
    require_ok(status, rule)
    check(
        status.status == drained.status,
        f"{rule}: /stream ended {drained.status} but /status says {status.status}",
    )
    plan = probe_plan(probe_inputs, stream_record.job_input)
    if plan is not None:
        aggregated: Any = plan.final_output()
        check(
            status.output == aggregated,
            f"{rule}: /status output {status.output!r}, the probe streamed {aggregated!r}",
        )
