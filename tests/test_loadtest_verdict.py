"""Self-tests of runpod_testkit.loadtest.verdict: responses under load, and failure names."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from runpod_testkit.loadtest.verdict import MEMO_MAX_BYTES, LastVerdicts, judge
from runpod_testkit.operations import OPERATIONS
from runpod_testkit.schemas import ContractValidator

JOB_ID = "5d6e2a1c-3f4b-4a7e-9c8d-0123456789ab-u1"


@pytest.fixture(scope="module")
def validator() -> ContractValidator:
    return ContractValidator()


def verdict_of(validator: ContractValidator, op: str, status: int, body: Any) -> Any:
    return judge(validator, OPERATIONS[op], status, orjson.dumps(body))


def test_a_valid_status_body_is_no_failure(validator: ContractValidator) -> None:
    body = {"delayTime": 12, "executionTime": 500, "id": JOB_ID, "status": "COMPLETED"}
    verdict = verdict_of(validator, "status", 200, body)
    assert verdict.failure is None
    assert verdict.usable
    assert verdict.field("status") == "COMPLETED"
    assert verdict.drift == ()


def test_a_violation_is_named_by_its_rule_without_the_value(
    validator: ContractValidator,
) -> None:
    for bad in (-5, -7, "soon"):
        body = {"delayTime": bad, "id": JOB_ID, "status": "IN_PROGRESS"}
        verdict = verdict_of(validator, "status", 200, body)
        assert verdict.failure is not None
        assert verdict.failure.startswith("status: /delayTime: expected ")
        assert str(bad) not in verdict.failure
        assert JOB_ID not in verdict.failure
        assert verdict.usable  # still followed: the job's state is readable


def test_one_rule_one_name_whatever_the_value(validator: ContractValidator) -> None:
    names = {
        verdict_of(
            validator, "status", 200, {"delayTime": v, "id": JOB_ID, "status": "IN_QUEUE"}
        ).failure
        for v in (-1, -2, -3)
    }
    assert len(names) == 1


def test_array_indexes_fold_into_one_name(validator: ContractValidator) -> None:
    names = set()
    for index in range(3):
        stream: list[Any] = [{"output": {"index": i}} for i in range(3)]
        stream[index] = {"not_output": 1}
        verdict = verdict_of(validator, "stream", 200, {"status": "IN_PROGRESS", "stream": stream})
        assert verdict.failure is not None
        names.add(verdict.failure)
    assert len(names) == 1
    (name,) = names
    assert name.startswith("stream: /stream/*")


def test_error_statuses(validator: ContractValidator) -> None:
    limited = verdict_of(validator, "run", 429, {"error": "rate limit of /run exceeded"})
    assert limited.failure == "run: throttled (HTTP 429)"
    assert not limited.usable
    bad_limit = verdict_of(validator, "run", 429, {"error": 7})
    assert bad_limit.failure == "run: throttled (HTTP 429) (error body /error: expected a string)"
    teapot = verdict_of(validator, "status", 418, {"error": "short and stout"})
    assert teapot.failure == "status: unexpected HTTP 418"


@pytest.mark.parametrize("status_code", [500, 502, 503, 504])
def test_a_server_error_is_not_a_contract_violation(
    validator: ContractValidator, status_code: int
) -> None:
    """A 5xx body is whatever the proxy in front sent (HTML, nothing): it is never validated,
    and the failure is named by its kind, one row per status code."""
    for body in (b"<html>Bad Gateway</html>", b"", b'{"error": 1}'):
        verdict = judge(validator, OPERATIONS["status"], status_code, body)
        assert verdict.failure == f"status: server error (HTTP {status_code})"
        assert not verdict.usable
        assert not verdict.drift
    broken = verdict_of(validator, "status", 404, {"error": 404})
    assert broken.failure is not None
    assert broken.failure == "status: HTTP 404 (error body /error: expected a string)"


def test_not_json_and_no_response(validator: ContractValidator) -> None:
    html = judge(validator, OPERATIONS["health"], 200, b"<html>busy</html>")
    assert html.failure == "health: HTTP 200, body is not JSON"
    assert html.body is None
    assert not html.usable
    refused = judge(validator, OPERATIONS["run"], 0, None, ConnectionRefusedError(111, "refused"))
    assert refused.failure == "run: connection error (ConnectionRefusedError)"
    assert refused.status_code == 0


def test_drift_is_reported_not_failed(validator: ContractValidator) -> None:
    body = {"id": JOB_ID, "status": "IN_QUEUE", "priority": 3}
    verdict = verdict_of(validator, "status", 200, body)
    assert verdict.failure is None
    assert len(verdict.drift) == 1
    assert verdict.drift[0].startswith("status: /priority: undocumented property")


class CountingValidator(ContractValidator):
    """Counts the fast-path checks run: one per 200 answer judged, and one more inside the
    full check of an answer that fails it."""

    checks = 0

    def passes(self, schema_name: str, body: Any) -> bool:
        self.checks += 1
        return super().passes(schema_name, body)


def test_a_repeated_answer_reuses_its_verdict_and_a_new_one_is_judged() -> None:
    validator = CountingValidator()
    last = LastVerdicts(validator)
    status = OPERATIONS["status"]
    waiting = orjson.dumps({"id": JOB_ID, "status": "IN_QUEUE"})
    bad = orjson.dumps({"delayTime": -1, "id": JOB_ID, "status": "IN_PROGRESS"})
    first = last(status, 200, waiting)
    assert last(status, 200, bytes(bytearray(waiting))) is first  # equal bytes, not identity
    assert validator.checks == 1
    broken = last(status, 200, bad)
    assert broken.failure == judge(validator, status, 200, bad).failure
    assert broken.failure is not None
    assert last(status, 200, bad) is broken  # a repeated violation is still a failure
    assert last(status, 200, waiting) == first  # judged again: only the last answer is kept
    run = last(OPERATIONS["run"], 200, waiting)  # another operation: its own verdict
    assert run is not first
    assert validator.checks == 7  # waiting, bad x2, bad x2 (direct judge), waiting, run


def test_errors_and_large_answers_are_judged_every_time() -> None:
    validator = CountingValidator()
    last = LastVerdicts(validator)
    status = OPERATIONS["status"]
    big = orjson.dumps(
        {
            "id": JOB_ID,
            "status": "COMPLETED",
            "delayTime": 3,
            "executionTime": 5,
            "output": "x" * MEMO_MAX_BYTES,
        }
    )
    assert last(status, 200, big) == last(status, 200, big)
    assert validator.checks == 2
    lost = last(status, 0, None, ConnectionResetError())
    assert lost.failure == "status: connection error (ConnectionResetError)"
