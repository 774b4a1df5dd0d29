"""The emulator with real worker processes: handlers in tests/handlers/, run by the official runpod
SDK (`--worker`), nothing of it mocked. Every test ends with no worker process left (see
`no_worker_left_behind`)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from runpod_testkit.emulator.model import EmulatorConfig
from runpod_testkit.emulator.server import RunningEmulator, running_emulator
from runpod_testkit.emulator.workers import RUNTIME_ENV, WorkerCommandError, parse_worker_command
from tests.polling import wait_until

pytestmark = pytest.mark.slow

HANDLERS = Path(__file__).parent / "handlers"
AUTH = {"Authorization": "Bearer worker-test-key"}
START_TIMEOUT_S = 60.0
"""Bound for a worker process to start (importing runpod takes seconds on a busy machine)."""


def command(handler: str) -> str:
    return shlex.join([sys.executable, str(HANDLERS / handler)])


def worker_processes(runtime_prefix: str, **marks: str) -> list[psutil.Process]:
    """Every live process (children, grandchildren, orphans) that a runtime whose id starts with
    `runtime_prefix` started (and whose environment holds `marks`)."""
    found = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
            if env.get(RUNTIME_ENV, "").startswith(runtime_prefix) and all(
                env.get(key) == value for key, value in marks.items()
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    yield
    prefix = f"{os.getpid()}-"
    wait_until(lambda: not worker_processes(prefix), 10, "every worker process to be gone")


@contextmanager
def emulator(handler: str, **config: Any) -> Iterator[RunningEmulator]:
    settings = {"workers_min": 1, "workers_max": 1, "cold_start_ms": 0, "idle_timeout_s": 60.0}
    with running_emulator(EmulatorConfig(**{**settings, **config}), worker=command(handler)) as emu:
        yield emu


def run_sync(client: httpx.Client, url: str, job_input: dict[str, Any], **extra: Any) -> Any:
    response = client.post(
        f"{url}/runsync", json={"input": job_input, **extra}, headers=AUTH, timeout=90
    )
    assert response.status_code == 200, response.text
    return response.json()


def status(client: httpx.Client, url: str, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{url}/status/{job_id}", headers=AUTH).json()
    return body


def health(client: httpx.Client, url: str) -> dict[str, int]:
    workers: dict[str, int] = client.get(f"{url}/health", headers=AUTH).json()["workers"]
    return workers


def submit(client: httpx.Client, url: str, job_input: dict[str, Any], **extra: Any) -> str:
    response = client.post(f"{url}/run", json={"input": job_input, **extra}, headers=AUTH)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id


def wait_for_status(
    client: httpx.Client, url: str, job_id: str, wanted: str, timeout_s: float = START_TIMEOUT_S
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(status(client, url, job_id))
        return seen.get("status") == wanted

    wait_until(reached, timeout_s, f"job {job_id} to be {wanted} (last: {seen})", interval_s=0.05)
    return seen


def running_pid(emu: RunningEmulator, job_id: str, endpoint_id: str = "emulated") -> int:
    """The pid of the worker process running `job_id` (/status names no worker before the end)."""
    job = emu.app.model.get(endpoint_id, job_id)
    assert job is not None
    assert job.worker_id is not None
    runtime = emu.app.worker_processes
    assert runtime is not None
    process = runtime.processes[job.worker_id].process
    assert process is not None
    return process.pid


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_command_is_checked_before_anything_starts() -> None:
    with pytest.raises(WorkerCommandError, match="not found"):
        parse_worker_command("no-such-program-here handler.py")
    with pytest.raises(WorkerCommandError, match="needs a command"):
        parse_worker_command("  ")
    with pytest.raises(WorkerCommandError, match="not a valid command line"):
        parse_worker_command('python "unclosed')
    assert parse_worker_command(f"{sys.executable} 'my handler.py' --x") == [
        sys.executable,
        "my handler.py",
        "--x",
    ]


def test_results_errors_and_exceptions_of_a_sync_handler(capfd: pytest.CaptureFixture[str]) -> None:
    with emulator("handler_plain.py") as emu, httpx.Client() as client:
        url = emu.endpoint_url("plain-ep")
        done = run_sync(client, url, {"echo": "hi"})
        assert done["status"] == "COMPLETED", done
        output = done["output"]
        assert output["echo"] == "hi"
        # The worker runs with the SDK's production environment, and never the user's key.
        assert output["pod_id"] == done["workerId"]
        assert output["endpoint_id"] == "plain-ep"
        assert output["user_key_seen"] is False
        assert done["delayTime"] >= 0
        assert done["executionTime"] >= 0

        failed = run_sync(client, url, {"fail": "bad input"})
        assert failed["status"] == "FAILED"
        assert failed["error"] == "bad input"
        assert "output" not in failed

        raised = run_sync(client, url, {"raise": "boom"})
        assert raised["status"] == "FAILED"
        assert json.loads(raised["error"])["error_message"] == "boom"

        assert health(client, url)["idle"] == 1
        handle = emu.app.worker_processes.processes[done["workerId"]]  # type: ignore[union-attr]
        wait_until(lambda: handle.pings > 0, 10, "the worker's first ping")
        worker_id = done["workerId"]
    out, _err = capfd.readouterr()
    assert f"[worker {worker_id}] --- Starting Serverless Worker" in out


def test_generator_chunks_stream_once_in_order_and_aggregate() -> None:
    with emulator("handler_streaming.py") as emu, httpx.Client() as client:
        url = emu.endpoint_url()
        job_id = submit(client, url, {"chunks": 5, "interval_s": 0.1})
        chunks: list[Any] = []
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            body = client.get(f"{url}/stream/{job_id}", headers=AUTH, timeout=30).json()
            chunks += [item["output"] for item in body["stream"]]
            if body["status"] not in ("IN_QUEUE", "IN_PROGRESS"):
                break
        assert chunks == [{"index": i} for i in range(5)]
        final = status(client, url, job_id)
        assert final["status"] == "COMPLETED"
        assert final["output"] == [{"index": i} for i in range(5)]

        failed = run_sync(client, url, {"chunks": 3, "fail_at": 1})
        assert failed["status"] == "FAILED"
        assert failed["error"] == "failed at chunk 1"


def test_concurrency_modifier_runs_several_jobs_on_one_worker() -> None:
    with emulator("handler_batch.py") as emu, httpx.Client() as client:
        url = emu.endpoint_url()
        wait_until(lambda: health(client, url)["idle"] == 1, START_TIMEOUT_S, "the worker")
        ids = [submit(client, url, {"sleep_s": 1.5}) for _ in range(3)]
        results = [wait_for_status(client, url, job_id, "COMPLETED") for job_id in ids]
        assert len({result["workerId"] for result in results}) == 1
        outputs = [result["output"] for result in results]
        # Side by side: each job started before any other ended.
        assert max(out["started"] for out in outputs) < min(out["ended"] for out in outputs)


def test_cancel_of_an_async_job_reaches_the_handler_and_keeps_the_worker() -> None:
    with emulator("handler_batch.py") as emu, httpx.Client() as client:
        url = emu.endpoint_url()
        job_id = submit(client, url, {"sleep_s": 60})
        wait_for_status(client, url, job_id, "IN_PROGRESS")
        pid = running_pid(emu, job_id)
        cancelled = client.post(f"{url}/cancel/{job_id}", headers=AUTH).json()
        assert cancelled["status"] == "CANCELLED"
        # The SDK cancels the job's task: the same process is idle again, well before 60 s.
        wait_until(lambda: health(client, url)["idle"] == 1, 10, "the worker to be idle")
        after = run_sync(client, url, {"sleep_s": 0})
        assert after["status"] == "COMPLETED"
        assert after["output"]["pid"] == pid
        assert status(client, url, job_id)["status"] == "CANCELLED"


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_stuck_sync_job_is_stopped_by_stopping_its_process(how: str) -> None:
    # A second warm worker takes the next job while the stuck one is replaced.
    with (
        emulator("handler_plain.py", workers_min=2, workers_max=2) as emu,
        httpx.Client() as client,
    ):
        url = emu.endpoint_url()
        policy = {"policy": {"executionTimeout": 5000}} if how == "timeout" else {}
        job_id = submit(client, url, {"sleep_s": 60}, **policy)
        wait_for_status(client, url, job_id, "IN_PROGRESS")
        pid = running_pid(emu, job_id)
        if how == "cancel":
            client.post(f"{url}/cancel/{job_id}", headers=AUTH)
        ended = wait_for_status(
            client, url, job_id, "CANCELLED" if how == "cancel" else "TIMED_OUT"
        )
        if how == "timeout":
            assert 5000 <= ended["executionTime"] < 6000
        wait_until(lambda: pid_gone(pid), 10, "the stuck worker process to be stopped")
        # Another process serves the next job.
        after = run_sync(client, url, {"echo": 2})
        assert after["status"] == "COMPLETED"
        assert after["output"]["pid"] != pid


def test_refresh_worker_runs_each_job_in_a_new_process() -> None:
    with emulator("handler_refresh.py") as _emu, httpx.Client() as client:
        url = _emu.endpoint_url()
        first = run_sync(client, url, {})
        second = run_sync(client, url, {})
        assert first["status"] == second["status"] == "COMPLETED"
        assert first["output"]["pid"] != second["output"]["pid"]
        assert first["workerId"] != second["workerId"]
        wait_until(lambda: pid_gone(first["output"]["pid"]), 10, "the refreshed process to exit")


def test_progress_update_is_the_output_while_in_progress() -> None:
    with emulator("handler_progress.py") as emu, httpx.Client() as client:
        url = emu.endpoint_url()
        job_id = submit(client, url, {"sleep_s": 2})
        wait_until(
            lambda: status(client, url, job_id).get("output") == {"step": 1},
            START_TIMEOUT_S,
            "the progress update to show",
            interval_s=0.05,
        )
        assert status(client, url, job_id)["status"] == "IN_PROGRESS"
        done = wait_for_status(client, url, job_id, "COMPLETED")
        assert done["output"] == "done"


def test_a_job_whose_worker_dies_runs_again_on_a_new_worker(tmp_path: Path) -> None:
    with (
        emulator("handler_plain.py", workers_min=2, workers_max=2) as emu,
        httpx.Client() as client,
    ):
        url = emu.endpoint_url()
        marker = tmp_path / "exited-once"
        done = run_sync(client, url, {"exit_once": str(marker), "echo": "again"})
        if done["status"] == "IN_QUEUE":  # the /runsync wait ended while the job was queued
            done = wait_for_status(client, url, done["id"], "COMPLETED")
        assert marker.exists()
        assert done["status"] == "COMPLETED"
        assert done["output"]["echo"] == "again"
        jobs = client.get(f"{url}/health", headers=AUTH).json()["jobs"]
        assert jobs["retried"] == 1


def test_scaling_cold_starts_and_idle_retirement_use_real_processes() -> None:
    config = {"workers_min": 0, "workers_max": 2, "queue_delay_s": 0.0, "idle_timeout_s": 1.0}
    with emulator("handler_batch.py", cold_start_ms=300, **config) as emu, httpx.Client() as client:
        url = emu.endpoint_url()
        assert health(client, url)["initializing"] == 0
        started = time.monotonic()
        # One slow job fills a worker's first take; the queue-delay scaler adds a second worker.
        ids = [submit(client, url, {"sleep_s": 2}) for _ in range(6)]
        wait_until(
            lambda: health(client, url)["initializing"] + health(client, url)["running"] == 2,
            START_TIMEOUT_S,
            "two workers",
        )
        results = [wait_for_status(client, url, job_id, "COMPLETED") for job_id in ids]
        first = min(results, key=lambda result: result["delayTime"])
        # delayTime holds the real start-up plus the configured cold start.
        assert first["delayTime"] >= 300
        assert first["delayTime"] <= (time.monotonic() - started) * 1000
        assert len({result["workerId"] for result in results}) == 2
        # Each process's first take of jobs holds cold-start jobs, the earliest job among them.
        jobs = [emu.app.model.get("emulated", job_id) for job_id in ids]
        assert all(job is not None for job in jobs)
        cold = [job for job in jobs if job is not None and job.cold_start]
        assert {job.worker_id for job in cold} == {result["workerId"] for result in results}
        assert first["id"] in {job.id for job in cold}
        runtime = emu.app.worker_processes
        assert runtime is not None
        prefix = runtime.runtime_id
        assert len({p.environ()["RUNPOD_POD_ID"] for p in worker_processes(prefix)}) == 2
        # Idle past --idle-timeout-s: every process exits (workers-min 0).
        wait_until(lambda: not worker_processes(prefix), 15, "idle workers to be stopped")
        assert sum(health(client, url).values()) == 0


def test_ctrl_c_on_the_emulator_stops_every_worker_process(tmp_path: Path) -> None:
    emulator_process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runpod_testkit",
            "emulator",
            "--port",
            "0",
            "--workers-min",
            "2",
            "--worker",
            command("handler_plain.py"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert emulator_process.stdout is not None
        url = emulator_process.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:"), url
        with httpx.Client() as client:
            wait_until(
                lambda: health(client, f"{url}/any")["idle"] == 2, START_TIMEOUT_S, "2 workers"
            )
        prefix = f"{emulator_process.pid}-"
        assert len({p.environ()["RUNPOD_POD_ID"] for p in worker_processes(prefix)}) == 2
        emulator_process.send_signal(signal.SIGINT)
        # uvicorn shuts down gracefully, then ends by the signal it caught (as a shell expects).
        assert emulator_process.wait(15) in (0, -signal.SIGINT)
        wait_until(lambda: not worker_processes(prefix), 5, "every worker process to be gone")
    finally:
        if emulator_process.poll() is None:
            emulator_process.kill()
            emulator_process.wait(10)
        if emulator_process.stdout is not None:
            emulator_process.stdout.close()


def test_worker_option_reaches_every_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    from runpod_testkit.cli import main
    from runpod_testkit.loadtest.settings import Settings
    from tests.test_loadtest_settings import parse

    assert main(["check", "--worker", "python handler.py"]) == 2
    assert "add --emulator" in capsys.readouterr().err
    assert main(["check", "--emulator", "--worker", "no-such-program-here x.py"]) == 2
    assert "'no-such-program-here' not found" in capsys.readouterr().err
    assert main(["emulator", "--port", "0", "--worker", "no-such-program-here x.py"]) == 2
    assert "'no-such-program-here' not found" in capsys.readouterr().err
    settings = Settings.from_options(parse("--emulator-worker", "python handler.py"))
    assert settings.emulator.args() == ["--worker", "python handler.py"]


def test_the_contract_suite_passes_with_the_probe_as_a_real_worker() -> None:
    """The same checks the simulated probe passes, against `python -m runpod_testkit.probe`
    run by the runpod SDK (about 40 s: each fresh endpoint of the suite starts a process)."""
    probe = shlex.join([sys.executable, "-m", "runpod_testkit.probe"])
    args = [sys.executable, "-m", "pytest", "contract", "--emulator", "--worker", probe, "-q"]
    with subprocess.Popen(
        [*args, "-p", "no:cacheprovider"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    ) as run:
        try:
            stdout, stderr = run.communicate(timeout=240)
        finally:
            run.kill()
    wait_until(lambda: not worker_processes(f"{run.pid}-"), 5, "the suite's worker processes")
    suite = subprocess.CompletedProcess(args, run.returncode, stdout, stderr)
    summary = [line for line in suite.stdout.splitlines() if line.startswith("checks:")]
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert summary, suite.stdout[-2000:]
    assert summary[-1].startswith("checks: 0 fail, 0 drift,")
    assert summary[-1].endswith(" 0 skip")


def test_a_worker_that_dies_at_start_up_is_unhealthy_and_not_restarted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken_handler.py"
    broken.write_text("import sys\nprint('cannot load the model', file=sys.stderr)\nsys.exit(4)\n")
    config = EmulatorConfig(workers_min=1, workers_max=1, cold_start_ms=0)
    worker = shlex.join([sys.executable, str(broken)])
    with running_emulator(config, worker=worker) as emu, httpx.Client() as client:
        url = emu.endpoint_url()
        wait_until(lambda: health(client, url)["unhealthy"] == 1, 30, "an unhealthy worker")
        job_id = submit(client, url, {})
        assert status(client, url, job_id)["status"] == "IN_QUEUE"
        assert health(client, url) == {**health(client, url), "initializing": 0, "idle": 0}
        assert emu.app.worker_processes is not None
        assert not emu.app.worker_processes.processes
    err = capfd.readouterr().err
    assert "] cannot load the model" in err
    assert "exited with code 4 before taking a job: marked unhealthy" in err


def test_a_load_run_with_emulator_worker_matches_the_job_log(tmp_path: Path) -> None:
    """Locust's embedded emulator with real probe workers: the job statistics are the job
    log's ground truth, the key never shows, and no worker process outlives the run."""
    from tests.test_loadtests import (
        API_KEY,
        assert_key_never_shown,
        assert_matches_job_log,
        explain,
        locust_command,
    )

    log, stats = tmp_path / "jobs.log", tmp_path / "stats.json"
    probe = shlex.join([sys.executable, "-m", "runpod_testkit.probe"])
    mark = f"load-{os.getpid()}-{time.monotonic_ns()}"
    options = (
        "--headless", "-u", "3", "-r", "3", "--run-time", "8s",
        "--probe-input", '{"sleep_ms": 200}', "--poll-interval", "0.05",
        "--emulator-worker", probe, "--emulator-workers-min", "1",
        "--emulator-job-log", str(log), "--job-stats-json", str(stats),
        "RunPollUser", "RunSyncUser",
    )  # fmt: skip
    result = subprocess.run(
        locust_command(*options),
        cwd=tmp_path,
        env={**os.environ, "RUNPOD_API_KEY": API_KEY, "RUNPOD_TESTKIT_TEST_MARK": mark},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, explain(result)
    assert_matches_job_log(stats, log)
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert {row["status"] for row in rows} <= {"COMPLETED", "CANCELLED"}
    assert all(row["executionTime"] >= 200 for row in rows if row["status"] == "COMPLETED")
    assert_key_never_shown(tmp_path, result.stdout, result.stderr)

    wait_until(
        lambda: not worker_processes("", RUNPOD_TESTKIT_TEST_MARK=mark),
        5,
        "the load run's worker processes to be gone",
    )
