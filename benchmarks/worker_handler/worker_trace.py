"""Timestamps from inside a runpod worker process, for benchmarks/bench_worker.py.

`install(folder)` adds an aiohttp TraceConfig to the session the runpod SDK opens for the worker
protocol (by wrapping `runpod.http_client.ClientSession`, which the SDK's session factory calls
when the worker starts; the SDK itself is not changed). Every job-take and job-done request is
written, as it is sent and as its answer's headers arrive, as one JSON line of
`{"what", "t", "job", "status"}` to `folder/trace-PID.jsonl`; `t` is `time.monotonic()`, one
clock for every process on the machine. The returned `record(what, job_id)` writes other events.
"""

import json
import os
import time

import aiohttp
import runpod.http_client

_KINDS = {"job-take": "take", "job-take-batch": "take", "job-done": "done"}


def install(folder):
    out = open(os.path.join(folder, f"trace-{os.getpid()}.jsonl"), "a", buffering=1)  # noqa: SIM115

    def record(what, job_id=None, status=None):
        t = time.monotonic()
        out.write(json.dumps({"what": what, "t": t, "job": job_id, "status": status}) + "\n")

    def request_kind(url):
        # .../_worker/job-done/WORKER/JOB?token=..: the segment after _worker names the call
        parts = url.path.split("/")
        if "_worker" not in parts:
            return None, None
        index = parts.index("_worker")
        kind = _KINDS.get(parts[index + 1]) if index + 1 < len(parts) else None
        job_id = parts[index + 3] if kind == "done" and index + 3 < len(parts) else None
        return kind, job_id

    async def on_start(session, context, params):
        t = time.monotonic()
        context.kind, context.job_id = request_kind(params.url)
        if context.kind is not None:
            out.write(
                json.dumps({"what": f"{context.kind}-sent", "t": t, "job": context.job_id}) + "\n"
            )

    async def on_end(session, context, params):
        t = time.monotonic()
        if context.kind is not None:
            line = {
                "what": f"{context.kind}-answered",
                "t": t,
                "job": context.job_id,
                "status": params.response.status,
            }
            out.write(json.dumps(line) + "\n")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    original = runpod.http_client.ClientSession

    def traced_session(*args, **kwargs):
        kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or ()), trace]
        return original(*args, **kwargs)

    runpod.http_client.ClientSession = traced_session
    return record
