"""Fault injection (--faults): the document's validation, the operation faults in both
transports (mock and real HTTP), the job faults in the model, and the client's retries of reads.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from runpod_testkit.cli import main
from runpod_testkit.client import Backoff, RunpodClient, TransportError
from runpod_testkit.emulator.faults import FaultConfig, FaultConfigError, Latency, load_faults
from runpod_testkit.emulator.mock import MockEndpoint
from runpod_testkit.emulator.model import EmulatorConfig, WorkerState
from runpod_testkit.emulator.server import EmulatorProcess, running_emulator
from runpod_testkit.loadtest.settings import Settings, SettingsError
from runpod_testkit.operations import JobStatus
from runpod_testkit.schemas import ContractValidator
from tests.test_emulator_model import Harness

ENDPOINT_URL = "http://127.0.0.1:9/v2/faults"
AUTH = {"authorization": "Bearer k"}
VALIDATOR = ContractValidator()


def mock_with(faults: dict[str, Any], **config: Any) -> MockEndpoint:
    config.setdefault("seed", 3)
    return MockEndpoint(ENDPOINT_URL, EmulatorConfig(**config), faults=FaultConfig.parse(faults))


def http(mock: MockEndpoint) -> httpx.Client:
    return httpx.Client(transport=mock.transport(), base_url=ENDPOINT_URL, headers=AUTH)


# --- the document ------------------------------------------------------------------------------


def test_a_full_document_parses_and_star_gives_defaults() -> None:
    config = FaultConfig.parse(
        {
            "seed": 7,
            "operations": {
                "status": {"503": 0.1, "retry_after_s": 2, "latency_ms": {"p50": 20, "p99": 400}},
                "run": {"429": 0.05},
                "*": {"reset": 0.01, "500": 0.02},
            },
            "jobs": {
                "worker_crash": 0.01,
                "worker_unhealthy": {"probability": 0.1, "duration_ms": 500},
                "worker_throttled": 0.2,
                "cold_start_spike": {"probability": 0.1, "extra_ms": 10000},
                "output_lost": 0.0,
            },
        }
    )
    assert config.seed == 7
    status = config.operations["status"]
    # A named operation's keys override "*"; the rest of "*" still applies.
    assert status.statuses == ((500, 0.02), (503, 0.1))
    assert (status.reset, status.retry_after_s) == (0.01, 2)
    assert status.latency == Latency("lognormal", 20, 400)
    assert config.operations["run"].statuses == ((429, 0.05), (500, 0.02))
    assert config.operations["health"].reset == 0.01  # every operation gets "*"
    assert config.jobs.worker_unhealthy.duration_ms == 500
    assert config.jobs.worker_throttled.probability == 0.2
    assert config.jobs.cold_start_spike.extra_ms == 10000
    # The source is compact JSON that parses to the same config (it is passed on as text).
    assert FaultConfig.parse(config.source) == config


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"sed": 1}, "'sed'"),
        ({"seed": "7"}, "faults.seed"),
        ({"operations": {"statuss": {}}}, "'statuss'"),
        ({"operations": {"status": {"504": 0.1}}}, "'504'"),
        ({"operations": {"status": {"503": 1.5}}}, "faults.operations.status.503"),
        ({"operations": {"run": {"429": -0.1}}}, "faults.operations.run.429"),
        ({"operations": {"*": {"503": 0.7, "reset": 0.5}}}, "add up to 1.2"),
        ({"operations": {"status": {"503": True}}}, "faults.operations.status.503"),
        ({"operations": {"status": {"retry_after_s": 0.5}}}, "retry_after_s"),
        ({"operations": {"status": {"latency_ms": {"p50": 50, "p99": 10}}}}, "latency_ms.p99"),
        ({"operations": {"status": {"latency_ms": {"min": 5}}}}, "latency_ms must be"),
        ({"operations": {"status": {"latency_ms": {"mean": 5}}}}, "'mean'"),
        ({"jobs": {"worker_crash": 2}}, "faults.jobs.worker_crash"),
        ({"jobs": {"worker_crashh": 0.1}}, "'worker_crashh'"),
        ({"jobs": {"cold_start_spike": 0.5}}, "faults.jobs.cold_start_spike"),
        ({"jobs": {"worker_unhealthy": {"probability": 0.1, "for": 3}}}, "'for'"),
        ([], "faults must be a JSON object"),
    ],
)
def test_a_bad_document_is_refused_naming_the_key(document: Any, named: str) -> None:
    with pytest.raises(FaultConfigError) as raised:
        FaultConfig.parse(document)
    assert named in str(raised.value)


def test_load_faults_reads_json_text_or_a_file(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"operations": {"health": {"502": 1}}}), encoding="utf-8")
    assert load_faults(f"@{path}").operations["health"].statuses == ((502, 1.0),)
    with pytest.raises(FaultConfigError, match="not valid JSON"):
        load_faults("{nope")
    with pytest.raises(FaultConfigError, match="cannot read faults file"):
        load_faults(f"@{tmp_path / 'missing.json'}")


def test_latency_distributions_draw_what_they_promise() -> None:
    import random

    rng = random.Random(1)
    assert Latency.parse(40, "x").draw_ms(rng) == 40
    uniform = [Latency.parse({"min": 10, "max": 20}, "x").draw_ms(rng) for _ in range(2000)]
    assert 10 <= min(uniform) < 11
    assert 19 < max(uniform) <= 20
    lognormal = Latency.parse({"p50": 20, "p99": 400}, "x")
    draws = sorted(lognormal.draw_ms(rng) for _ in range(20_000))
    assert 18 < statistics.median(draws) < 22
    assert 330 < draws[int(len(draws) * 0.99)] < 480
    sometimes = Latency.parse({"fixed": 5, "probability": 0.25}, "x")
    delayed = sum(1 for _ in range(4000) if sometimes.draw_ms(rng))
    assert 850 < delayed < 1150


# --- operation faults, mock mode -----------------------------------------------------------------


def test_mock_answers_each_injected_status_and_counts_it() -> None:
    mock = mock_with(
        {"operations": {"health": {"503": 1.0}, "run": {"429": 1.0, "retry_after_s": 3}}}
    )
    with http(mock) as client:
        unavailable = client.get("/health")
        limited = client.post("/run", json={"input": {}})
        status = client.get("/status/none")
    assert unavailable.status_code == 503
    assert "503" in unavailable.json()["error"]
    assert "/health" in unavailable.json()["error"]
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert status.status_code == 404  # an operation without faults is untouched
    assert VALIDATOR.check_response("run", 429, limited.json()).ok
    assert dict(mock.faults_injected) == {"health.503": 1, "run.429": 1}
    assert mock.faults_injected.summary() == {
        "operations": {"health": {"503": 1}, "run": {"429": 1}},
        "jobs": {},
    }
    # A refused /run submitted nothing.
    assert list(mock.model.jobs()) == []


def test_mock_reset_raises_what_httpx_raises_for_a_reset() -> None:
    mock = mock_with({"operations": {"status": {"reset": 1.0}}})
    with http(mock) as client, pytest.raises(httpx.ReadError, match="reset"):
        client.get("/status/any")
    assert mock.faults_injected["status.reset"] == 1


def test_mock_latency_passes_on_the_virtual_clock() -> None:
    mock = mock_with({"operations": {"health": {"latency_ms": 1500}}})
    before = mock.clock.now
    with http(mock) as client:
        assert client.get("/health").status_code == 200
    assert mock.clock.now - before == pytest.approx(1.5)
    assert mock.faults_injected["health.latency"] == 1


def _statuses(seed: int) -> list[int]:
    mock = mock_with({"seed": seed, "operations": {"health": {"503": 0.1, "500": 0.05}}})
    with http(mock) as client:
        return [client.get("/health").status_code for _ in range(2000)]


def test_faults_are_deterministic_under_a_seed_and_drawn_at_their_rate() -> None:
    first, again, other = _statuses(11), _statuses(11), _statuses(12)
    assert first == again
    assert first != other
    counts = Counter(first)
    assert 150 < counts[503] < 250
    assert 60 < counts[500] < 140


# --- the client's retries ------------------------------------------------------------------------


def _client(mock: MockEndpoint) -> RunpodClient:
    return RunpodClient(
        mock.endpoint_url,
        "k",
        transport=mock.transport(),
        sleep=mock.clock.advance,
        clock=mock.clock,
        backoff=Backoff(max_retries=8, max_total_s=1000),
    )


def test_reads_are_retried_after_5xx_and_resets_until_they_get_through() -> None:
    mock = mock_with(
        {"operations": {"status": {"503": 0.3, "502": 0.1, "reset": 0.1}, "health": {"500": 0.5}}},
        workers_min=1,
    )
    with _client(mock) as client:
        job_id = client.run({"sleep_ms": 0}).job_id
        assert job_id is not None
        answers = [client.status(job_id) for _ in range(60)]
        healths = [client.health() for _ in range(20)]
    assert all(answer.status_code == 200 for answer in answers + healths)
    assert max(answer.attempts for answer in answers) > 1
    assert mock.faults_injected["status.reset"] > 0


def test_a_submission_is_never_resent_after_a_5xx_or_a_reset() -> None:
    mock = mock_with({"operations": {"run": {"503": 0.5, "reset": 0.5}}})
    outcomes: list[str] = []
    with _client(mock) as client:
        for _ in range(20):
            try:
                answer = client.run({})
            except TransportError:
                outcomes.append("reset")
            else:
                assert (answer.status_code, answer.attempts) == (503, 1)
                outcomes.append("503")
    assert set(outcomes) == {"reset", "503"}
    assert sum(mock.faults_injected.values()) == 20  # one request per call: none resent
    assert list(mock.model.jobs()) == []


def test_permanent_faults_on_a_read_give_up_with_the_answer() -> None:
    mock = mock_with({"operations": {"status": {"503": 1.0}}})
    with _client(mock) as client:
        answer = client.status("any")
    assert (answer.status_code, answer.attempts) == (503, 9)
    assert "/status" in answer.json["error"]


# --- job faults in the model ---------------------------------------------------------------------


def harness(jobs: dict[str, Any], **config: Any) -> Harness:
    return Harness(faults=FaultConfig.parse({"jobs": jobs}), **config)


def test_a_crashed_worker_requeues_its_job_twice_then_fails_it_naming_the_worker() -> None:
    # The same rule as a real worker process that dies mid-job (README: Your own worker, its
    # row "a worker dies").
    h = harness({"worker_crash": 1.0}, workers_min=1, workers_max=2, cold_start_ms=1000)
    job = h.submit(sleep_ms=4000)
    first_worker = job.worker_id
    assert job.status == JobStatus.IN_PROGRESS
    h.at(6.0)  # each crash comes before its run's end, each replacement within 1 s
    assert h.model.fault_counts["jobs.worker_crash"] == 3
    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert "worker" in job.error
    assert job.worker_id is not None
    assert job.worker_id in job.error
    assert "(3 times)" in job.error
    assert job.worker_id != first_worker
    assert h.health()["jobs"]["retried"] == 2
    assert first_worker not in h.model.endpoint("endpoint-a").workers
    assert VALIDATOR.check_response("status", 200, job.body()).ok


def test_a_crash_that_comes_once_lets_the_requeued_job_complete() -> None:
    h = harness({"worker_crash": 0.5}, workers_min=1, workers_max=1, cold_start_ms=0, seed=5)
    jobs = [h.submit(sleep_ms=1000) for _ in range(40)]
    h.at(200.0)
    crashes = h.model.fault_counts["jobs.worker_crash"]
    ended = Counter(job.status for job in jobs)
    assert crashes > 5
    assert ended[JobStatus.COMPLETED] > 0
    assert ended[JobStatus.FAILED] > 0
    assert ended[JobStatus.COMPLETED] + ended[JobStatus.FAILED] == 40
    assert h.health()["jobs"]["retried"] == crashes - ended[JobStatus.FAILED]


def test_a_lost_output_completes_without_output() -> None:
    h = harness({"output_lost": 1.0}, workers_min=1)
    job = h.submit(echo="hi")
    h.at(1.0)
    body = job.body()
    assert body["status"] == JobStatus.COMPLETED
    assert "output" not in body
    assert {"delayTime", "executionTime"} <= body.keys()
    assert VALIDATOR.check_response("status", 200, body).ok
    assert h.model.fault_counts["jobs.output_lost"] == 1


@pytest.mark.parametrize("state", [WorkerState.UNHEALTHY, WorkerState.THROTTLED])
def test_an_unhealthy_or_throttled_worker_shows_in_health_and_takes_no_jobs(
    state: WorkerState,
) -> None:
    h = harness(
        {f"worker_{state.value}": {"probability": 1.0, "duration_ms": 5000}},
        workers_min=1,
        workers_max=1,
        cold_start_ms=0,
    )
    first = h.submit(sleep_ms=1000)
    h.at(1.0)
    assert first.status == JobStatus.COMPLETED
    assert h.workers()[state.value] == 1
    waiting = h.submit(sleep_ms=1000)
    assert waiting.status == JobStatus.IN_QUEUE  # the only worker takes nothing
    h.at(6.0)  # the spell is over: replaced (unhealthy) or back (throttled)
    assert waiting.status == JobStatus.IN_PROGRESS
    if state is WorkerState.UNHEALTHY:
        assert waiting.worker_id != first.worker_id
    else:
        assert waiting.worker_id == first.worker_id
    assert h.model.fault_counts[f"jobs.worker_{state.value}"] == 1


def test_a_cold_start_spike_adds_its_time_to_the_delay() -> None:
    h = harness(
        {"cold_start_spike": {"probability": 1.0, "extra_ms": 8000}},
        workers_max=1,
        cold_start_ms=1000,
    )
    job = h.submit()
    h.at(8.999)
    assert job.status == JobStatus.IN_QUEUE
    h.at(9.0)
    assert job.delay_ms == 9000
    assert h.model.fault_counts["jobs.cold_start_spike"] == 1


def test_no_faults_draws_nothing_and_counts_nothing() -> None:
    h = Harness(workers_min=1)
    for _ in range(10):
        h.submit()
    assert h.model.fault_counts == Counter()
    assert h.model._faults_at_pickup is None
    assert h.model._faults_at_end is None


# --- real HTTP ------------------------------------------------------------------------------------


def test_http_resets_the_connection_answers_faults_and_delays(
    server_errors: list[logging.LogRecord],
) -> None:
    faults = FaultConfig.parse(
        {
            "operations": {
                "health": {"reset": 1.0},
                "status": {"502": 1.0, "latency_ms": 300},
            }
        }
    )
    with running_emulator(EmulatorConfig(seed=1, faults=faults)) as emulator:
        url = emulator.endpoint_url("faulty")
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
            for _ in range(3):  # each attempt gets no answer at all
                with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                    client.get("/health")
            started = time.monotonic()
            bad_gateway = client.get("/status/x")
            assert time.monotonic() - started >= 0.3
            assert bad_gateway.status_code == 502
            assert client.post("/run", json={"input": {}}).status_code == 200
        counts = dict(emulator.app.faults_injected)
    assert counts == {"health.reset": 3, "status.502": 1, "status.latency": 1}
    assert not server_errors


# --- the options that take faults ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"operations": {"status": {"503": 2}}}', "faults.operations.status.503"),
        ('{"jobs": {"worker_crashh": 0.1}}', "worker_crashh"),
        ("@/nonexistent/faults.json", "cannot read faults file"),
    ],
)
def test_cli_refuses_bad_faults_with_one_line(
    capsys: pytest.CaptureFixture[str], value: str, named: str
) -> None:
    assert main(["emulator", "--port", "0", "--faults", value]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "--faults" in lines[0]
    assert named in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--emulator-faults", '{"operations": {"stauts": {}}}'], "'stauts'"),
        (
            ["--endpoint-url", "http://127.0.0.1:9/v2/x", "--emulator-faults", "{}"],
            "not a live endpoint",
        ),
    ],
)
def test_contract_suite_refuses_unusable_emulator_faults(options: list[str], named: str) -> None:
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(repo / "contract"),
            "-p",
            "no:cacheprovider",
            *options,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RUNPOD_API_KEY": "rpa_FAULTS_SELFTEST"},
    )
    assert done.returncode == 4, done.stdout[-1000:] + done.stderr[-1000:]
    assert named in done.stderr
    assert "--emulator-faults" in done.stderr


def test_load_suite_passes_emulator_faults_on_as_compact_json(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text('{"operations": {"status": {"429": 0.5}}}', encoding="utf-8")

    class Options:
        emulator_faults = f"@{path}"

    from runpod_testkit.loadtest.settings import OPTIONS

    option = next(o for o in OPTIONS if o.flag == "--emulator-faults")
    Options.emulator_faults = option.parse(Options.emulator_faults)
    settings = Settings.from_options(Options())
    args = settings.emulator.args()
    assert args[args.index("--faults") + 1] == '{"operations":{"status":{"429":0.5}}}'
    bad = type("Bad", (), {"emulator_faults": '{"operations":{"run":{"503":9}}}'})
    with pytest.raises(SettingsError, match=r"--emulator-faults: .*faults\.operations\.run\.503"):
        Settings.from_options(bad())


@pytest.mark.slow
def test_emulator_process_with_faults_reports_them_as_it_stops() -> None:
    """What the load suite's embedded emulator does with --emulator-faults."""
    settings = Settings.from_options(
        type("Options", (), {"emulator_faults": '{"operations": {"health": {"503": 1}}}'})()
    )
    process = EmulatorProcess(settings.emulator.args())
    with process:
        answer = httpx.get(f"{process.base_url}/ep/health", headers=AUTH, timeout=10)
        assert answer.status_code == 503
    assert process.process is not None
    assert process.process.poll() is not None  # stopped
    assert process.faults_summary == "faults injected: health.503=1"
