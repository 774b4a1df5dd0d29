"""refresh_worker: every job ends with stopPod, so each job runs in a fresh process."""

import os

import runpod


def handler(job):
    return {"pid": os.getpid()}


runpod.serverless.start({"handler": handler, "refresh_worker": True})
