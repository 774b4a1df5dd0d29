"""A sync generator handler with return_aggregate_stream: yields {"index": i} `chunks` times,
`interval_s` apart; {"fail_at": i} yields an error instead of chunk i."""

import time

import runpod


def handler(job):
    job_input = job["input"]
    for index in range(job_input.get("chunks", 3)):
        if index == job_input.get("fail_at"):
            yield {"error": f"failed at chunk {index}"}
            return
        if index:
            time.sleep(job_input.get("interval_s", 0))
        yield {"index": index}


runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
