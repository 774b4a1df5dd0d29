"""Self-tests of runpod_testkit.loadtest.settings: the load suite's options and their values."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import configargparse
import pytest

from runpod_testkit.loadtest.settings import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_RUNSYNC_WAIT_MS,
    EmulatorSettings,
    Settings,
    SettingsError,
    add_options,
    parse_probe_input,
)


class Exit(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Parser(configargparse.ArgumentParser):
    """Locust's parser class (configargparse: env_var=, config files) that raises instead of
    exiting, so that a test can read the message."""

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise Exit(status, message or "")


def parse(*args: str) -> argparse.Namespace:
    parser = Parser(prog="locust")
    add_options(parser)
    return parser.parse_args(list(args))


def parse_error(*args: str) -> str:
    with pytest.raises(Exit) as caught:
        parse(*args)
    assert caught.value.status == 2
    return str(caught.value)


def test_defaults_without_options() -> None:
    for options in (None, argparse.Namespace(), parse()):
        settings = Settings.from_options(options)
        assert settings.probe_inputs is None
        assert settings.poll_interval_s == DEFAULT_POLL_INTERVAL_S
        assert settings.runsync_wait_ms == DEFAULT_RUNSYNC_WAIT_MS
        assert settings.arrival_rate == 0
        assert not settings.open_model
        assert settings.max_in_flight is None
        assert settings.thresholds == ()
        assert settings.emulator == EmulatorSettings()
        assert settings.emulator.args() == []


def test_every_option_is_read() -> None:
    options = parse(
        "--probe-input", '[{"sleep_ms": 10}, {"sleep_ms": 20, "chunks": 2}]',
        "--poll-interval", "0.25",
        "--runsync-wait", "5000",
        "--job-timeout", "30",
        "--arrival-rate", "12.5",
        "--max-in-flight", "7",
        "--health-interval", "0",
        "--threshold", "delayTime:p95<2000",
        "--threshold", "failures:rate<1%",
        "--job-stats-json", "out/stats.json",
        "--job-stats-csv", "out/stats.csv",
        "--job-stats-html", "out/report.html",
        "--emulator-workers-min", "1",
        "--emulator-workers-max", "4",
        "--emulator-cold-start-ms", "250",
        "--emulator-idle-timeout-s", "0.5",
        "--emulator-queue-delay-s", "0.3",
        "--emulator-scaler", "Request-Count",
        "--emulator-scaler-threshold", "2",
        "--emulator-job-log", "jobs.log",
    )  # fmt: skip
    settings = Settings.from_options(options)
    assert settings.probe_inputs == ({"sleep_ms": 10}, {"sleep_ms": 20, "chunks": 2})
    assert settings.poll_interval_s == 0.25
    assert settings.runsync_wait_ms == 5000
    assert settings.job_timeout_s == 30
    assert settings.arrival_rate == 12.5
    assert settings.open_model
    assert settings.max_in_flight == 7
    assert settings.health_interval_s == 0
    assert [t.rule for t in settings.thresholds] == ["delayTime:p95<2000", "failures:rate<1%"]
    assert (settings.job_stats_json, settings.job_stats_csv, settings.job_stats_html) == (
        "out/stats.json",
        "out/stats.csv",
        "out/report.html",
    )
    assert settings.emulator.job_log == "jobs.log"
    assert settings.emulator.args() == [
        "--workers-min", "1",
        "--workers-max", "4",
        "--cold-start-ms", "250",
        "--idle-timeout-s", "0.5",
        "--queue-delay-s", "0.3",
        "--scaler", "request-count",
        "--scaler-threshold", "2.0",
    ]  # fmt: skip


def test_option_values_stay_json_for_locust_workers() -> None:
    """Locust ships the master's options to workers in its spawn message: plain values only."""
    options = parse("--probe-input", '{"sleep_ms": 1}', "--threshold", "e2e:p99<5s")
    shipped = json.loads(json.dumps(vars(options)))
    assert Settings.from_options(argparse.Namespace(**shipped)) == Settings.from_options(options)


def test_probe_input_file_is_read_where_the_command_line_is_parsed(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps([{"sleep_ms": n} for n in (5, 6, 7)]), encoding="utf-8")
    options = parse("--probe-input", f"@{inputs}")
    inputs.unlink()  # a worker never sees the file: the option now holds the JSON itself
    assert json.loads(options.probe_input) == [{"sleep_ms": 5}, {"sleep_ms": 6}, {"sleep_ms": 7}]
    assert Settings.from_options(options).probe_inputs == (
        {"sleep_ms": 5},
        {"sleep_ms": 6},
        {"sleep_ms": 7},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"sleep_ms": 5}', ({"sleep_ms": 5},)),
        ('[{"a": 1}, {"b": 2}]', ({"a": 1}, {"b": 2})),
        ({"prompt": "hi"}, ({"prompt": "hi"},)),
    ],
)
def test_parse_probe_input(value: object, expected: tuple[dict[str, object], ...]) -> None:
    assert parse_probe_input(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{sleep_ms: 5}", "the value is not valid JSON"),
        ("[]", "the list of inputs is empty"),
        ('[{"a": 1}, 5]', "item 1: expected a JSON object (the job's 'input'), got int"),
        ('"text"', "expected a JSON object"),
        ("@/nonexistent/inputs.json", "file '/nonexistent/inputs.json': no such file"),
    ],
)
def test_bad_probe_input_is_named(value: str, message: str) -> None:
    assert message in parse_error("--probe-input", value)
    with pytest.raises(SettingsError, match=r"^--probe-input: ") as caught:
        Settings.from_options(argparse.Namespace(probe_input=value))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--poll-interval", "0"), "argument --poll-interval: must be 0.001 or more, got 0"),
        (("--poll-interval", "fast"), "argument --poll-interval: expected a number, got 'fast'"),
        (("--runsync-wait", "500"), "must be from 1000 to 300000, got 500"),
        (("--max-in-flight", "0"), "argument --max-in-flight: must be 1 or more, got 0"),
        (("--max-in-flight", "2.5"), "expected an integer, got '2.5'"),
        (("--arrival-rate", "-1"), "must be 0 or more"),
        (("--arrival-rate", "nan"), "expected a number, got 'nan'"),
        (("--threshold", "delayTime<5"), "invalid threshold 'delayTime<5'"),
        (("--threshold", "latency:p95<5"), "unknown metric 'latency'"),
        (("--emulator-scaler", "queue"), "one of queue-delay, request-count, got 'queue'"),
        (("--emulator-scaler-threshold", "-1"), "must be 0 or more"),
    ],
)
def test_bad_values_are_argparse_errors(args: tuple[str, ...], message: str) -> None:
    assert message in parse_error(*args)


def test_web_ui_strings_are_read() -> None:
    """Locust's web UI form stores custom options as strings (and lists as a comma list)."""
    options = argparse.Namespace(
        poll_interval="0.2",
        max_in_flight="",
        arrival_rate="3",
        threshold="delayTime:p95<2000,e2e:max<9s",
        probe_input='{"sleep_ms": 3}',
    )
    settings = Settings.from_options(options)
    assert settings.poll_interval_s == 0.2
    assert settings.max_in_flight is None
    assert settings.arrival_rate == 3.0
    assert [t.rule for t in settings.thresholds] == ["delayTime:p95<2000", "e2e:max<9s"]
    assert settings.probe_inputs == ({"sleep_ms": 3},)


def test_bad_namespace_value_names_the_option() -> None:
    with pytest.raises(SettingsError, match=r"^--job-timeout: must be 0\.001 or more, got -3$"):
        Settings.from_options(argparse.Namespace(job_timeout="-3"))
    with pytest.raises(SettingsError, match=r"^--poll-interval: expected a number, got 'True'$"):
        Settings.from_options(argparse.Namespace(poll_interval=True))


@pytest.mark.parametrize(
    ("option", "kind", "low", "raw"),
    [
        ("job_timeout", float, 0.001, "0"),
        ("job_timeout", float, 0.001, "nan"),
        ("max_in_flight", int, 1, "2.5"),
        ("max_in_flight", int, 1, 2.5),
        ("max_in_flight", int, 1, "-4"),
    ],
)
def test_numbers_get_the_command_lines_message(
    option: str, kind: type[float], low: float, raw: object
) -> None:
    """settings.py parses its numbers with the CLI's own type (runpod_testkit.argtypes)."""
    from runpod_testkit.argtypes import bounded

    with pytest.raises(argparse.ArgumentTypeError) as by_cli:
        bounded(kind, low)(raw)
    flag = "--" + option.replace("_", "-")
    with pytest.raises(SettingsError) as by_settings:
        Settings.from_options(argparse.Namespace(**{option: raw}))
    assert str(by_settings.value) == f"{flag}: {by_cli.value}"
