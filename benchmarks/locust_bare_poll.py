"""The floors of benchmarks/bench_locust.py: bare FastHttpUsers, no validation, no statistics.

- BarePollUser: GET /status of one existing job (BENCH_STATUS_PATH, e.g.
  /v2/bench/status/JOB_ID) as fast as Locust goes: the target's reference.
- BareRunPollUser: RunPollUser's requests and nothing else: POST /run, then GET /status until
  the job is terminal, reading only the id and the status (BENCH_ENDPOINT_PATH, e.g. /v2/bench).

Requests are named like the suite names them; the host comes from --host.
"""

from __future__ import annotations

import os

import orjson
from locust import FastHttpUser, constant, task

__all__ = ["BarePollUser", "BareRunPollUser"]

STATUS_PATH = os.environ.get("BENCH_STATUS_PATH", "/v2/bench/status/unknown")
ENDPOINT_PATH = os.environ.get("BENCH_ENDPOINT_PATH", "/v2/bench")
RUN_BODY = orjson.dumps({"input": {"sleep_ms": 0}})
JSON_HEADERS = {"Content-Type": "application/json"}
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


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
            f"{ENDPOINT_PATH}/run", data=RUN_BODY, headers=JSON_HEADERS, name="run"
        )
        job_id = orjson.loads(reply.content)["id"]
        while True:
            reply = self.client.get(f"{ENDPOINT_PATH}/status/{job_id}", name="status")
            if orjson.loads(reply.content)["status"] in TERMINAL:
                return
