"""An async handler that runs `concurrency` jobs at once on one worker (job-take-batch).
Input {"sleep_s": s}: awaits that long (a cancel interrupts it at once)."""

import asyncio
import os
import time

import runpod


async def handler(job):
    started = time.time()
    await asyncio.sleep(job["input"].get("sleep_s", 0))
    return {"pid": os.getpid(), "started": started, "ended": time.time()}


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: 3})
