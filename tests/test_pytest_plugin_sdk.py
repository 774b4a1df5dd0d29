"""The `runpod_endpoint` fixture of the pytest plugin: the official runpod SDK against an
emulator on loopback, with the SDK's module settings restored after the test."""

from __future__ import annotations

import textwrap

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
