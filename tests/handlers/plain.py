"""A plain sync handler: echoes its input, fails on {"fail": msg}, raises on {"raise": msg}."""

import os

import runpod


def handler(job):
    job_input = job["input"]
    if job_input.get("raise"):
        raise ValueError(job_input["raise"])
    if job_input.get("fail"):
        return {"error": job_input["fail"]}
    return {"echo": job_input.get("echo"), "pid": os.getpid()}


runpod.serverless.start({"handler": handler})
