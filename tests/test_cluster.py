"""A Locust cluster as a container platform runs one: an emulator as its own service, a master
and two workers started as independent commands, configured only through LOCUST_* environment
variables (no flags, no config file). Ground truth is the emulator's --job-log.

Everything listens on and talks to 127.0.0.1; every process is bounded and killed in `finally`,
and each test proves that none is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from runpod_testkit.emulator.server import EmulatorProcess
from tests.polling import wait_until
from tests.test_loadtests import (
    API_KEY,
    assert_key_never_shown,
    assert_matches_job_log,
    explain,
    free_port,
    read_log,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = str(ROOT / "loadtests" / "locustfile.py")
LOCUST = [sys.executable, "-m", "locust"]  # the Dockerfile's entry point: `locust`, no flags
RUN_TIMEOUT_S = 60
INPUTS = json.dumps([{"sleep_ms": 30 + 17 * i} for i in range(12)])
FIRST_STATS = re.compile(r"worker (\S+): its first job statistics arrived")


def cluster_env(**settings: str) -> dict[str, str]:
    """This process's environment without any LOCUST_* of its own, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env.update(RUNPOD_API_KEY=API_KEY, PYTHONUNBUFFERED="1", LOCUST_LOCUSTFILE=LOCUSTFILE)
    env.update(settings)
    return env


class Cluster:
    """The master and its workers as separate process groups; output in files."""

    def __init__(self, tmp_path: Path, stack: ExitStack) -> None:
        self.tmp_path = tmp_path
        self.stack = stack
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.seen: set[int] = set()

    def start(self, name: str, env: dict[str, str]) -> subprocess.Popen[str]:
        output: IO[str] = self.stack.enter_context(
            (self.tmp_path / f"{name}.out").open("w", encoding="utf-8")
        )
        process = subprocess.Popen(
            LOCUST,  # no flags: everything comes from the environment
            cwd=self.tmp_path,  # no locust.conf there
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.processes[name] = process
        self.seen.add(process.pid)
        return process

    def master(self, **settings: str) -> subprocess.Popen[str]:
        return self.start(
            "master",
            cluster_env(
                LOCUST_MODE_MASTER="true",
                LOCUST_MASTER_BIND_HOST="127.0.0.1",
                LOCUST_MASTER_BIND_PORT=str(self.port),
                LOCUST_EXPECT_WORKERS="2",
                LOCUST_HEADLESS="true",
                **settings,
            ),
        )

    def worker(self, name: str) -> subprocess.Popen[str]:
        return self.start(
            name,
            cluster_env(
                LOCUST_MODE_WORKER="true",
                LOCUST_MASTER_NODE_HOST="127.0.0.1",
                LOCUST_MASTER_NODE_PORT=str(self.port),
            ),
        )

    def output(self, name: str) -> str:
        return (self.tmp_path / f"{name}.out").read_text(encoding="utf-8")

    def note_descendants(self) -> None:
        for process in self.processes.values():
            try:
                children = psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            self.seen.update(child.pid for child in children)

    def wait_all(self, timeout_s: float) -> None:
        for process in self.processes.values():
            process.wait(timeout_s)

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def assert_none_left(self) -> None:
        alive = [pid for pid in self.seen if _alive(pid)]
        assert not alive, f"processes left running: {alive}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, EmulatorProcess, Path]]:
    """An emulator service (`python -m runpod_testkit emulator --port 0 --job-log FILE`) and a
    Cluster to start Locust processes in; everything is killed on the way out."""
    log = tmp_path / "jobs.log"
    emulator = EmulatorProcess(
        ["--workers-max", "3", "--cold-start-ms", "200", "--idle-timeout-s", "0.3"], job_log=log
    )
    with ExitStack() as stack:
        nodes = Cluster(tmp_path, stack)
        try:
            emulator.start()
            assert emulator.process is not None
            nodes.seen.add(emulator.process.pid)
            yield nodes, emulator, log
        finally:
            nodes.kill_all()
            emulator.stop()
    nodes.assert_none_left()


def run_settings(emulator: EmulatorProcess, tmp_path: Path, run_time: str) -> dict[str, str]:
    return {
        "LOCUST_HOST": f"{emulator.base_url}/cluster",
        "LOCUST_USERS": "6",
        "LOCUST_SPAWN_RATE": "6",
        "LOCUST_RUN_TIME": run_time,
        "LOCUST_USER_CLASSES": "RunPollUser RunSyncUser StreamUser",
        "LOCUST_PROBE_INPUT": INPUTS,
        "LOCUST_POLL_INTERVAL": "0.05",
        "LOCUST_HEALTH_INTERVAL": "0.5",
        "LOCUST_RUNSYNC_WAIT": "2000",
        "LOCUST_JOB_STATS_JSON": str(tmp_path / "stats.json"),
        "LOCUST_THRESHOLD": '["delayTime:p95<60s", "failures:rate<1%"]',
    }


def test_master_and_two_workers_from_the_environment_match_the_emulator(tmp_path: Path) -> None:
    with cluster(tmp_path) as (nodes, emulator, log):
        workers = [nodes.worker("worker1"), nodes.worker("worker2")]
        master = nodes.master(**run_settings(emulator, tmp_path, "5s"))
        wait_until(lambda: "arrived" in nodes.output("master"), 30, "the first job statistics")
        nodes.note_descendants()
        nodes.wait_all(RUN_TIMEOUT_S)
        out = nodes.output("master")
        result = subprocess.CompletedProcess(LOCUST, master.returncode or 0, out, "")
        assert master.returncode == 0, explain(result)
        assert [w.returncode for w in workers] == [0, 0], [nodes.output(n) for n in ("worker1",)]
    assert_matches_job_log(tmp_path / "stats.json", log, varied=True)
    document = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    # Thresholds came from LOCUST_THRESHOLD and were evaluated once, on the master.
    assert [t["rule"] for t in document["thresholds"]] == ["delayTime:p95<60s", "failures:rate<1%"]
    assert out.count("Job statistics (runpod-testkit)") == 1
    assert out.count("PASS  delayTime:p95<60s") == 1
    for name in ("worker1", "worker2"):
        assert "Job statistics" not in nodes.output(name)
        assert "PASS" not in nodes.output(name)
    # Both workers shipped statistics; their sum is the whole.
    reported = document["workers"]["reported"]
    assert len(reported) == 2, reported
    assert all(entry["submitted"] > 0 for entry in reported)
    assert sum(entry["submitted"] for entry in reported) == document["jobs"]["submitted"]
    assert document["workers"]["lost"] == []
    assert_key_never_shown(tmp_path, out)


def test_a_worker_killed_mid_run_is_reported_and_its_statistics_kept(tmp_path: Path) -> None:
    """Locust goes on with the other worker; the run ends at its run time with exit status 2,
    the lost worker named in the output and the JSON, and what it had shipped counted."""
    with cluster(tmp_path) as (nodes, emulator, log):
        victim, survivor = nodes.worker("worker1"), nodes.worker("worker2")
        html = tmp_path / "report.html"
        settings = run_settings(emulator, tmp_path, "9s")
        master = nodes.master(**settings, LOCUST_JOB_STATS_HTML=str(html))

        def both_reported() -> bool:
            return len(set(FIRST_STATS.findall(nodes.output("master")))) == 2

        wait_until(both_reported, 30, "job statistics from both workers")
        nodes.note_descendants()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        nodes.wait_all(RUN_TIMEOUT_S)
        out = nodes.output("master")
        result = subprocess.CompletedProcess(LOCUST, master.returncode or 0, out, "")
        assert master.returncode == 2, explain(result)
        assert survivor.returncode == 0, nodes.output("worker2")[-3000:]
    document = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    workers: dict[str, Any] = document["workers"]
    assert len(workers["lost"]) == 1, workers
    lost = workers["lost"][0]
    assert lost["submitted"] > 0  # what it shipped before it died is in the totals
    assert sum(entry["submitted"] for entry in workers["reported"]) == document["jobs"]["submitted"]
    assert lost["id"] in {entry["id"] for entry in workers["reported"]}
    # The emulator saw every job; the run lacks only the victim's last, unshipped seconds.
    rows = read_log(log)
    assert document["jobs"]["submitted"] <= len(rows)
    completed = sum(1 for row in rows if row["status"] == "COMPLETED")
    assert document["jobs"].get("COMPLETED", 0) <= completed
    assert document["jobs"]["submitted"] >= 0.5 * len(rows)
    assert out.count("Job statistics (runpod-testkit)") == 1
    assert out.count(f"LOST  worker {lost['id']}") == 1
    assert "1 worker(s) lost during the run (exit status 2)" in out
    report = html.read_text(encoding="utf-8")
    assert '<section id="warnings">' in report
    assert f"LOST  worker {lost['id']}" in report
