"""The floors of benchmarks/bench_locust.py: FastHttpUsers without the suite around them.

- BarePollUser: GET /status of one existing job (BENCH_STATUS_PATH, e.g.
  /v2/bench/status/JOB_ID) as fast as Locust goes: the target's reference.
- BareRunPollUser: RunPollUser's requests and nothing else: POST /run, then GET /status until
  the job is terminal, reading only the id and the status (BENCH_ENDPOINT_PATH, e.g. /v2/bench).

With `--breakdown`, three more users add the suite's parts one at a time to BareRunPollUser,
each through the suite's own code, so that the benchmark tells what each part costs:
- CatchingRunPollUser: every request through Locust's catch_response (how the suite reports
  a failure by the rule it broke), marked a success once its body is read;
- ValidatingRunPollUser: and every request sent and judged against the contract by the suite's
  own `EndpointCaller` (a broken rule is a failure named by the rule);
- CountingRunPollUser: and every job counted in a `JobStats` (submitted; the terminal status
  with delayTime, executionTime and e2e), as the suite's tracker counts them.
None of them tracks jobs in flight, cancels them on stop, times them out or logs drift.

Requests are named like the suite names them; the host comes from --host (for the three
breakdown users the endpoint's URL, as for the suite).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import orjson
from locust import FastHttpUser, constant, task

from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.caller import DriftLog, EndpointCaller
from runpod_testkit.loadtest.tracker import metric_ms
from runpod_testkit.operations import OPERATIONS, JobStatus, Operation
from runpod_testkit.schemas import ContractValidator

__all__ = [
    "BarePollUser",
    "BareRunPollUser",
    "CatchingRunPollUser",
    "CountingRunPollUser",
    "ValidatingRunPollUser",
]

STATUS_PATH = os.environ.get("BENCH_STATUS_PATH", "/v2/bench/status/unknown")
ENDPOINT_PATH = os.environ.get("BENCH_ENDPOINT_PATH", "/v2/bench")
RUN_BODY = orjson.dumps({"input": {"sleep_ms": 0}})
JSON_HEADERS = {"Content-Type": "application/json"}
TERMINAL = JobStatus.TERMINAL
RUN = OPERATIONS["run"]
STATUS = OPERATIONS["status"]


class BarePollUser(FastHttpUser):
    wait_time = constant(0)
    # The suite sends a key with every request; so do the floors (same header bytes).
    default_headers = {"Authorization": "Bearer no-key-set"}  # noqa: RUF012  # Locust's API

    @task
    def status(self) -> None:
        self.client.get(STATUS_PATH, name="status")


class BareRunPollUser(FastHttpUser):
    wait_time = constant(0)
    default_headers = {"Authorization": "Bearer no-key-set"}  # noqa: RUF012  # Locust's API

    @task
    def job(self) -> None:
        reply = self.client.post(
            f"{ENDPOINT_PATH}/run",
            data=RUN_BODY,  # type: ignore[arg-type]  # geventhttpclient sends bytes as they are
            headers=JSON_HEADERS,
            name="run",
        )
        job_id = orjson.loads(reply.content)["id"]
        while True:
            reply = self.client.get(f"{ENDPOINT_PATH}/status/{job_id}", name="status")
            if orjson.loads(reply.content)["status"] in TERMINAL:
                return


class CatchingRunPollUser(FastHttpUser):
    """RunPollUser's requests through catch_response (--host: the endpoint's URL, as the
    suite's); subclasses validate through the suite's caller and count jobs."""

    wait_time = constant(0)
    default_headers = {"Authorization": "Bearer no-key-set"}  # noqa: RUF012  # Locust's API
    stats: ClassVar[JobStats | None] = None

    def call(self, op: Operation, job_id: str | None = None, body: bytes | None = None) -> Any:
        """The parsed answer, the request marked a success once its body is read."""
        with self.client.request(
            op.method,
            op.path_for(job_id),
            name=op.name,
            data=body,  # type: ignore[arg-type]  # geventhttpclient sends bytes as they are
            headers=JSON_HEADERS if body is not None else None,
            catch_response=True,
        ) as response:
            parsed = orjson.loads(response.content)
            response.success()
        return parsed

    @task
    def job(self) -> None:
        started_at = time.time()
        job_id = self.call(RUN, body=RUN_BODY)["id"]
        if self.stats is not None:
            self.stats.record_submitted()
        while True:
            body = self.call(STATUS, job_id)
            if body["status"] in TERMINAL:
                break
        if self.stats is not None:
            self.stats.record_terminal(
                str(body["status"]),
                delay_time_ms=metric_ms(body.get("delayTime")),
                execution_time_ms=metric_ms(body.get("executionTime")),
                e2e_ms=(time.time() - started_at) * 1000,
            )


class ValidatingRunPollUser(CatchingRunPollUser):
    """Every answer judged by the suite's own EndpointCaller (a failure names the rule)."""

    validator = ContractValidator()

    def on_start(self) -> None:
        self.caller = EndpointCaller(self.client, self.validator, DriftLog())

    def call(self, op: Operation, job_id: str | None = None, body: bytes | None = None) -> Any:
        return self.caller.call(op, job_id, body=body).body


class CountingRunPollUser(ValidatingRunPollUser):
    stats = JobStats()
