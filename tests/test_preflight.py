"""The preflight's classification, against real loopback servers: the emulator with and
without --api-key (and --endpoint-id), a closed port, a port that never answers, a tiny server
answering non-JSON. DNS failure uses a name under `.invalid` (RFC 6761), with the resolver
replaced so that no lookup leaves this machine; a host that is not loopback without a key is
refused with no lookup and no connection at all. Also: the probe-input checks and the
emulator's --endpoint-id option.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from runpod_testkit.check_command import EXIT_USAGE
from runpod_testkit.cli import main
from runpod_testkit.emulator.server import running_emulator
from runpod_testkit.loadtest.settings import SettingsError, parse_probe_input
from runpod_testkit.preflight import PreflightError, is_loopback_url, preflight
from runpod_testkit.probe_protocol import ProbeInputError, check_probe_input, is_probe_input
from runpod_testkit.suite.probe_inputs import ProbeInputs, ProbeInputsError

CANARY = "rpa_PREFLIGHT_CANARY_5c1d"
WRONG = "rpa_WRONG_KEY_000000"


def refused(endpoint_url: str, api_key: str | None, **options: Any) -> PreflightError:
    with pytest.raises(PreflightError) as caught:
        preflight(endpoint_url, api_key, **options)
    message = str(caught.value)
    assert "\n" not in message
    assert CANARY not in message
    return caught.value


@pytest.fixture(scope="module")
def keyed() -> Iterator[str]:
    """An emulator taking only CANARY, serving only the endpoint id `good`; its base URL."""
    with running_emulator(api_key=CANARY, endpoint_ids=["good"]) as emulator:
        yield emulator.base_url


@pytest.fixture
def resolver_stays_home(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Name lookups of anything but loopback fail here, as `.invalid` must, and are recorded:
    no query leaves the machine."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in ("127.0.0.1", "::1", "localhost"):
            return real(host, *args, **kwargs)
        looked_up.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def answering(status: int, body: bytes, content_type: str) -> Iterator[str]:
    """A tiny HTTP server answering every GET with `body`; yields an endpoint URL on it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/ep"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --------------------------------------------------------------------------- classification


def test_an_endpoint_that_takes_the_key_passes(keyed: str) -> None:
    ready = preflight(f"{keyed}/good", CANARY)
    assert ready.auth_scheme == "bearer"
    assert ready.health["jobs"]["inQueue"] == 0


def test_no_key_says_that_none_was_set(keyed: str) -> None:
    error = refused(f"{keyed}/good", None, placeholder_key="no-key-set")
    assert error.problem == "no-key"
    assert "RUNPOD_API_KEY is not set" in str(error)
    assert "--api-key" in str(error)  # loopback: the emulator's key is the hint


def test_a_wrong_key_says_it_was_refused(keyed: str) -> None:
    error = refused(f"{keyed}/good", WRONG)
    assert error.problem == "key-refused"
    assert "refused the API key in RUNPOD_API_KEY (HTTP 401" in str(error)
    assert WRONG not in str(error)


def test_an_unknown_endpoint_id_is_named(keyed: str) -> None:
    error = refused(f"{keyed}/WRONG_ID", CANARY)
    assert error.problem == "no-such-endpoint"
    assert "no endpoint 'WRONG_ID'" in str(error)


def test_a_closed_port_is_connection_refused() -> None:
    port = closed_port()
    error = refused(f"http://127.0.0.1:{port}/v2/ep", CANARY)
    assert error.problem == "connection-refused"
    assert f"127.0.0.1:{port}" in str(error)


def test_a_port_that_never_answers_times_out() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)  # the connection is queued, never accepted nor answered
        port = listening.getsockname()[1]
        error = refused(f"http://127.0.0.1:{port}/v2/ep", CANARY, timeout_s=0.3)
    assert error.problem == "timeout"
    assert "within 0.3 s" in str(error)


def test_a_name_that_does_not_resolve_is_dns(resolver_stays_home: list[str]) -> None:
    error = refused("http://no-such-host.invalid/v2/ep", CANARY)
    assert error.problem == "dns"
    assert "'no-such-host.invalid' does not resolve" in str(error)
    assert resolver_stays_home == ["no-such-host.invalid"]


def test_a_remote_host_without_a_key_is_refused_before_any_request(
    resolver_stays_home: list[str],
) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"jobs": {}, "workers": {}})

    for transport in (httpx.MockTransport(record), None):
        error = refused("https://api.runpod.ai/v2/abc123", None, transport=transport)
        assert error.problem == "remote-without-key"
        assert "set RUNPOD_API_KEY" in str(error)
    assert requests == []
    assert resolver_stays_home == []  # not even a name lookup


@pytest.mark.parametrize(
    ("status", "body", "content_type", "problem", "shown"),
    [
        (200, b"<html>hello</html>", "text/html", "not-json", "a body that is not JSON"),
        (200, b"[1, 2]", "application/json", "not-json", "JSON an array"),
        (503, b'{"error": "no workers"}', "application/json", "http-error", "no workers"),
    ],
)
def test_answers_that_are_not_a_health_object(
    status: int, body: bytes, content_type: str, problem: str, shown: str
) -> None:
    with answering(status, body, content_type) as url:
        error = refused(url, CANARY)
    assert error.problem == problem
    assert shown in str(error)


def test_a_body_that_echoes_the_key_is_redacted() -> None:
    with answering(500, f"you sent Bearer {CANARY}".encode(), "text/plain") as url:
        error = refused(url, CANARY)  # `refused` asserts the key is absent
    assert "***" in str(error)


def test_raw_key_is_tried_when_bearer_is_refused() -> None:
    def raw_only(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == CANARY:
            return httpx.Response(200, json={"jobs": {}, "workers": {}})
        return httpx.Response(401, json={"error": "unauthorized"})

    transport = httpx.MockTransport(raw_only)
    url = "http://127.0.0.1:9/v2/ep"
    ready = preflight(url, CANARY, auth_schemes=("bearer", "raw"), transport=transport)
    assert ready.auth_scheme == "raw"
    assert refused(url, CANARY, transport=transport).problem == "key-refused"


def test_429_is_retried_briefly_then_refused() -> None:
    answers = iter([429, 200])

    def limited_once(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers, 429), headers={"Retry-After": "0"}, json={})

    url = "http://127.0.0.1:9/v2/ep"
    assert preflight(url, CANARY, transport=httpx.MockTransport(limited_once)).health == {}
    always = httpx.MockTransport(lambda request: httpx.Response(429, headers={"Retry-After": "0"}))
    assert refused(url, CANARY, transport=always).problem == "rate-limited"


def test_loopback_urls() -> None:
    assert is_loopback_url("http://127.0.0.1:8000/v2/x")
    assert is_loopback_url("http://[::1]:8000/v2/x")
    assert is_loopback_url("http://localhost:8000/v2/x")
    assert not is_loopback_url("https://api.runpod.ai/v2/x")
    assert not is_loopback_url("http://10.0.0.5:8000/v2/x")


# --------------------------------------------------------------------------- check, in process


def test_check_against_an_unknown_endpoint_id_is_one_line(
    keyed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", CANARY)
    assert main(["check", "--endpoint-url", f"{keyed}/WRONG_ID"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("runpod-testkit check: error: no endpoint 'WRONG_ID'")
    assert CANARY not in err


# --------------------------------------------------------------------------- probe inputs


def test_only_inputs_of_probe_keys_are_probe_inputs() -> None:
    assert is_probe_input({"sleep_ms": 5, "echo": "x"})
    assert is_probe_input({})
    assert not is_probe_input({"prompt": "hi", "sleep_ms": -5})
    check_probe_input({"prompt": "hi", "sleep_ms": -5})  # another handler's input: not ours
    with pytest.raises(ProbeInputError, match="'sleep_ms' must be from 0"):
        check_probe_input({"sleep_ms": -5})
    with pytest.raises(ProbeInputError, match="'chunks' must be an integer"):
        check_probe_input({"chunks": "3"})


def test_a_load_runs_probe_input_that_breaks_the_protocol_is_refused() -> None:
    with pytest.raises(SettingsError, match="'sleep_ms' must be from 0"):
        parse_probe_input('{"sleep_ms": -5}')
    with pytest.raises(SettingsError, match=r"item 1: probe input 'fail'"):
        parse_probe_input('[{"sleep_ms": 5}, {"fail": ""}]')
    assert parse_probe_input('{"prompt": "hi", "chunks": -1}') == ({"prompt": "hi", "chunks": -1},)


def test_the_suites_probe_inputs_file_is_checked_per_role(tmp_path: Path) -> None:
    file = tmp_path / "inputs.json"
    file.write_text('{"fast": {"sleep_ms": 10}, "slow": {"sleep_ms": -1}}', encoding="utf-8")
    with pytest.raises(ProbeInputsError, match="role 'slow': probe input 'sleep_ms'"):
        ProbeInputs.load(file)
    file.write_text('{"fast": {"prompt": "hi", "sleep_ms": -1}}', encoding="utf-8")
    assert ProbeInputs.load(file).get("fast") == {"prompt": "hi", "sleep_ms": -1}


# --------------------------------------------------------------------------- --endpoint-id


def test_the_emulator_serves_only_the_endpoint_ids_given(keyed: str) -> None:
    auth = {"Authorization": f"Bearer {CANARY}"}
    with httpx.Client(timeout=5) as http:
        for method, path in (("GET", "health"), ("POST", "run"), ("GET", "status/some-job")):
            answer = http.request(method, f"{keyed}/other/{path}", headers=auth, json={"input": {}})
            assert answer.status_code == 404, path
            assert answer.json()["error"].startswith("no endpoint 'other' here")
        assert http.get(f"{keyed}/other/health").status_code == 401  # the key is checked first
        assert http.get(f"{keyed}/good/health", headers=auth).status_code == 200
        assert http.get(f"{keyed}/good/health", headers=auth).json()["jobs"]["inQueue"] == 0


def test_a_bad_endpoint_id_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--endpoint-id", "a/b"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "--endpoint-id" in err
