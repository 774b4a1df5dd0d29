"""The floor the emulator is measured against: bare Starlette routes returning fixed JSON.

Same framework, same server settings, same paths and methods, and the very bytes the emulator
answered (captured from it at the start of the run), so the only difference is the emulator's own
work: routing through the operations table, auth, the model, and encoding the reply.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["create_bare_app"]


def create_bare_app(status_body: bytes, run_body: bytes) -> Starlette:
    """GET /v2/{endpoint_id}/status/{job_id} and POST /v2/{endpoint_id}/run with fixed bodies."""

    async def status(_request: Request) -> Response:
        return Response(status_body, media_type="application/json")

    async def run(request: Request) -> Response:
        # A POST handler has to take the body off the connection; the floor does that and no more.
        await request.body()
        return Response(run_body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/v2/{endpoint_id}/status/{job_id}", status, methods=["GET"]),
            Route("/v2/{endpoint_id}/run", run, methods=["POST"]),
        ]
    )
