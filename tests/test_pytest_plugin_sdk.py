"""The `runpod_endpoint` fixture of the pytest plugin: the official runpod SDK against an
emulator on loopback, with the SDK's module settings restored after the test."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import runpod

from runpod_testkit.probe_protocol import ProbeInput

pytest_plugins = ["pytester"]


@pytest.mark.slow
def test_the_fixture_serves_the_sdk(runpod_endpoint: runpod.Endpoint) -> None:
    assert runpod.endpoint_url_base.startswith("http://127.0.0.1:")
    probe = {"sleep_ms": 20, "echo": {"text": "fixture"}}
    assert runpod_endpoint.run_sync({"input": probe}, timeout=10) == (
        ProbeInput.parse(probe).final_output()
    )
    assert runpod_endpoint.health()["jobs"]["completed"] == 1


@pytest.mark.slow
def test_the_fixture_restores_the_sdk_settings(pytester: pytest.Pytester) -> None:
    """A user's test file, run by pytest in-process: its client code sees the emulator, and the
    SDK's base URL and key are back to what they were once it ends."""
    before = (runpod.endpoint_url_base, runpod.api_key)
    pytester.makepyfile(
        test_user_client=textwrap.dedent(
            """
            import runpod
            from runpod_testkit.probe_protocol import ProbeInput

            def submit(endpoint, text):  # the user's own client code
                return endpoint.run_sync({"input": {"echo": text}}, timeout=10)

            def test_submit(runpod_endpoint):
                assert runpod.endpoint_url_base.startswith("http://127.0.0.1:")
                expected = ProbeInput.parse({"echo": "hi"}).final_output()
                assert submit(runpod_endpoint, "hi") == expected
            """
        )
    )
    outcome = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcome.assert_outcomes(passed=1)
    assert (runpod.endpoint_url_base, runpod.api_key) == before


def _readme_fixture_example() -> str:
    """The Python block of the README's "Fixtures for your own tests" section."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Fixtures for your own tests", 1)[1].split("\n### ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_readmes_fixture_example_runs_as_written(pytester: pytest.Pytester) -> None:
    """Both fixtures, as a user copies them from the README: the SDK one and runpod_mock."""
    example = _readme_fixture_example()
    assert "def test_summarize(runpod_endpoint)" in example
    assert "def test_a_long_runsync(runpod_mock)" in example
    pytester.makepyfile(test_from_the_readme=example)
    outcome = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcome.assert_outcomes(passed=2)
