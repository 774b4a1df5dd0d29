"""A plain sync handler (tests/test_emulator_workers.py).

Input: {"echo": v} returns what the worker sees; {"fail": msg} returns an error; {"raise": msg}
raises; {"sleep_s": s} blocks the event loop (a sync handler cannot be interrupted);
{"exit_once": path} exits the process (code 3) if `path` does not exist yet, after creating it.
"""

import os
import time
from pathlib import Path

import runpod


def handler(job):
    job_input = job["input"]
    if job_input.get("raise"):
        raise ValueError(job_input["raise"])
    if job_input.get("fail"):
        return {"error": job_input["fail"]}
    if job_input.get("sleep_s"):
        time.sleep(job_input["sleep_s"])
    marker = job_input.get("exit_once")
    if marker and not Path(marker).exists():
        Path(marker).touch()
        os._exit(3)
    return {
        "echo": job_input.get("echo"),
        "pid": os.getpid(),
        "pod_id": os.environ.get("RUNPOD_POD_ID"),
        "endpoint_id": os.environ.get("RUNPOD_ENDPOINT_ID"),
        "user_key_seen": "RUNPOD_API_KEY" in os.environ,
    }


runpod.serverless.start({"handler": handler})
