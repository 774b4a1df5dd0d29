"""Webhook delivery: how late deliveries arrive, and what pending ones cost the request path.

    python benchmarks/bench_webhooks.py [--jobs 300] [--pending 1000] [--seconds 5] [--rounds 3]

1. Delivery delay on loopback: `runpod-testkit emulator` (pinned to cpu 1, --job-log) runs
   `--jobs` short jobs with a webhook to a `WebhookReceiver` in this process; the delay of each
   is its POST's arrival minus the job's `endedAt` in the job log (one machine, one clock).
2. /status throughput with deliveries pending: a second emulator whose receiver never answers
   (it holds every POST until the end; --webhook-timeout-s 600), so `--pending` deliveries stay
   pending (64 in flight, the rest queued). wrk (cpu 0) reads /status of one COMPLETED job for
   `--seconds`, alternately on an emulator with `--pending` unhooked jobs ("none") and on one
   with `--pending` hooked jobs whose deliveries hang ("pending"); the ratio is the median over
   rounds of pending / none, in requests per server CPU-second and in wrk's req/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from harness import ServerProcess, run_wrk, write_lua_script

from runpod_testkit.webhook_receiver import WebhookReceiver

KEY = "bench-webhooks-key"
_EMULATOR = ("--workers-max", "64", "--cold-start-ms", "0", "--api-key", KEY)


def emulator(*args: str, cpu: int = 1) -> ServerProcess:
    server = ServerProcess("emulator", KEY, cpu=cpu)
    server.command = [*server.command[:4], "-m", "runpod_testkit", "emulator", "--port", "0"]
    server.command += [*_EMULATOR, *args]
    return server


def submit(client: httpx.Client, count: int, webhook: str | None, sleep_ms: int) -> list[str]:
    ids = []
    for _ in range(count):
        body: dict[str, Any] = {"input": {"sleep_ms": sleep_ms}}
        if webhook is not None:
            body["webhook"] = webhook
        ids.append(client.post("/run", json=body).json()["id"])
    return ids


def client_for(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url("/v2/bench"), headers={"authorization": f"Bearer {KEY}"}, timeout=30
    )


def delivery_delay(jobs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder, WebhookReceiver() as receiver:
        log = Path(folder) / "jobs.log"
        with emulator("--job-log", str(log)) as server, client_for(server) as client:
            for _ in range(jobs // 20):  # bursts of 20 jobs that end together
                submit(client, 20, receiver.url_for("delay"), sleep_ms=100)
                time.sleep(0.2)
            done = receiver.wait_for(lambda: len(receiver.deliveries()) >= jobs // 20 * 20, 60)
            if not done:
                raise SystemExit("not every delivery arrived within 60 s")
        ended = {
            row["id"]: row["endedAt"]
            for row in map(json.loads, log.read_text(encoding="utf-8").splitlines())
        }
        delays = sorted(d.arrived_at * 1000 - ended[d.json()["id"]] for d in receiver.deliveries())
    return {
        "count": len(delays),
        "p50_ms": delays[len(delays) // 2],
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max_ms": delays[-1],
    }


def status_throughput(pending: int, seconds: float, rounds: int) -> dict[str, Any]:
    release = threading.Event()
    script = write_lua_script(Path(tempfile.mkdtemp()) / "status.lua", "GET", KEY)
    results: dict[str, list[Any]] = {"none": [], "pending": []}
    with WebhookReceiver(on_delivery=lambda _d: release.wait(600)) as hanging:
        try:
            with (
                emulator() as plain,
                emulator("--webhook-timeout-s", "600") as hooked,
                client_for(plain) as plain_client,
                client_for(hooked) as hooked_client,
            ):
                submit(plain_client, pending, None, sleep_ms=0)
                submit(hooked_client, pending, hanging.url_for("hang"), sleep_ms=0)
                probes = {
                    "none": (plain, submit(plain_client, 1, None, 0)[0]),
                    "pending": (hooked, submit(hooked_client, 1, None, 0)[0]),
                }
                hanging.wait_for(lambda: len(hanging.deliveries()) >= 64, 30)
                for round_index in range(rounds):
                    order = ["none", "pending"] if round_index % 2 == 0 else ["pending", "none"]
                    for name in order:
                        server, job_id = probes[name]
                        results[name].append(
                            run_wrk(
                                server,
                                f"/v2/bench/status/{job_id}",
                                script,
                                seconds,
                                cpu=0,
                                connections=16,
                            )
                        )
                in_flight = len(hanging.deliveries())
        finally:
            release.set()
    pairs = list(zip(results["none"], results["pending"], strict=True))
    return {
        "pending": pending,
        "held_by_receiver": in_flight,
        "none_rps": statistics.median(r.requests_per_s for r in results["none"]),
        "pending_rps": statistics.median(r.requests_per_s for r in results["pending"]),
        "ratio_rps": statistics.median(p.requests_per_s / n.requests_per_s for n, p in pairs),
        "ratio_per_cpu_s": statistics.median(
            p.requests_per_cpu_s / n.requests_per_cpu_s for n, p in pairs
        ),
        "non_2xx": sum(r.non_2xx for r in results["none"] + results["pending"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    delay = delivery_delay(args.jobs)
    print(f"delivery delay over {delay['count']} jobs: p50 {delay['p50_ms']:.1f} ms, "
          f"p99 {delay['p99_ms']:.1f} ms, max {delay['max_ms']:.1f} ms")  # fmt: skip
    status = status_throughput(args.pending, args.seconds, args.rounds)
    print(f"/status with {status['pending']} deliveries pending ({status['held_by_receiver']} "
          f"held by the receiver): {status['pending_rps']:,.0f} req/s vs "
          f"{status['none_rps']:,.0f} with none: {status['ratio_rps']:.2f} "
          f"(per server CPU-second: {status['ratio_per_cpu_s']:.2f}); "
          f"non-2xx {status['non_2xx']}")  # fmt: skip
    verdict = "met" if status["ratio_per_cpu_s"] >= 0.9 else "NOT met"
    print(f"target >= 0.9 of /status throughput with none pending: {verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
