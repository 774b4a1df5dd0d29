"""The handler that benchmarks/bench_worker.py runs as real workers, and under the dev server.

Input {"sleep_ms": N}: a sync handler that sleeps N ms (0: returns at once), then returns
{"slept_ms": N}. With BENCH_WORKER_TRACE_DIR set (the benchmark sets it for the emulator's
workers only), `worker_trace` records when the SDK sent and got back its worker-protocol
requests, and when this handler started and ended; the handler is otherwise what a user writes.
"""

import os
import time

import runpod

TRACE_DIR = os.environ.get("BENCH_WORKER_TRACE_DIR")
if TRACE_DIR:
    import worker_trace

    record = worker_trace.install(TRACE_DIR)
else:
    record = None


def handler(job):
    if record is not None:
        record("handler-start", job["id"])
    sleep_ms = job["input"].get("sleep_ms", 0)
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    if record is not None:
        record("handler-end", job["id"])
    return {"slept_ms": sleep_ms}


runpod.serverless.start({"handler": handler})
