"""progress_update: reports {"step": 1} at once, then works for `sleep_s` and returns "done"."""

import asyncio

import runpod


async def handler(job):
    runpod.serverless.progress_update(job, {"step": 1})
    await asyncio.sleep(job["input"].get("sleep_s", 0))
    return "done"


runpod.serverless.start({"handler": handler})
