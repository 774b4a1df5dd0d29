"""Endpoint and key resolution from options and the stable environment variables."""

from __future__ import annotations

import pytest

from runpod_testkit.config import (
    DEFAULT_BASE_URL,
    ConfigError,
    Target,
    endpoint_url_for,
    resolve_target,
    validate_api_key,
    validate_endpoint_url,
)

KEY = "rpa_CONFIGCANARY0123456789"
EMULATOR_URL = "http://127.0.0.1:8000/v2/abc123"


@pytest.mark.parametrize(
    ("env", "expected_url", "expected_source"),
    [
        pytest.param(
            {"RUNPOD_ENDPOINT_URL": EMULATOR_URL},
            EMULATOR_URL,
            "RUNPOD_ENDPOINT_URL",
            id="whole-url",
        ),
        pytest.param(
            {"ENDPOINT_ID": "abc123"},
            "https://api.runpod.ai/v2/abc123",
            "ENDPOINT_ID",
            id="id-on-production",
        ),
        pytest.param(
            {"ENDPOINT_ID": "abc123", "RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9000/v2/"},
            "http://127.0.0.1:9000/v2/abc123",
            "ENDPOINT_ID",
            id="id-on-custom-base",
        ),
        pytest.param(
            {"RUNPOD_ENDPOINT_URL": EMULATOR_URL, "ENDPOINT_ID": "other"},
            EMULATOR_URL,
            "RUNPOD_ENDPOINT_URL",
            id="url-wins-over-id",
        ),
        pytest.param(
            {"RUNPOD_ENDPOINT_URL": f"  {EMULATOR_URL}/\n"},
            EMULATOR_URL,
            "RUNPOD_ENDPOINT_URL",
            id="whitespace-and-trailing-slash",
        ),
        pytest.param(
            {"RUNPOD_ENDPOINT_URL": "", "ENDPOINT_ID": "abc123"},
            "https://api.runpod.ai/v2/abc123",
            "ENDPOINT_ID",
            id="empty-variable-is-unset",
        ),
    ],
)
def test_environment_resolution(
    env: dict[str, str], expected_url: str, expected_source: str
) -> None:
    target = resolve_target(env={**env, "RUNPOD_API_KEY": KEY})
    assert target.endpoint_url == expected_url
    assert target.source == expected_source
    assert target.api_key == KEY


def test_explicit_values_win_over_the_environment() -> None:
    env = {"RUNPOD_ENDPOINT_URL": EMULATOR_URL, "RUNPOD_API_KEY": "rpa_from_environment"}
    by_id = resolve_target(endpoint_id="xyz", api_key=KEY, env=env)
    assert by_id.endpoint_url == "https://api.runpod.ai/v2/xyz"
    assert by_id.api_key == KEY
    by_url = resolve_target(
        endpoint_url="http://127.0.0.1:1/v2/q",
        endpoint_id="xyz",
        env=env,
        option_names={"endpoint_url": "--endpoint-url"},
    )
    assert by_url.endpoint_url == "http://127.0.0.1:1/v2/q"
    assert by_url.source == "--endpoint-url"
    assert by_url.api_key == "rpa_from_environment"


def test_missing_endpoint_says_which_variables_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_target(env={"RUNPOD_API_KEY": KEY})
    message = str(caught.value)
    assert "RUNPOD_ENDPOINT_URL" in message
    assert "ENDPOINT_ID" in message


def test_missing_key_is_an_error_unless_not_required() -> None:
    with pytest.raises(ConfigError, match=r"RUNPOD_API_KEY.*export"):
        resolve_target(env={"ENDPOINT_ID": "abc"})
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        resolve_target(env={"ENDPOINT_ID": "abc", "RUNPOD_API_KEY": "   "})
    target = resolve_target(env={"ENDPOINT_ID": "abc"}, require_api_key=False)
    assert target.api_key is None


@pytest.mark.parametrize(
    ("value", "expected_message"),
    [
        ("ftp://host/v2/abc", "http:// or https://"),
        ("127.0.0.1:8000/v2/abc", "http:// or https://"),
        ("http:///v2/abc", "http:// or https://"),
        ("http://127.0.0.1:8000", "no endpoint id"),
        ("http://127.0.0.1:8000/v2", "no endpoint id|base URL"),
        ("https://api.runpod.ai/v2", "base URL"),
        ("https://api.runpod.ai/v2/abc/run", r"operation 'run'.*https://api.runpod.ai/v2/abc'"),
        ("https://api.runpod.ai/v2/abc/status/job-1", r"operation 'status'.*v2/abc'"),
        ("https://api.runpod.ai/v2/abc?x=1", "query string"),
        ("https://api.runpod.ai/v2/abc#top", "query string or fragment"),
        ("https://api.runpod.ai/v2/a%20b", "last path segment"),
    ],
)
def test_malformed_endpoint_url_names_the_variable(value: str, expected_message: str) -> None:
    with pytest.raises(ConfigError, match=expected_message) as caught:
        resolve_target(env={"RUNPOD_ENDPOINT_URL": value, "RUNPOD_API_KEY": KEY})
    assert "RUNPOD_ENDPOINT_URL" in str(caught.value)


def test_credentials_in_a_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_endpoint_url(f"https://user:{KEY}@api.runpod.ai/v2/abc", name="--endpoint-url")
    assert "--endpoint-url" in str(caught.value)
    assert "RUNPOD_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)


def test_malformed_base_url_is_reported_even_when_a_whole_url_is_given() -> None:
    # The user set it for a reason and should hear about the mistake.
    env = {"RUNPOD_ENDPOINT_URL": EMULATOR_URL, "RUNPOD_ENDPOINT_BASE_URL": "not a url"}
    with pytest.raises(ConfigError, match="RUNPOD_ENDPOINT_BASE_URL"):
        resolve_target(env={**env, "RUNPOD_API_KEY": KEY})


@pytest.mark.parametrize("endpoint_id", ["a/b", "abc def", "id?x", "é"])
def test_malformed_endpoint_id_names_the_variable(endpoint_id: str) -> None:
    with pytest.raises(ConfigError, match=r"ENDPOINT_ID must be an endpoint id"):
        resolve_target(env={"ENDPOINT_ID": endpoint_id, "RUNPOD_API_KEY": KEY})


def test_malformed_base_url_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--base-url"):
        resolve_target(
            endpoint_id="abc",
            base_url="api.runpod.ai/v2",
            api_key=KEY,
            env={},
            option_names={"base_url": "--base-url"},
        )


@pytest.mark.parametrize(
    ("key", "expected_message"),
    [
        (f"Bearer {KEY}", "bare key"),
        (f"{KEY[:8]} {KEY[8:]}", "whitespace"),
        (f"{KEY}\x00", "control characters"),
    ],
)
def test_malformed_key_is_refused_without_echoing_it(key: str, expected_message: str) -> None:
    with pytest.raises(ConfigError, match=expected_message) as caught:
        resolve_target(env={"ENDPOINT_ID": "abc", "RUNPOD_API_KEY": key})
    assert "RUNPOD_API_KEY" in str(caught.value)
    assert KEY[8:] not in str(caught.value)


def test_key_is_stripped() -> None:
    assert validate_api_key(f"  {KEY}\n") == KEY


def test_target_repr_hides_the_key_and_exposes_parts() -> None:
    target = Target(endpoint_url="https://api.runpod.ai/v2/abc123", api_key=KEY, source="x")
    assert KEY not in repr(target)
    assert KEY not in str(target)
    assert target.endpoint_id == "abc123"
    assert target.base_url == DEFAULT_BASE_URL
    assert target.is_production
    assert not Target(endpoint_url=EMULATOR_URL).is_production


def test_endpoint_url_for_joins_base_and_id() -> None:
    assert endpoint_url_for("abc") == "https://api.runpod.ai/v2/abc"
    assert endpoint_url_for("abc123", "http://127.0.0.1:8000/v2/") == EMULATOR_URL
    with pytest.raises(ConfigError, match="endpoint_id"):
        endpoint_url_for("a/b")
