"""The floors the emulator is measured against: bare Starlette routes returning fixed JSON.

Same framework, same server settings, same paths and methods, and the very bytes the emulator
answered (captured from it at the start of the run), so the only difference is the emulator's own
work: routing through the operations table, auth, the model, and encoding the reply.

`create_store_app` is a second, informative floor for /run (`bench_emulator.py --store-floor`):
the least that any endpoint which remembers its jobs does for a submission, and nothing more.
"""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["create_bare_app", "create_store_app"]

STATUS_PATH = "/v2/{endpoint_id}/status/{job_id}"
RUN_PATH = "/v2/{endpoint_id}/run"
# The version (4) and variant (RFC 4122) bits of a random uuid.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (0x4000 << 64)


def create_bare_app(status_body: bytes, run_body: bytes) -> Starlette:
    """GET /v2/{endpoint_id}/status/{job_id} and POST /v2/{endpoint_id}/run with fixed bodies."""

    async def run(request: Request) -> Response:
        # A POST handler has to take the body off the connection; the floor does that and no more.
        await request.body()
        return Response(run_body, media_type="application/json")

    return _app(status_body, run)


def create_store_app(status_body: bytes, run_body: bytes) -> Starlette:
    """As `create_bare_app`, but POST /run parses the body, checks that it holds an input
    object, mints a job id of production's shape (a random uuid4 with `-u1`) and keeps the job
    (its id, submission time and input) in a dict for good; no queue, worker, completion or
    expiry. `run_body` only fixes the reply's shape: every reply names its own new id."""
    jobs: dict[str, tuple[float, Any]] = {}
    bits = random.Random().getrandbits
    if len(orjson.loads(run_body)["id"]) != 39:
        raise ValueError("the /run reply to imitate does not carry a uuid job id")

    async def run(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return Response(b'{"error":"no input object"}', 400, media_type="application/json")
        hex_ = "%032x" % (bits(128) & _UUID4_CLEAR | _UUID4_SET)
        job_id = f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}-u1"
        jobs[job_id] = (time.time(), body["input"])
        return Response(
            orjson.dumps({"id": job_id, "status": "IN_QUEUE"}), media_type="application/json"
        )

    return _app(status_body, run)


def _app(status_body: bytes, run: Any) -> Starlette:
    async def status(_request: Request) -> Response:
        return Response(status_body, media_type="application/json")

    return Starlette(
        routes=[
            Route(STATUS_PATH, status, methods=["GET"]),
            Route(RUN_PATH, run, methods=["POST"]),
        ]
    )
