"""Self-tests of EndpointCaller with the process's Safeguards: what is sent again, when, and how
it is counted, against a loopback server that answers from a script.

Importing Locust monkey-patches the process, so the calls run in a child Python process; it
prints, per scenario, the requests the server saw (with their times), the verdict and the counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # a child process, and Retry-After makes it wait a second twice

CHILD = textwrap.dedent(
    r"""
    import json, time
    from gevent.server import StreamServer
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import EventHook
    from runpod_testkit.jobstats import JobStats
    from runpod_testkit.loadtest.caller import DriftLog, EndpointCaller
    from runpod_testkit.loadtest.failsafe import Backoff, RefusalBreaker, Safeguards
    from runpod_testkit.operations import OPERATIONS
    from tests.raw_http import requests_on

    JOB = "5d6e2a1c-3f4b-4a7e-9c8d-0123456789ab-u1"
    OK = {
        "run": json.dumps({"id": JOB, "status": "IN_QUEUE"}).encode(),
        "status": json.dumps({"id": JOB, "status": "IN_QUEUE"}).encode(),
        "cancel": json.dumps({"id": JOB, "status": "CANCELLED"}).encode(),
    }
    script = []  # what to answer next: a status code, or "reset" (close without answering)
    seen = []

    def serve(sock, _address):
        for head, _body in requests_on(sock):
            operation = head.split(b" ")[1].decode().split("/")[3]
            seen.append((operation, time.monotonic()))
            action = script.pop(0) if script else 200
            if action == "reset":
                sock.close()
                return
            extra = b""
            if action == 200:
                body = OK[operation]
            elif action == 429:
                body, extra = b'{"error": "slow down"}', b"Retry-After: 1\r\n"
            else:
                body = b"<html>Service Unavailable</html>"
            reason = {200: b"OK", 429: b"Too Many Requests", 401: b"Unauthorized"}.get(
                action, b"Error")
            sock.sendall(b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
                action, reason, len(body), extra, body))

    server = StreamServer(("127.0.0.1", 0), serve)
    server.start()
    base = f"http://127.0.0.1:{server.server_port}/v2/ep"

    def scenario(op, answers, *, job_id=None, deadline_s=None, refusal_limit=0):
        script[:] = answers
        seen.clear()
        events, fired = EventHook(), []
        events.add_listener(lambda **kw: fired.append(kw))
        stats = JobStats()
        trips = []
        guard = Safeguards(stats, breaker=RefusalBreaker(refusal_limit, trips.append),
                           backoff=Backoff(max_retries=3, base_s=0.05))
        session = FastHttpSession(base, request_event=events, user=None, insecure=False,
                                  headers={"Authorization": "Bearer k"})
        caller = EndpointCaller(session, validator, DriftLog(), guard)
        body = b'{"input": {}}' if op in ("run", "runsync") else None
        deadline = None if deadline_s is None else time.time() + deadline_s
        verdict = caller.call(OPERATIONS[op], job_id, body=body, deadline=deadline)
        times = [t for _, t in seen]
        return {
            "sent": len(seen),
            "gaps": [b - a for a, b in zip(times, times[1:])],
            "status": verdict.status_code,
            "failures": [str(kw["exception"]) for kw in fired if kw["exception"]],
            "requests": stats.request_counts(),
            "trips": trips,
        }

    from runpod_testkit.schemas import ContractValidator
    validator = ContractValidator()
    print(json.dumps({
        "status_5xx": scenario("status", [503, 502], job_id=JOB),
        "status_429": scenario("status", [429], job_id=JOB),
        "cancel_reset": scenario("cancel", ["reset"], job_id=JOB),
        "run_429": scenario("run", [429]),
        "run_5xx": scenario("run", [503]),
        "run_reset": scenario("run", ["reset"]),
        "status_spent": scenario("status", [503] * 10, job_id=JOB),
        "status_deadline": scenario("status", [429] * 10, job_id=JOB, deadline_s=0.5),
        "refused": scenario("status", [401] * 10, job_id=JOB, refusal_limit=1),
    }))
    """
)


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO,  # the child imports tests.raw_http
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def test_reads_are_retried_after_server_errors(seen: dict[str, Any]) -> None:
    case = seen["status_5xx"]
    assert case["sent"] == 3
    assert case["status"] == 200
    assert case["failures"] == [
        "status: server error (HTTP 503)",
        "status: server error (HTTP 502)",
    ]
    assert case["requests"]["serverError"] == 2
    assert case["requests"]["retried"] == 2


def test_retry_after_is_honoured(seen: dict[str, Any]) -> None:
    for name in ("status_429", "run_429"):  # a throttled /run was refused: safe to resend
        case = seen[name]
        assert case["sent"] == 2, name
        assert case["status"] == 200, name
        assert 1.0 <= case["gaps"][0] < 1.5, name  # Retry-After: 1, plus a little jitter
        assert case["requests"]["throttled"] == 1, name


def test_cancel_is_retried_after_a_lost_connection(seen: dict[str, Any]) -> None:
    case = seen["cancel_reset"]
    assert case["sent"] == 2
    assert case["status"] == 200
    assert case["requests"]["connectionError"] == 1


@pytest.mark.parametrize("name", ["run_5xx", "run_reset"])
def test_a_run_that_may_have_created_a_job_is_never_resent(seen: dict[str, Any], name: str) -> None:
    case = seen[name]
    assert case["sent"] == 1
    assert case["requests"]["retried"] == 0
    assert case["status"] == (503 if name == "run_5xx" else 0)


def test_retries_are_bounded_by_count_and_by_the_deadline(seen: dict[str, Any]) -> None:
    spent = seen["status_spent"]
    assert spent["sent"] == 4  # the request and 3 retries
    assert spent["status"] == 503
    late = seen["status_deadline"]
    assert late["sent"] == 1  # Retry-After: 1 s would answer after the 0.5 s deadline
    assert late["status"] == 429


def test_the_breaker_trips_and_stops_retrying(seen: dict[str, Any]) -> None:
    case = seen["refused"]
    assert case["sent"] == 1  # 401 is never retried
    assert case["requests"]["refused"] == 1
    assert case["trips"] == [
        "1 consecutive requests were refused with HTTP 401; "
        "check RUNPOD_API_KEY and the endpoint in --host"
    ]
