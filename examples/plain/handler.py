"""A plain runpod handler: takes a text, waits a little (the "model"), returns a summary of it.

    python handler.py --test_input '{"input": {"text": "hello world"}}'   # runpod's local test
    runpod-testkit emulator --worker "python handler.py"                  # production's queue

A handler that raises, or returns a dict with an "error" key, ends its job FAILED with that text.
"""

import time

import runpod


def handler(job):
    job_input = job["input"]
    text = job_input.get("text")
    if not isinstance(text, str) or not text:
        return {"error": "input.text must be a non-empty string"}
    time.sleep(float(job_input.get("sleep_s", 0.05)))  # stands in for the model's work
    words = text.split()
    return {"words": len(words), "longest": max(words, key=len)}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
