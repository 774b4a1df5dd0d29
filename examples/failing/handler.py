"""A runpod handler that fails on purpose, to see what your client does with FAILED jobs.

    python handler.py --test_input '{"input": {"mode": "raise"}}'
    runpod-testkit emulator --worker "python handler.py"

Two ways a handler fails: it raises (the SDK reports the exception's text, with a traceback), or
it returns {"error": ...} (the job ends FAILED with exactly that text). Input {"mode": "ok"}
succeeds, so a client's success path can be tried against the same worker.
"""

import runpod


def handler(job):
    mode = job["input"].get("mode", "raise")
    if mode == "ok":
        return {"ok": True}
    if mode == "error":
        return {"error": "the handler refused this input"}
    raise RuntimeError("the handler crashed on purpose")


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
