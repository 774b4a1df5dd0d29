"""An async runpod handler that serves several jobs at once on one worker.

    python handler.py --test_input '{"input": {"sleep_s": 0.1}}'
    runpod-testkit emulator --worker "python handler.py" --workers-max 1

An async handler awaits instead of blocking, so one worker process can hold several jobs:
`concurrency_modifier` tells the SDK how many (it asks for them in one job-take-batch request).
Here each worker takes up to MAX_CONCURRENCY jobs.
"""

import asyncio

import runpod

MAX_CONCURRENCY = 4


async def handler(job):
    job_input = job["input"]
    sleep_s = float(job_input.get("sleep_s", 0.05))
    if sleep_s < 0:
        raise ValueError("input.sleep_s must be >= 0")
    await asyncio.sleep(sleep_s)  # an I/O-bound call: another job runs meanwhile
    return {"slept_s": sleep_s, "job": job["id"]}


def concurrency_modifier(current_concurrency):
    return MAX_CONCURRENCY


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "concurrency_modifier": concurrency_modifier})
