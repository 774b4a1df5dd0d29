"""End-to-end tests of the load suite's fail-safe behaviour: real Locust runs against the emulator.

- An endpoint that goes away mid-run (the emulator is stopped) or refuses the key stops the
  whole run, every worker included, with exit status 2 and one line naming the reason.
- The emulator's --rate-limits (production's per-operation limits, 429 with Retry-After):
  without pacing the run is throttled, retries honour Retry-After and nothing counts as a
  contract failure; with pacing (forced on for loopback) it is never throttled.
Everything talks to 127.0.0.1; every process and wait is bounded.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runpod_testkit.emulator.server import EmulatorProcess
from tests.polling import wait_until
from tests.test_loadtests import (
    FAST_POLLING,
    NO_CANCEL_USERS,
    VARIED_INPUTS,
    assert_key_never_shown,
    assert_matches_job_log,
    background_locust,
    explain,
    free_port,
    locust_output,
    read_log,
    run_locust,
)

pytestmark = pytest.mark.slow

ENDPOINT = "ep"


def processes_args(processes: int) -> tuple[str, ...]:
    if processes == 1:
        return ()
    port = free_port()
    return (
        "--processes", str(processes), "--master-bind-port", str(port), "--master-port", str(port)
    )  # fmt: skip


def failures(csv_prefix: Path) -> dict[str, int]:
    """Locust's failure table (--csv): failure name -> occurrences."""
    path = csv_prefix.parent / f"{csv_prefix.name}_failures.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Locust writes the exception's repr: CatchResponseError('cancel: ...')
    return {
        re.sub(r"^CatchResponseError\('(.*)'\)$", r"\1", row["Error"]): int(row["Occurrences"])
        for row in rows
    }


def stats_of(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


# --------------------------------------------------------------------------- the breaker


@pytest.mark.parametrize("processes", [1, 2], ids=["local", "processes-2"])
def test_an_endpoint_that_goes_away_stops_the_whole_run_with_exit_2(
    tmp_path: Path, processes: int
) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    limit = 20
    emulator = EmulatorProcess([], job_log=log)
    base_url = emulator.start()
    try:
        with background_locust(
            tmp_path,
            "--headless", "-u", "4", "-r", "4", "--run-time", "60s",
            "--host", f"{base_url}/{ENDPOINT}", "--refusal-limit", str(limit),
            "--poll-interval", "0.05", "--probe-input", '{"sleep_ms": 100}',
            "--job-stats-json", str(stats), *processes_args(processes), "RunPollUser",
        ) as locust:  # fmt: skip
            wait_until(
                lambda: log.exists() and len(read_log(log)) >= 4, 30, "jobs to end on the emulator"
            )
            emulator.stop()
            gone_at = time.monotonic()
            code = locust.wait(40)
            stopped_after_s = time.monotonic() - gone_at
    finally:
        emulator.stop()
    output = locust_output(tmp_path)
    assert code == 2, output[-6000:]
    reason = (
        f"{limit} consecutive requests got no answer from the endpoint "
        "(ConnectionRefusedError); is it up, and is --host right?"
    )
    assert f"stopping the run: {reason}" in output
    assert f"run stopped early (exit status 2): {reason}" in output
    if processes > 1:  # a worker's breaker tripped, and the master stopped every worker
        assert f"stopping the run: {reason} (a worker's requests)" in output
    assert stopped_after_s < 25  # not the 60 s --run-time
    requests = stats_of(stats)["requests"]
    assert requests["connectionError"] >= limit
    # Bounded: each process stops after `limit` in a row; what its users had in flight, and
    # the cancellations at stop, add a few more (each user's reads retry at most 5 times).
    assert requests["connectionError"] <= processes * (limit + 4 * 6 + 20), requests
    assert_key_never_shown(tmp_path, output)


def test_a_refused_key_stops_the_run_with_exit_2_and_no_job(tmp_path: Path) -> None:
    log = tmp_path / "jobs.log"
    with EmulatorProcess(["--api-key", "the-right-key"], job_log=log) as emulator:
        result = run_locust(
            tmp_path,
            "--headless", "-u", "3", "-r", "3", "--run-time", "60s",
            "--host", f"{emulator.base_url}/{ENDPOINT}", "--refusal-limit", "10",
            "--job-stats-json", str(tmp_path / "stats.json"), "RunPollUser",
        )  # fmt: skip
    assert result.returncode == 2, explain(result)
    output = result.stdout + result.stderr
    assert "HTTP 401" in output
    assert "RUNPOD_API_KEY" in output
    assert not log.exists() or not read_log(log)  # no job was created
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)


# --------------------------------------------------------------------------- 429 and pacing

# CancelUser sends more than one /cancel a second per user when it polls fast: 30 users go
# past production's 100 /cancel per 10 s, which the emulator enforces with --rate-limits.
CANCEL_LOAD = (
    "--headless", "-u", "30", "-r", "30", "--run-time", "5s", "--poll-interval", "0.05",
    "--probe-input", '{"sleep_ms": 2000}', "--health-interval", "0",
)  # fmt: skip


def test_throttling_is_retried_after_retry_after_and_is_no_contract_failure(
    tmp_path: Path,
) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    with EmulatorProcess(["--rate-limits"], job_log=log) as emulator:
        result = run_locust(
            tmp_path, *CANCEL_LOAD, "--host", f"{emulator.base_url}/{ENDPOINT}",
            "--pacing", "off", "--job-stats-json", str(stats), "--csv", str(tmp_path / "locust"),
            "CancelUser",
        )  # fmt: skip
    # Locust counts every throttled attempt as a failed request (exit status 1) ...
    assert result.returncode == 1, explain(result)
    failed = failures(tmp_path / "locust")
    # ... named by its kind, apart from contract failures: nothing else failed.
    assert set(failed) == {"cancel: throttled (HTTP 429)"}, failed
    document = stats_of(stats)
    requests = document["requests"]
    assert requests["throttled"] == failed["cancel: throttled (HTTP 429)"] > 0
    assert requests["retried"] > 0
    assert requests["serverError"] == requests["connectionError"] == requests["refused"] == 0
    assert document["pacing"]["held"] == 0
    jobs = document["jobs"]
    assert "error" not in jobs
    assert "timeout" not in jobs
    # Every job the run submitted ended on the emulator, and was cancelled (by a user or at stop).
    rows = read_log(log)
    assert jobs["submitted"] == len(rows)
    assert {row["status"] for row in rows} <= {"CANCELLED", "COMPLETED"}
    assert "requests: throttled (429)" in result.stdout


# Fewer users want about 15 /cancel a second: more than pacing lets through (8.5 a second: 90% of
# the limit, less a burst of 5), fewer than would keep the stop waiting long for its cancels.
PACED_LOAD = ("--headless", "-u", "12", "-r", "12", "--run-time", "3s", *CANCEL_LOAD[7:])


@pytest.mark.parametrize("processes", [1, 2], ids=["local", "processes-2"])
def test_pacing_keeps_the_run_under_the_rate_limits(tmp_path: Path, processes: int) -> None:
    stats = tmp_path / "stats.json"
    with EmulatorProcess(["--rate-limits"]) as emulator:
        result = run_locust(
            tmp_path, *PACED_LOAD, "--host", f"{emulator.base_url}/{ENDPOINT}",
            "--pacing", "on", "--job-stats-json", str(stats), *processes_args(processes),
            "CancelUser",
        )  # fmt: skip
    assert result.returncode == 0, explain(result)
    document = stats_of(stats)
    assert document["requests"]["throttled"] == 0, document["requests"]
    pacing = document["pacing"]
    assert pacing["held"] > 0
    assert pacing["waitS"] > 0
    assert f"pacing: held back {pacing['held']} requests" in result.stdout


# --------------------------------------------------------------------------- injected faults

FAULTS = {
    "seed": 11,
    "operations": {"status": {"503": 0.1}, "run": {"429": 0.05}},
    "jobs": {"worker_crash": 0.01},
}


@contextmanager
def emulator_printing_its_faults(
    tmp_path: Path, *args: str
) -> Iterator[tuple[str, Callable[[], str]]]:
    """`runpod-testkit emulator ARGS` with its output in a file; yields its base URL and a
    function that stops it as Ctrl-C does and returns what it printed (the faults tally among
    it). EmulatorProcess stops it with SIGTERM, on which this uvicorn exits before printing the
    tally, and keeps only its last lines."""
    output_path = tmp_path / "emulator.out"
    with output_path.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "runpod_testkit", "emulator", "--port", "0", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def printed() -> str:
        return output_path.read_text(encoding="utf-8")

    def stop() -> str:
        process.send_signal(signal.SIGINT)
        process.wait(15)
        return printed()

    try:
        wait_until(lambda: "emulator listening on" in printed(), 20, "the emulator to listen")
        found = re.search(r"emulator listening on (\S+)", printed())
        assert found is not None
        yield found.group(1), stop
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def injected(printed: str) -> dict[str, int]:
    """The emulator's tally as it prints it on exit: `faults injected: status.503=12, ...`."""
    line = re.search(r"^faults injected: (.*)$", printed, re.M)
    assert line is not None, printed[-3000:]
    return {k: int(v) for k, v in re.findall(r"([\w.]+)=(\d+)", line.group(1))}


def test_a_run_with_injected_faults_finishes_and_its_statistics_equal_the_job_log(
    tmp_path: Path,
) -> None:
    """10% 503 on /status, 5% 429 on /run, 1% worker crashes: the run finishes; every ended
    job's delayTime and executionTime statistics equal the job log (counts exact, percentiles
    within 1%); the summary counts each fault by kind, none as a contract failure. Run with
    two worker processes, so the counts also cross the master-worker transport."""
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    users = 6
    knobs = ("--workers-max", "3", "--cold-start-ms", "250", "--idle-timeout-s", "0.2",
             "--queue-delay-s", "0.3", "--job-log", str(log))  # fmt: skip
    with emulator_printing_its_faults(tmp_path, *knobs, "--faults", json.dumps(FAULTS)) as (
        base_url,
        stop,
    ):
        result = run_locust(
            tmp_path,
            "--headless", "-u", str(users), "-r", str(users), "--run-time", "7s",
            "--host", f"{base_url}/{ENDPOINT}", "--probe-input", VARIED_INPUTS, *FAST_POLLING,
            "--job-stats-json", str(stats), "--job-stats-html", str(tmp_path / "report.html"),
            "--csv", str(tmp_path / "locust"), *processes_args(2), *NO_CANCEL_USERS,
        )  # fmt: skip
        tally = injected(stop())
    # Locust counts each faulted attempt as a failed request: exit status 1, not 2 or a hang.
    assert result.returncode == 1, explain(result)
    assert_matches_job_log(stats, log, varied=True)
    failed = failures(tmp_path / "locust")
    assert set(failed) <= {"status: server error (HTTP 503)", "run: throttled (HTTP 429)"}, failed
    document = stats_of(stats)
    requests = document["requests"]
    # Every injected fault reached a client and was counted by kind; a user stopped in the
    # middle of a request may not have read its answer (at most one per user).
    for kind, fault in (("serverError", "status.503"), ("throttled", "run.429")):
        assert tally[fault] > 0, tally
        assert tally[fault] - users <= requests[kind] <= tally[fault], (kind, tally, requests)
    assert requests["serverError"] == failed["status: server error (HTTP 503)"]
    assert requests["retried"] >= requests["serverError"] + requests["throttled"] - users
    assert requests["connectionError"] == requests["refused"] == 0
    assert "requests: throttled (429)" in result.stdout
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f'<th scope="row">throttled (HTTP 429)</th><td class="num">{requests["throttled"]}' in (
        html
    )
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)
