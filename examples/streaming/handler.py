"""A streaming runpod handler: a generator that yields one token at a time, as a text model does.

    python handler.py --test_input '{"input": {"prompt": "tell me a story", "tokens": 5}}'
    runpod-testkit emulator --worker "python handler.py"

Each yielded value is one /stream chunk. With `return_aggregate_stream` the job's final `output`
is the list of every chunk, so /status shows the whole answer once the job is COMPLETED.
"""

import time

import runpod


def handler(job):
    job_input = job["input"]
    prompt = job_input.get("prompt", "")
    tokens = int(job_input.get("tokens", 3))
    if tokens < 0:
        yield {"error": "input.tokens must be >= 0"}
        return
    interval_s = float(job_input.get("interval_s", 0.2))
    words = prompt.split() or ["..."]
    for index in range(tokens):
        if index:
            time.sleep(interval_s)
        yield {"index": index, "token": words[index % len(words)]}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
