"""The contract suite under pytest-xdist: a live run refuses `-n` before any request; mock mode
spreads over processes and its summary adds up what each process submitted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_contract_suite import CONTRACT, child_env

TIMEOUT_S = 120


def _pytest(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(CONTRACT), "-p", "no:cacheprovider", *options],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=child_env("rpa_XDIST_CANARY_0123456789"),
        check=False,
    )


def test_a_live_run_refuses_several_processes_before_any_request() -> None:
    # Port 9 on loopback: if the suite sent its preflight, the line below would be about it.
    result = _pytest("-n", "2", "--endpoint-url", "http://127.0.0.1:9/v2/xdist")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "runs in one process against a live endpoint" in result.stderr
    assert "preflight failed" not in result.stdout + result.stderr
    assert "rpa_XDIST_CANARY" not in result.stdout + result.stderr


@pytest.mark.slow
def test_mock_mode_over_two_processes_counts_every_process_jobs(tmp_path: Path) -> None:
    one = _pytest("-q")
    two = _pytest("-q", "-n", "2")
    assert one.returncode == two.returncode == pytest.ExitCode.OK, two.stdout + two.stderr
    submitted = re.compile(r"jobs submitted: (\d+) \(budget: unlimited( per process)?\)")
    alone, spread = submitted.search(one.stdout), submitted.search(two.stdout)
    assert alone is not None, one.stdout
    assert spread is not None, two.stdout
    assert alone.group(2) is None
    assert spread.group(2) == " per process"
    # Each process submits the jobs of its own files' fixtures: at least what one process does.
    assert int(spread.group(1)) >= int(alone.group(1)) > 0
    assert re.search(r"checks: 0 fail, 0 drift, \d+ pass", two.stdout), two.stdout
