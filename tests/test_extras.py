"""The core package works without the `[load]` extra: no core module imports Locust or gevent,
and the load suite's entry names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"

# A blocked module raises ImportError on import, as an uninstalled one does.
BLOCK_LOCUST = (
    "import sys\nfor name in ('locust', 'gevent', 'flask'):\n    sys.modules[name] = None\n"
)


def run_without_locust(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_LOCUST + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_the_core_imports_without_locust() -> None:
    result = run_without_locust(
        """
        import runpod_testkit.cli, runpod_testkit.client, runpod_testkit.schemas
        import runpod_testkit.pytest_plugin, runpod_testkit.emulator.server
        import runpod_testkit.check_command, runpod_testkit.jobstats, runpod_testkit.report
        import runpod_testkit.suite.plugin
        import runpod_testkit.loadtest  # the option and statistics modules only
        assert not any(name.split('.')[0] in ('locust', 'gevent') and module is not None
                       for name, module in sys.modules.items())
        print('core ok')
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "core ok"


@pytest.mark.slow
def test_the_load_suite_names_the_extra() -> None:
    result = run_without_locust(
        """
        try:
            from runpod_testkit.loadtest import RunPollUser
        except ImportError as error:
            print(error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "RunPollUser needs Locust, which is not installed: pip install 'runpod-testkit[load]'"
    )


@pytest.mark.slow
def test_the_locustfile_names_the_extra() -> None:
    """`python loadtests/locustfile.py` (Locust with the suite loaded) exits with one line."""
    result = run_without_locust(
        f"""
        import runpy
        sys.argv = [{str(LOCUSTFILE)!r}, "--help"]
        runpy.run_path({str(LOCUSTFILE)!r}, run_name="__main__")
        """
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "the load suite needs Locust: pip install 'runpod-testkit[load]'"
    )
    assert "Traceback" not in result.stderr
