"""End-to-end tests of loadtests/locustfile.py: real Locust processes against the emulator.

Ground truth is the emulator's --job-log (one line per job that ended, with its true delayTime and
executionTime). Every run checks that the job counts of --job-stats-json equal the log's and that
p50, p95 and p99 of delayTime and executionTime are within 1% of the values computed from the log
(HDR's rank rule: the value of rank round(p% x n)).

Runs without CancelUser: a CANCELLED line can only be a job in flight at the stop, which the run
cancelled; the statistics count those as "interrupted" and keep them out of the metrics.
Everything talks to 127.0.0.1; every process and wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from runpod_testkit.emulator.server import EmulatorProcess
from runpod_testkit.loadtest.tracker import CANCEL_AFTER_END
from runpod_testkit.operations import OPERATIONS
from tests.polling import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = str(ROOT / "loadtests" / "locustfile.py")
API_KEY = "rpa_LOADTEST_SECRET_7f3a9c"
"""A fake key: it must reach the endpoint and never appear in any output."""
RUN_TIMEOUT_S = 90
# Varied job lengths and cold starts (idle workers retire fast), so delayTime and
# executionTime have real distributions.
VARIED_INPUTS = json.dumps([{"sleep_ms": 40 + 23 * i} for i in range(16)])
EMULATOR_KNOBS = (
    "--emulator-workers-max", "3",
    "--emulator-cold-start-ms", "250",
    "--emulator-idle-timeout-s", "0.2",
    "--emulator-queue-delay-s", "0.3",
)  # fmt: skip
FAST_POLLING = ("--poll-interval", "0.05", "--health-interval", "0.5")
NO_CANCEL_USERS = ("RunPollUser", "RunSyncUser", "StreamUser")
SPAWNED = re.compile(r"All users spawned|Spawning is complete")
"""Locust's master has finished spawning (either of its two messages)."""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def locust_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args]


def environment() -> dict[str, str]:
    return {**os.environ, "RUNPOD_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}


def run_locust(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        locust_command(*args),
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    out, err = result.stdout[-4000:], result.stderr[-6000:]
    return f"exit {result.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def hdr_rank_value(values: Sequence[int], percent: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, int(percent * len(ordered) / 100 + 0.5)) - 1]


def assert_matches_job_log(
    stats_path: Path, log_path: Path, *, cancel_users: bool = False, varied: bool = False
) -> None:
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    rows = read_log(log_path)
    jobs = stats["jobs"]
    assert rows, "the emulator logged no job"
    assert jobs["submitted"] == len(rows)
    by_status = Counter(row["status"] for row in rows)
    interrupted = jobs.get("interrupted", 0)
    assert "error" not in jobs
    assert "timeout" not in jobs
    if cancel_users:
        assert jobs.get("CANCELLED", 0) + interrupted == by_status["CANCELLED"]
        compared = rows  # interrupted jobs may hide among them; compare counts only below
    else:
        assert "CANCELLED" not in jobs
        assert interrupted == by_status["CANCELLED"]
        compared = [row for row in rows if row["status"] != "CANCELLED"]
    for status, count in by_status.items():
        if status != "CANCELLED":
            assert jobs[status] == count, status
    if cancel_users:
        return
    for metric in ("delayTime", "executionTime"):
        values = [row[metric] for row in compared if row[metric] is not None]
        summary = stats["metrics"][metric]
        assert summary["count"] == len(values), metric
        if varied:
            assert len(set(values)) > 5, f"{metric} should vary: {sorted(set(values))}"
        for label, percent in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0)):
            exact = hdr_rank_value(values, percent)
            assert summary[label] == pytest.approx(exact, rel=0.01, abs=0), (metric, label)


def assert_key_never_shown(tmp_path: Path, *texts: str) -> None:
    for text in texts:
        assert API_KEY not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert API_KEY not in path.read_text(encoding="utf-8", errors="replace"), path


def assert_request_names_are_operations(locust_json: Path) -> None:
    entries = json.loads(locust_json.read_text(encoding="utf-8"))
    names = {entry["name"] for entry in entries}
    assert names, "Locust recorded no request"
    # Each is an operation's name, or the stop's cancel of a job that had already ended.
    assert names <= {*OPERATIONS, CANCEL_AFTER_END}, names
    # The /health sampler's requests stay out of Locust's statistics (and its Aggregated row).
    assert "health" not in names


@contextmanager
def emulator(log_path: Path, *args: str) -> Iterator[str]:
    """An emulator process with a job log; yields its base URL (http://127.0.0.1:PORT/v2)."""
    with EmulatorProcess(args, job_log=log_path) as process:
        yield process.base_url


def health(endpoint_url: str) -> dict[str, Any]:
    response = httpx.get(
        f"{endpoint_url}/health", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    response.raise_for_status()
    jobs: dict[str, Any] = response.json()["jobs"]
    return jobs


def in_flight(endpoint_url: str) -> int:
    jobs = health(endpoint_url)
    return int(jobs["inQueue"]) + int(jobs["inProgress"])


def locust_output(tmp_path: Path) -> str:
    return (tmp_path / "locust.out").read_text(encoding="utf-8")


@contextmanager
def background_locust(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A Locust process we stop ourselves; killed if a test leaves it running."""
    output = (tmp_path / "locust.out").open("w", encoding="utf-8")
    process = subprocess.Popen(
        locust_command(*args),
        cwd=tmp_path,
        env=environment(),
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        output.close()


# --------------------------------------------------------------------------- runs


def test_headless_run_matches_the_job_log(tmp_path: Path) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "6", "-r", "6", "--run-time", "7s",
        "--probe-input", VARIED_INPUTS, *FAST_POLLING, *EMULATOR_KNOBS,
        "--emulator-job-log", str(log), "--job-stats-json", str(stats),
        "--job-stats-csv", str(tmp_path / "stats.csv"),
        "--job-stats-html", str(tmp_path / "report.html"),
        "--json-file", str(tmp_path / "locust"),
        "--threshold", "delayTime:p95<60s", "--threshold", "failures:rate<=0",
        *NO_CANCEL_USERS,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert_matches_job_log(stats, log, varied=True)
    assert_request_names_are_operations(tmp_path / "locust.json")
    document = json.loads(stats.read_text(encoding="utf-8"))
    assert document["metrics"]["ttfc"]["count"] > 0  # StreamUser ran
    assert document["stream"]["chunks"] >= document["stream"]["streams"] > 0
    assert [t["passed"] for t in document["thresholds"]] == [True, True]
    assert "Job statistics (runpod-testkit)" in result.stdout
    assert "PASS  delayTime:p95<60s" in result.stdout
    sampler = re.search(r"^/health sampler: (\d+) requests, 0 failed", result.stdout, re.M)
    assert sampler is not None, result.stdout[-3000:]
    assert int(sampler.group(1)) >= 7  # one every 0.5 s for 7 s, and the last one
    assert "job-stats-table" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)


def test_processes_2_in_the_open_model_matches_the_job_log(tmp_path: Path) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    port = free_port()
    rate, seconds = 16.0, 7
    result = run_locust(
        tmp_path,
        "--headless", "--processes", "2", "--master-bind-port", str(port),
        "--master-port", str(port), "-u", "10", "-r", "100", "--run-time", f"{seconds}s",
        "--arrival-rate", str(rate), "--probe-input", VARIED_INPUTS, *FAST_POLLING,
        *EMULATOR_KNOBS, "--emulator-job-log", str(log), "--job-stats-json", str(stats),
        *NO_CANCEL_USERS,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert_matches_job_log(stats, log, varied=True)
    jobs = json.loads(stats.read_text(encoding="utf-8"))["jobs"]
    arrivals = jobs["submitted"] + jobs.get("dropped", 0)
    expected = rate * seconds  # both workers together offer the whole rate
    assert 0.6 * expected < arrivals < 1.4 * expected, jobs
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)


def test_master_and_two_workers_match_the_job_log_and_fail_a_threshold(tmp_path: Path) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    port = free_port()
    workers = [
        subprocess.Popen(
            locust_command("--worker", "--master-port", str(port)),
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        result = run_locust(
            tmp_path,
            "--headless", "--master", "--expect-workers", "2", "--master-bind-port", str(port),
            "-u", "6", "-r", "6", "--run-time", "7s",
            "--probe-input", VARIED_INPUTS, *FAST_POLLING, *EMULATOR_KNOBS,
            "--emulator-job-log", str(log), "--job-stats-json", str(stats),
            "--threshold", "delayTime:p95<60s", "--threshold", "executionTime:max<1",
            *NO_CANCEL_USERS,
        )  # fmt: skip
        worker_errors = [worker.communicate(timeout=30)[1] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    assert result.returncode == 3, explain(result)  # a threshold failed; Locust's own is 1
    assert [worker.returncode for worker in workers] == [0, 0], worker_errors
    assert_matches_job_log(stats, log, varied=True)
    document = json.loads(stats.read_text(encoding="utf-8"))
    assert [t["passed"] for t in document["thresholds"]] == [True, False]
    assert "FAIL  executionTime:max<1" in result.stdout
    assert_key_never_shown(tmp_path, result.stdout, result.stderr, *worker_errors)


def test_quick_start_runs_the_default_users_and_prints_the_table(tmp_path: Path) -> None:
    """The README's first command, shortened: no --host, no class named."""
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "8", "-r", "8", "--run-time", "5s",
        "--emulator-job-log", str(log), "--job-stats-json", str(stats),
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert_matches_job_log(stats, log)  # no CancelUser unless named
    document = json.loads(stats.read_text(encoding="utf-8"))
    assert document["jobs"]["COMPLETED"] > 0
    assert document["metrics"]["ttfc"]["count"] > 0
    table = result.stdout[result.stdout.index("Job statistics (runpod-testkit)") :]
    lines = table.splitlines()
    assert lines[1].split()[:3] == ["metric", "(ms)", "count"]
    assert [line.split()[0] for line in lines[2:6]] == ["delayTime", "executionTime", "e2e", "ttfc"]
    assert any(line.split()[:1] == ["submitted"] for line in lines)


def test_the_shipped_config_file_runs(tmp_path: Path) -> None:
    """loadtests/locust.conf, shortened by command-line options (they win over the file)."""
    outputs = {name: tmp_path / f"job-stats.{name}" for name in ("json", "csv", "html")}
    result = subprocess.run(
        [
            sys.executable, "-m", "locust", "--config", "loadtests/locust.conf",
            "-u", "4", "-r", "4", "--run-time", "3s", "--probe-input", '{"sleep_ms": 100}',
            *(f"--job-stats-{name}={path}" for name, path in outputs.items()),
            "RunPollUser",
        ],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert all(path.is_file() for path in outputs.values())
    document = json.loads(outputs["json"].read_text(encoding="utf-8"))
    assert [t["rule"] for t in document["thresholds"]] == [
        "delayTime:p95<15000",
        "e2e:p99<30s",
        "failures:rate<1%",
    ]
    assert all(t["passed"] for t in document["thresholds"])
    assert document["metrics"]["executionTime"]["p50"] == 100


def test_reset_stats_resets_the_job_statistics_too(tmp_path: Path) -> None:
    """--reset-stats: Locust resets its request statistics once every user is spawned; the
    job statistics start over then too (a slow ramp-up leaves jobs before it)."""
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "3", "-r", "1", "--run-time", "5s", "--reset-stats",
        "--poll-interval", "0.05", "--health-interval", "0", "--probe-input", '{"sleep_ms": 50}',
        "--emulator-workers-max", "3", "--emulator-cold-start-ms", "0",
        "--emulator-job-log", str(log), "--job-stats-json", str(stats), "RunPollUser",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    assert "Resetting stats" in result.stderr
    jobs = json.loads(stats.read_text(encoding="utf-8"))["jobs"]
    logged = len(read_log(log))
    # Two seconds of ramp-up at ~10 jobs/s per user went before the reset.
    assert 0 < jobs["submitted"] < logged - 10, (jobs, logged)


def test_cancel_user_jobs_end_cancelled(tmp_path: Path) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    result = run_locust(
        tmp_path,
        "--headless", "-u", "4", "-r", "4", "--run-time", "4s", *FAST_POLLING,
        "--probe-input", '{"sleep_ms": 3000}', "--emulator-job-log", str(log),
        "--job-stats-json", str(stats), "CancelUser",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)  # no "ended X after /cancel" failure
    assert_matches_job_log(stats, log, cancel_users=True)
    jobs = json.loads(stats.read_text(encoding="utf-8"))["jobs"]
    assert jobs["CANCELLED"] >= 4
    assert "COMPLETED" not in jobs  # cancelled within 1 s, long before 3 s of work


@pytest.mark.parametrize("processes", [(), ("--processes", "2")], ids=["local", "processes-2"])
def test_ctrl_c_cancels_the_jobs_in_flight(tmp_path: Path, processes: tuple[str, ...]) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    port = str(free_port())
    ports = ("--master-bind-port", port, "--master-port", port) if processes else ()
    with emulator(log, "--workers-max", "2", "--cold-start-ms", "0") as base_url:
        endpoint = f"{base_url}/ctrl-c"
        with background_locust(
            tmp_path,
            "--headless", "-u", "4", "-r", "4", *processes, *ports, "--host", endpoint,
            "--probe-input", '{"sleep_ms": 60000}', "--job-stats-json", str(stats),
            "RunPollUser", "StreamUser",
        ) as process:  # fmt: skip
            wait_until(lambda: in_flight(endpoint) == 4, 30, "4 jobs in flight")
            # (A Ctrl-C while Locust still counts its spawned users fails Locust itself.) The
            # master says "All users spawned", or, when a busy worker's report comes after its
            # wait, "Spawning is complete ... not all reports received".
            wait_until(lambda: SPAWNED.search(locust_output(tmp_path)) is not None, 30, "spawning")
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
            assert process.wait(30) == 0, locust_output(tmp_path)
        assert in_flight(endpoint) == 0
        rows = read_log(log)
    output = locust_output(tmp_path)
    assert [row["status"] for row in rows] == ["CANCELLED"] * 4, output
    jobs = json.loads(stats.read_text(encoding="utf-8"))["jobs"]
    assert jobs == {"submitted": 4, "interrupted": 4}, output
    assert re.search(r"^interrupted +4  \(in flight at stop; cancelled by the run", output, re.M)
    assert "no final job statistics" not in output
    assert_key_never_shown(tmp_path, output)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("processes", [(), ("--processes", "2")], ids=["local", "processes-2"])
def test_ctrl_c_mid_run_ends_cleanly_with_the_embedded_emulator(
    tmp_path: Path, processes: tuple[str, ...]
) -> None:
    """A Ctrl-C while users send hundreds of requests a second: no user dies of it (Python's
    own handler raises it in whichever greenlet runs), and the embedded emulator, in the same
    foreground process group, outlives it to answer the cancels of the jobs in flight; then
    the run stops it. (Before: exit status -2, 1 or 2 in 11 of 12 such runs.)"""
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    port = str(free_port())
    ports = ("--master-bind-port", port, "--master-port", port) if processes else ()
    with background_locust(
        tmp_path,
        "--headless", "-u", "8", "-r", "8", *processes, *ports,
        "--probe-input", '{"sleep_ms": 1}', "--poll-interval", "0.01",
        "--emulator-job-log", str(log), "--job-stats-json", str(stats), "RunPollUser",
    ) as process:  # fmt: skip

        def ended_jobs() -> int:
            return len(log.read_text(encoding="utf-8").splitlines()) if log.is_file() else 0

        wait_until(lambda: ended_jobs() >= 300, 60, "300 jobs ended")
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        assert process.wait(30) == 0, locust_output(tmp_path)
        # The emulator (and every worker process) went with the run.
        wait_until(lambda: not group_alive(process.pid), 15, "the process group to end")
    output = locust_output(tmp_path)
    assert "KeyboardInterrupt" not in output, output
    assert "could not cancel" not in output, output
    rows = read_log(log)
    jobs = json.loads(stats.read_text(encoding="utf-8"))["jobs"]
    # Every job the run submitted ended on the emulator; the ones in flight at the Ctrl-C were
    # cancelled by the run.
    assert jobs["submitted"] == len(rows), output
    statuses = Counter(row["status"] for row in rows)
    assert jobs.get("interrupted", 0) == statuses["CANCELLED"], (jobs, statuses)
    assert jobs["COMPLETED"] == statuses["COMPLETED"], (jobs, statuses)
    assert_key_never_shown(tmp_path, output)


def test_web_ui_stop_cancels_the_jobs_in_flight_on_workers(tmp_path: Path) -> None:
    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    web_port, master_port = free_port(), free_port()
    web = f"http://127.0.0.1:{web_port}"
    with emulator(log, "--workers-max", "2", "--cold-start-ms", "0") as base_url:
        endpoint = f"{base_url}/web-stop"
        with background_locust(
            tmp_path,
            "--processes", "2", "--web-host", "127.0.0.1", "--web-port", str(web_port),
            "--master-bind-port", str(master_port), "--master-port", str(master_port),
            "--host", endpoint, "--probe-input", '{"sleep_ms": 60000}',
            "--job-stats-json", str(stats), "RunPollUser", "StreamUser",
        ) as process:  # fmt: skip

            def workers_ready() -> bool:
                try:
                    count = httpx.get(f"{web}/worker-count", timeout=2).json()["worker_count"]
                except httpx.HTTPError:
                    return False
                return bool(count == 2)

            wait_until(workers_ready, 30, "the web UI and two workers")
            started = httpx.post(
                f"{web}/swarm", data={"user_count": 4, "spawn_rate": 4, "host": endpoint}
            )
            assert started.json()["success"], started.text
            wait_until(lambda: in_flight(endpoint) == 4, 30, "4 jobs in flight")
            # Fewer users: Locust stops two of them, and their jobs are cancelled.
            fewer = httpx.post(
                f"{web}/swarm", data={"user_count": 2, "spawn_rate": 4, "host": endpoint}
            )
            assert fewer.json()["success"], fewer.text
            wait_until(lambda: in_flight(endpoint) == 2, 30, "2 jobs in flight after ramp-down")
            assert httpx.post(f"{web}/stop", timeout=60).json()["success"]
            wait_until(lambda: in_flight(endpoint) == 0, 30, "no job in flight after stop")
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 0
        rows = read_log(log)
    output = locust_output(tmp_path)
    assert [row["status"] for row in rows] == ["CANCELLED"] * 4, output
    jobs = json.loads(stats.read_text(encoding="utf-8"))["jobs"]
    assert jobs == {"submitted": 4, "interrupted": 4}, output
    assert_key_never_shown(tmp_path, output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--probe-input", "{sleep_ms: 1}"), "argument --probe-input: the value is not valid JSON"),
        (("--threshold", "delayTime<5"), "argument --threshold: invalid threshold 'delayTime<5'"),
        (("--probe-input", "@missing.json"), "file 'missing.json': no such file"),
        (("--host", "http://127.0.0.1:9/v2"), "--host looks like a base URL"),
    ],
)
def test_bad_options_exit_2_with_the_reason(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_locust(tmp_path, "--headless", "-u", "1", "--run-time", "1s", *args)
    assert result.returncode == 2, explain(result)
    assert message in result.stderr


def test_a_malformed_key_exits_2_without_showing_it(tmp_path: Path) -> None:
    key = "rpa_SECRET_PART one-more"
    result = subprocess.run(
        locust_command("--headless", "-u", "1", "--run-time", "1s"),
        cwd=tmp_path,
        env={**environment(), "RUNPOD_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 2, explain(result)
    assert "RUNPOD_API_KEY contains whitespace" in result.stderr
    assert "SECRET_PART" not in result.stdout + result.stderr
