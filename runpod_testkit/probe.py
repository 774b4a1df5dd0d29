"""The probe as a real Runpod worker handler, deployable to a queue-based endpoint.

    python -m runpod_testkit.probe                     # worker mode, on Runpod
    python -m runpod_testkit.probe --rp_serve_api \\
        --rp_api_host 127.0.0.1 --rp_api_port 8000     # runpod-python's local dev server

The handler obeys `runpod_testkit.probe_protocol` and is started with
`return_aggregate_stream=True`.

Why an async generator for every job: runpod-python decides once per handler function, with
`inspect.isgeneratorfunction` / `inspect.isasyncgenfunction`, whether it streams; it cannot return
a plain value for one job and stream for the next. Streaming needs a generator, and an async one
lets `asyncio.sleep` run without blocking the worker's (or the dev server's) event loop. So every
job's result is the list of what it yielded. What a deployed probe reports (runpod 1.12 handle_job):

- chunks > 0: one /stream chunk per `{"index": i}`; COMPLETED with `output` = the list of chunks.
- otherwise: one /stream chunk `{"echo": ..., "padding": ...}`; COMPLETED with `output` =
  `[{"echo": ..., "padding": ...}]`, a one-element list (see `completed_output`).
- `fail`: FAILED with `error` = `fail` exactly, no `output`, no chunks. The handler yields
  `{"error": fail}`, which the worker turns into a failed job (raising would add a traceback).
- bad input: FAILED at once with the `ProbeInputError` message, the same way.

The local dev server ignores `error` in yielded dicts: there a failing probe comes back COMPLETED
with `output` = `[{"error": message}]` (docs/README.md#sources: the dev server is not a reference).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from runpod_testkit.probe_protocol import ProbeInput, ProbeInputError

__all__ = ["WORKER_CONFIG", "completed_output", "handler", "main"]

INSTALL_HINT = 'the probe worker needs runpod: pip install "runpod-testkit[probe]"'


def completed_output(probe: ProbeInput) -> list[Any]:
    """The `output` of a deployed probe's COMPLETED job, for a probe that does not fail: every
    value the handler yields, in order; each is also one /stream chunk's `output`."""
    return probe.final_output()


def _parse(job_input: Any) -> ProbeInput:
    return ProbeInput.parse(job_input)


async def _wait_until(picked_up: float, offset_ms: int) -> None:
    """Sleep until `offset_ms` after pickup (not after the previous yield, so nothing drifts)."""
    delay = picked_up + offset_ms / 1000 - asyncio.get_running_loop().time()
    await asyncio.sleep(max(0.0, delay))


async def handler(job: Mapping[str, Any]) -> AsyncIterator[Any]:
    """Run one probe job (`{"id": ..., "input": {...}}`) as the protocol says."""
    picked_up = asyncio.get_running_loop().time()
    try:
        probe = _parse(job.get("input"))
    except ProbeInputError as error:
        yield {"error": str(error)}
        return
    if probe.fail is not None:
        await _wait_until(picked_up, probe.sleep_ms)
        yield {"error": probe.fail}
        return
    for index in range(probe.yield_count):
        await _wait_until(picked_up, probe.chunk_offset_ms(index))
        yield probe.yielded(index)


WORKER_CONFIG: Mapping[str, Any] = {"handler": handler, "return_aggregate_stream": True}


def main() -> None:
    """Start the runpod worker; runpod reads its own flags (--rp_serve_api etc.) from sys.argv."""
    try:
        import runpod
    except ImportError as error:
        raise SystemExit(f"{INSTALL_HINT} ({error})") from None
    runpod.serverless.start(dict(WORKER_CONFIG))


if __name__ == "__main__":
    main()
