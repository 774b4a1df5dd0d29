"""Self-tests of runpod_testkit.loadtest.caller: what one call sends, what it reports to Locust's
request event (name, length, failure named by the rule) and the verdict it returns.

Importing Locust monkey-patches the process, so the checks run in a child Python process
against a loopback server that records each request's bytes; the child prints what it saw.
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
CHILD = textwrap.dedent(
    r"""
    import gzip, json, socket, sys
    from gevent.server import StreamServer
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import EventHook
    from runpod_testkit.loadtest.caller import DriftLog, EndpointCaller
    from runpod_testkit.loadtest.tracker import cancel_request_name
    from runpod_testkit.operations import OPERATIONS
    from runpod_testkit.schemas import ContractValidator
    from tests.raw_http import requests_on

    JOB = "5d6e2a1c-3f4b-4a7e-9c8d-0123456789ab-u1"
    ANSWERS = {
        "/v2/ep/run": json.dumps({"id": JOB, "status": "IN_QUEUE"}).encode(),
        "/v2/ep/status/" + JOB: json.dumps({"id": JOB, "status": "IN_QUEUE"}).encode(),
        "/v2/ep/cancel/" + JOB: json.dumps({"id": JOB, "status": "COMPLETED"}).encode(),
        "/v2/ep/cancel/queued": json.dumps({"id": "queued", "status": "CANCELLED"}).encode(),
        "/v2/ep/status/bad": json.dumps({"id": JOB, "status": "IN_QUEUE", "delayTime": -1})
        .encode(),
    }
    seen = []

    def serve(sock, _address):
        for head, body in requests_on(sock):
            seen.append((head + b"\r\n\r\n" + body).decode("latin-1"))
            path = head.split(b" ")[1].decode()
            answer = ANSWERS.get(path, b'{"error": "no such job"}')
            extra = b""
            if path.endswith("/status/" + JOB):
                answer, extra = gzip.compress(answer), b"Content-Encoding: gzip\r\n"
            code = b"200 OK" if path in ANSWERS else b"404 Not Found"
            sock.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Type: application/json\r\n" + extra
                         + b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer)

    server = StreamServer(("127.0.0.1", 0), serve)
    server.start()
    base = f"http://127.0.0.1:{server.server_port}/v2/ep"
    validator, drift = ContractValidator(), DriftLog()

    def session(events, base_url=base):
        return FastHttpSession(base_url, request_event=events, user=None, insecure=False,
                               headers={"Authorization": "Bearer k"})

    def run(base_url=base):
        events, fired = EventHook(), []
        events.add_listener(lambda **kw: fired.append(kw))
        caller = EndpointCaller(session(events, base_url), validator, drift)
        seen.clear()
        verdicts = [
            caller.call(OPERATIONS["run"], body=b'{"input": {}}'),
            caller.call(OPERATIONS["status"], JOB),
            caller.call(OPERATIONS["status"], "bad"),
            caller.call(OPERATIONS["status"], "missing job"),
            caller.call(OPERATIONS["status"], JOB, check=lambda body: "status: checked"),
            caller.call(OPERATIONS["cancel"], JOB, rename=cancel_request_name),
            caller.call(OPERATIONS["cancel"], "queued", rename=cancel_request_name),
        ]
        events_seen = [
            {k: (repr(v) if k == "exception" else v) for k, v in kw.items()
             if k not in ("response", "response_time", "start_time")}
            | {"timed": kw["response_time"] >= 0, "status_code": kw["response"].status_code}
            for kw in fired
        ]
        return {
            "requests": list(seen),
            "events": events_seen,
            "verdicts": [[v.status_code, v.body, v.failure] for v in verdicts],
        }

    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    closed_base = f"http://127.0.0.1:{refused.getsockname()[1]}/v2/ep"
    refused.close()
    print(json.dumps({"session": run(), "refused": run(closed_base)["events"]}))
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


def test_requests_carry_the_key_the_body_and_accept_compression(seen: dict[str, Any]) -> None:
    sent = seen["session"]["requests"]
    assert len(sent) == 7
    assert sent[0].startswith("POST /v2/ep/run HTTP/1.1\r\n")
    assert "Authorization: Bearer k" in sent[0]
    assert "Content-Type: application/json" in sent[0]
    assert sent[0].endswith('\r\n\r\n{"input": {}}')
    assert sent[1].startswith("GET /v2/ep/status/5d6e2a1c-3f4b-4a7e-9c8d-0123456789ab-u1 ")


def test_locust_gets_names_lengths_and_failures_named_by_rule(seen: dict[str, Any]) -> None:
    session = seen["session"]
    events = session["events"]
    names = [e["name"] for e in events]
    assert names == ["run", "status", "status", "status", "status", "cancel after end", "cancel"]
    assert all(e["timed"] and e["context"] == {} for e in events)
    assert events[0]["exception"] == "None"
    assert events[1]["response_length"] > 0  # the decompressed body's length, as Locust counts
    assert events[2]["exception"] == (
        "CatchResponseError('status: /delayTime: expected a number >= 0')"
    )
    assert events[3]["exception"] == "CatchResponseError('status: HTTP 404')"
    assert events[4]["exception"] == "CatchResponseError('status: checked')"
    verdicts = session["verdicts"]
    assert [v[0] for v in verdicts] == [200, 200, 200, 404, 200, 200, 200]
    # A check's failure goes to Locust only: the verdict judges the answer against the contract.
    assert [v[2] is None for v in verdicts] == [True, True, False, False, True, True, True]
    assert verdicts[1][1]["status"] == "IN_QUEUE"  # gzip-encoded answer, decoded


def test_a_refused_connection_is_a_failure_with_no_response(seen: dict[str, Any]) -> None:
    refused = seen["refused"]
    assert refused[0]["status_code"] == 0
    assert refused[0]["exception"] == (
        "CatchResponseError('run: connection error (ConnectionRefusedError)')"
    )
