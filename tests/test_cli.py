"""The `runpod-testkit` command: `emulator --help` explains every option, a bad option value
exits non-zero with one line naming the option, and the real command serves over HTTP.

Most checks call `main()` in this process (with the server's `run` replaced, so a value wrongly
accepted fails the test instead of serving); the `slow` ones start the real command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from runpod_testkit.cli import build_parser, main
from runpod_testkit.emulator import server as server_module
from runpod_testkit.emulator.server import EmulatorProcess
from runpod_testkit.operations import JobStatus, operation
from tests.polling import wait_until


def emulator_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices["emulator"]
            return found
    raise AssertionError("no emulator subcommand")


def option_actions() -> list[argparse.Action]:
    return [action for action in emulator_parser()._actions if action.option_strings]


def squeeze(text: str) -> str:
    """Whitespace collapsed and hyphen breaks rejoined, so that wrapped help still matches."""
    return " ".join(re.sub(r"-\n\s+", "-", text).split())


@pytest.fixture
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail instead of serving if a bad value is wrongly accepted."""

    def refuse(self: object, sockets: object = None) -> None:
        raise AssertionError("the emulator started although an option was bad")

    monkeypatch.setattr(server_module.EmulatorServer, "run", refuse)


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["emulator", "--help"]) == 0
    shown = squeeze(capsys.readouterr().out)
    actions = option_actions()
    assert len(actions) >= 10
    for action in actions:
        assert action.help, f"{action.option_strings} has no help"
        assert action.help != argparse.SUPPRESS
        assert squeeze(action.help) in shown, action.help
        for flag in action.option_strings:
            assert flag in shown, flag


def test_the_documented_interface_is_there() -> None:
    # docs/interfaces.md#emulator: runpod-testkit emulator --host --port [--api-key] [--workers-min]
    # [--workers-max] [--cold-start-ms] [--idle-timeout-s] [--job-log FILE]
    flags = {flag for action in option_actions() for flag in action.option_strings}
    documented = {
        "--host",
        "--port",
        "--api-key",
        "--workers-min",
        "--workers-max",
        "--cold-start-ms",
        "--idle-timeout-s",
        "--job-log",
    }
    assert documented <= flags


BAD_VALUES: list[tuple[list[str], str]] = [
    (["--port", "x"], "--port"),
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--port"], "--port"),
    (["--workers-max", "0"], "--workers-max"),
    (["--workers-min", "-1"], "--workers-min"),
    (["--workers-min", "5", "--workers-max", "2"], "--workers-max"),
    (["--cold-start-ms", "-1"], "--cold-start-ms"),
    (["--cold-start-ms", "1.5"], "--cold-start-ms"),
    (["--idle-timeout-s", "nan"], "--idle-timeout-s"),
    (["--queue-delay-s", "inf"], "--queue-delay-s"),
    (["--retention-async-s", "-0.5"], "--retention-async-s"),
    (["--retention-sync-s", "soon"], "--retention-sync-s"),
    (["--log-level", "loud"], "--log-level"),
    (["--seed", "x"], "--seed"),
    (["--bogus"], "--bogus"),
    (["--port", "0", "extra"], "extra"),
]


@pytest.mark.usefixtures("never_serve")
@pytest.mark.parametrize(("argv", "named"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_option_value_fails_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert exit_code(["emulator", *argv]) != 0
    output = capsys.readouterr()
    assert output.out == ""
    lines = output.err.splitlines()
    assert len(lines) == 1, output.err
    assert named in lines[0]


@pytest.mark.usefixtures("never_serve")
@pytest.mark.parametrize("where", ["missing-directory", "a-directory"])
def test_an_unwritable_job_log_fails_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    target = tmp_path / "missing" / "jobs.jsonl" if where == "missing-directory" else tmp_path
    assert exit_code(["emulator", "--port", "0", "--job-log", str(target)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "--job-log" in lines[0]
    assert str(target) in lines[0]
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@pytest.mark.usefixtures("never_serve")
def test_a_taken_port_fails_with_one_line(
    capsys: pytest.CaptureFixture[str], taken_port: int, tmp_path: Path
) -> None:
    log = tmp_path / "jobs.jsonl"
    argv = ["emulator", "--host", "127.0.0.1", "--port", str(taken_port), "--job-log", str(log)]
    assert exit_code(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "--port" in lines[0]
    assert str(taken_port) in lines[0]


# --- the real command -------------------------------------------------------------------------


def run_command(*argv: str) -> subprocess.CompletedProcess[str]:
    """The installed `runpod-testkit` console script with `argv`; bounded."""
    script = shutil.which("runpod-testkit", path=str(Path(sys.executable).parent))
    assert script, "the runpod-testkit console script is not installed next to this Python"
    return subprocess.run([script, *argv], check=False, capture_output=True, text=True, timeout=30)


@pytest.mark.slow
def test_the_console_script_prints_help() -> None:
    done = run_command("emulator", "--help")
    assert done.returncode == 0, done.stderr
    for action in option_actions():
        for flag in action.option_strings:
            assert flag in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "named"),
    [(["--port", "x"], "--port"), (["--workers-min", "5", "--workers-max", "2"], "--workers-max")],
)
def test_the_console_script_rejects_a_bad_value(argv: list[str], named: str) -> None:
    done = run_command("emulator", *argv)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert named in lines[0]


@pytest.mark.slow
def test_the_console_script_refuses_an_unwritable_job_log(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "jobs.jsonl"
    done = run_command("emulator", "--port", "0", "--job-log", str(target))
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "--job-log" in lines[0]


_STARTS_AN_EMULATOR = """
from runpod_testkit.emulator.server import EmulatorProcess
EmulatorProcess(survives_ctrl_c=True).start()
print("started", flush=True)
"""


@pytest.mark.slow
def test_a_ctrl_c_while_the_emulator_starts_stops_it(tmp_path: Path) -> None:
    """An emulator that ignores Ctrl-C (its parent stops it: a load run's embedded one) is
    still stopped when the Ctrl-C comes before its start has returned to the parent."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _STARTS_AN_EMULATOR],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal's foreground group: the Ctrl-C reaches both
    )
    try:
        process = psutil.Process(parent.pid)
        wait_until(lambda: bool(process.children()), 20, "the emulator process to start")
        emulator = process.children()[0]
        os.killpg(parent.pid, signal.SIGINT)
        _, stderr = parent.communicate(timeout=30)
        assert parent.returncode != 0
        assert "KeyboardInterrupt" in stderr, stderr
        assert "in start" in stderr, stderr  # it came while the emulator started
        # Stopped by its parent before the parent ended (not left to die of a broken pipe
        # when it next writes).
        assert not emulator.is_running()
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(10)


@pytest.mark.slow
def test_emulator_process_serves_and_stops_promptly(tmp_path: Path) -> None:
    key = "rpa_PROCESS_KEY_77aa"
    log = tmp_path / "jobs.jsonl"
    args = ["--api-key", key, "--cold-start-ms", "10", "--workers-max", "2"]
    held: list[httpx.Response] = []
    with EmulatorProcess(args, job_log=log) as process:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v2", process.base_url)
        endpoint_url = f"{process.base_url}/cli-test"
        health_url = endpoint_url + operation("health").path_for()
        assert httpx.get(health_url).status_code == 401
        assert httpx.get(health_url, headers={"authorization": "wrong"}).status_code == 401
        assert httpx.get(health_url, headers={"authorization": f"Bearer {key}"}).status_code == 200

        runsync = endpoint_url + operation("runsync").path_for()
        done = httpx.post(
            runsync, json={"input": {"sleep_ms": 20}}, headers={"authorization": key}, timeout=10
        ).json()
        assert done["status"] == JobStatus.COMPLETED

        # A long hold must not delay the stop: it is answered as the server shuts down.
        def hold() -> None:
            held.append(
                httpx.post(
                    runsync,
                    params={"wait": 60_000},
                    json={"input": {"sleep_ms": 600_000}},
                    headers={"authorization": key},
                    timeout=30,
                )
            )

        holder = threading.Thread(target=hold)
        holder.start()
        # Event-driven: the held job shows up as running before the stop begins.
        deadline = time.monotonic() + 5

        def running_jobs() -> int:
            answer = httpx.get(health_url, headers={"authorization": key})
            return int(answer.json()["jobs"]["inProgress"])

        while running_jobs() < 1:
            assert time.monotonic() < deadline, "the held job never started"
            time.sleep(0.01)
        stopping = time.monotonic()
    stop_s = time.monotonic() - stopping
    holder.join(10)
    assert process.process is not None
    assert process.process.poll() is not None
    assert stop_s < 5.0
    assert len(held) == 1
    assert held[0].status_code == 200
    assert held[0].json()["status"] == JobStatus.IN_PROGRESS

    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [record["id"] for record in records] == [done["id"]]
    assert records[0]["executionTime"] == done["executionTime"]
    assert key not in log.read_text(encoding="utf-8")
