"""The preflight where users meet it: real Locust processes (headless, and `--processes 2`), the
real `runpod-testkit check` and `pytest contract` commands, against an emulator process started
with --api-key, --endpoint-id and --job-log. No key, a wrong key, a dead port, an unknown
endpoint id and a bad probe input each exit 2 within 10 s with one clear line, never show the
key, and leave the emulator's job log and /health counters as they were: no job submitted.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runpod_testkit.emulator.server import EmulatorProcess
from tests.polling import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = str(ROOT / "loadtests" / "locustfile.py")
CANARY = "rpa_PREFLIGHT_RUNS_CANARY_77e1"
ENDPOINT_ID = "good"
BOUND_S = 10.0
"""A refused run ends within this many seconds of being started up (see start_up_s)."""


@dataclass
class Emulator:
    base_url: str
    job_log: Path

    def jobs_seen(self) -> tuple[int, dict[str, int]]:
        """(lines in the job log, /health job counters of the one endpoint id)."""
        lines = len(self.job_log.read_text(encoding="utf-8").splitlines())
        answer = httpx.get(
            f"{self.base_url}/{ENDPOINT_ID}/health",
            headers={"Authorization": f"Bearer {CANARY}"},
            timeout=5,
        )
        answer.raise_for_status()
        counters: dict[str, int] = answer.json()["jobs"]
        return lines, counters


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    job_log = tmp_path_factory.mktemp("emulator") / "jobs.jsonl"
    job_log.touch()
    args = ["--api-key", CANARY, "--endpoint-id", ENDPOINT_ID, "--cold-start-ms", "0"]
    with EmulatorProcess(args, job_log=job_log) as process:
        yield Emulator(process.base_url, job_log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}/v2/{ENDPOINT_ID}"


def environment(api_key: str | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("RUNPOD_") and name != "ENDPOINT_ID"
    }
    if api_key is not None:
        env["RUNPOD_API_KEY"] = api_key
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Ended:
    returncode: int
    output: str
    seconds: float
    start_up_s: float


def run(command: list[str], api_key: str | None, cwd: Path) -> Ended:
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=environment(api_key),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ended = time.monotonic() - started
    return Ended(
        done.returncode, done.stdout + done.stderr, ended, start_up_s(command, api_key, cwd)
    )


def start_up_s(command: list[str], api_key: str | None, cwd: Path) -> float:
    """How long the same command takes to start and print its --help (interpreter, imports,
    plugins, measured now): a busy machine slows every start-up alike, and the bound is on
    what the tool does after it."""
    started = time.monotonic()
    subprocess.run(
        [*command, "--help"],
        cwd=cwd,
        env=environment(api_key),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return time.monotonic() - started


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " error: " in line or "Exit: " in line]


def assert_refused(ended: Ended, *expected: str) -> None:
    explain = f"exit {ended.returncode} after {ended.seconds:.1f} s:\n{ended.output[-3000:]}"
    assert ended.returncode == 2, explain
    assert ended.seconds < BOUND_S + ended.start_up_s, explain
    errors = error_lines(ended.output)
    assert len(errors) == 1, explain
    for text in expected:
        assert text in errors[0], explain
    assert "Traceback" not in ended.output, explain
    assert CANARY not in ended.output


CASES = {
    # name: (key, endpoint (None: the emulator's good id), extra options, words of the line)
    "no-key": (None, None, (), ("RUNPOD_API_KEY is not set", "--api-key")),
    "wrong-key": ("rpa_WRONG_KEY_123456", None, (), ("refused the API key in RUNPOD_API_KEY",)),
    "dead-port": (CANARY, "dead", (), ("connection refused",)),
    "unknown-id": (CANARY, "WRONG_ID", (), ("no endpoint 'WRONG_ID'",)),
    "bad-probe-input": (
        CANARY,
        None,
        ("--probe-input", '{"sleep_ms": -5}'),
        ("--probe-input", "'sleep_ms' must be from 0"),
    ),
}


def endpoint_for(emulator: Emulator, where: str | None) -> str:
    if where == "dead":
        return dead_endpoint()
    return f"{emulator.base_url}/{where or ENDPOINT_ID}"


@pytest.mark.parametrize("processes", [(), ("--processes", "2")], ids=["headless", "processes-2"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_load_run_that_would_fail_exits_2_before_any_job(
    case: str, processes: tuple[str, ...], emulator: Emulator, tmp_path: Path
) -> None:
    key, where, extra, expected = CASES[case]
    before = emulator.jobs_seen()
    if processes:  # a master port of its own: other runs on this machine may hold the default
        port = str(free_port())
        processes += ("--master-bind-port", port, "--master-port", port)
    command = [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "-u", "4", "-r", "4",
        "--run-time", "5s", *processes, "--host", endpoint_for(emulator, where), *extra,
    ]  # fmt: skip
    ended = run(command, key, tmp_path)
    assert_refused(ended, *expected)
    assert "Ramping to" not in ended.output
    assert emulator.jobs_seen() == before


@pytest.mark.parametrize("case", ["wrong-key", "dead-port", "unknown-id"])
def test_check_that_would_fail_exits_2_with_one_line_and_no_job(
    case: str, emulator: Emulator, tmp_path: Path
) -> None:
    key, where, _, expected = CASES[case]
    before = emulator.jobs_seen()
    command = [sys.executable, "-m", "runpod_testkit", "check"]
    ended = run([*command, "--endpoint-url", endpoint_for(emulator, where)], key, tmp_path)
    assert_refused(ended, "runpod-testkit check: error:", *expected)
    assert ended.output.strip().splitlines() == error_lines(ended.output)  # nothing else
    assert emulator.jobs_seen() == before


@pytest.mark.parametrize("case", ["wrong-key", "unknown-id"])
def test_the_contract_suite_stops_before_any_check(
    case: str, emulator: Emulator, tmp_path: Path
) -> None:
    key, where, _, expected = CASES[case]
    before = emulator.jobs_seen()
    command = [
        sys.executable, "-m", "pytest", str(ROOT / "contract"), "-p", "no:cacheprovider", "-q",
        "--endpoint-url", endpoint_for(emulator, where),
    ]  # fmt: skip
    ended = run(command, key, tmp_path)
    assert_refused(ended, "preflight:", *expected)
    assert " passed" not in ended.output
    assert " failed" not in ended.output
    assert emulator.jobs_seen() == before


def test_the_job_log_does_record_a_job(emulator: Emulator) -> None:
    """The control: the evidence above would be empty anyway if the log recorded nothing."""
    lines, _ = emulator.jobs_seen()
    answer = httpx.post(
        f"{emulator.base_url}/{ENDPOINT_ID}/run",
        headers={"Authorization": f"Bearer {CANARY}"},
        json={"input": {"sleep_ms": 0}},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    wait_until(lambda: emulator.jobs_seen()[0] == lines + 1, 10, "the job in the log")


def test_the_web_ui_refuses_a_start_that_would_fail(emulator: Emulator, tmp_path: Path) -> None:
    """A start from the form with an unknown endpoint id, or a bad probe input, answers the
    form with the reason and spawns nobody; the run starts once the form is right."""
    web = f"http://127.0.0.1:{free_port()}"
    good = f"{emulator.base_url}/{ENDPOINT_ID}"
    before = emulator.jobs_seen()
    output = (tmp_path / "locust.out").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-host", "127.0.0.1",
            "--web-port", web.rsplit(":", 1)[1], "--host", good, "RunPollUser",
        ],
        cwd=tmp_path,
        env=environment(CANARY),
        stdout=output,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def ui_up() -> bool:
            try:
                return httpx.get(web, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ui_up, 30, "the web UI")
        form = {"user_count": "1", "spawn_rate": "1"}
        wrong = httpx.post(f"{web}/swarm", data={**form, "host": f"{emulator.base_url}/WRONG_ID"})
        assert wrong.json()["success"] is False
        assert "no endpoint 'WRONG_ID'" in wrong.json()["message"]
        bad = httpx.post(
            f"{web}/swarm", data={**form, "host": good, "probe_input": '{"chunks": -1}'}
        )
        assert bad.json()["success"] is False
        assert "'chunks' must be from 0" in bad.json()["message"]
        assert httpx.get(f"{web}/stats/requests", timeout=5).json()["user_count"] == 0
        assert emulator.jobs_seen() == before
        started = httpx.post(f"{web}/swarm", data={**form, "host": good})
        assert started.json()["success"] is True, started.text
        wait_until(lambda: emulator.jobs_seen()[1] != before[1], 30, "a job from the started run")
        assert httpx.post(f"{web}/stop", timeout=30).json()["success"]
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        output.close()
    text = (tmp_path / "locust.out").read_text(encoding="utf-8")
    assert CANARY not in text
    assert "the run was not started: no endpoint 'WRONG_ID'" in text
