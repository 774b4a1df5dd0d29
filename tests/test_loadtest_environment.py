"""Every load-suite option from LOCUST_* environment variables and from locust.conf, as a Locust
worker in a container or pod gets them, read the same as from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import configargparse
import pytest

from runpod_testkit.loadtest.settings import ENV_PREFIX, OPTIONS, Settings, add_options

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"

# One value per option, as text (the form the environment and a config file carry).
VALUES = {
    "--probe-input": '[{"sleep_ms": 5}, {"sleep_ms": 7}]',
    "--poll-interval": "0.25",
    "--runsync-wait": "2500",
    "--job-timeout": "42",
    "--arrival-rate": "3.5",
    "--max-in-flight": "9",
    "--health-interval": "0",
    "--pacing": "on",
    "--max-retries": "2",
    "--refusal-limit": "7",
    "--job-stats-json": "out/stats.json",
    "--job-stats-csv": "out/stats.csv",
    "--job-stats-html": "out/stats.html",
    "--junitxml": "out/thresholds.xml",
    "--emulator-workers-min": "1",
    "--emulator-workers-max": "4",
    "--emulator-cold-start-ms": "300",
    "--emulator-idle-timeout-s": "0.5",
    "--emulator-queue-delay-s": "0.2",
    "--emulator-scaler": "request-count",
    "--emulator-scaler-threshold": "2",
    "--emulator-job-log": "out/jobs.log",
    "--emulator-faults": '{"seed": 3}',
    "--emulator-worker": "python handler.py",
    "--emulator-worker-log": "out/workers.log",
    "--gpu-price-per-s": "0.00031",
    "--gpu": "RTX-4090",
    "--gpu-prices": "out/prices.toml",
    "--baseline": "out/baseline.json",
}
RULES = ("e2e:p95<5s", "failures:rate<1%")
REPEATED = {
    "--threshold": RULES,
    "--slo": ("e2e<5s", "ttfc<800ms"),
    "--regression": ("e2e:p95:+10%",),
}
"""The repeatable options, each with two values where it takes them."""


class Parser(configargparse.ArgumentParser):
    """Locust's parser class, raising instead of exiting."""

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise AssertionError(f"exit {status}: {message}")


def from_command_line() -> Settings:
    parser = Parser(prog="locust")
    add_options(parser)
    args = [part for flag, value in VALUES.items() for part in (flag, value)]
    for flag, rules in REPEATED.items():
        for rule in rules:
            args += [flag, rule]
    return Settings.from_options(parser.parse_args(args))


def test_every_option_has_a_value_here() -> None:
    """A new option must be added to VALUES (and so to the environment and config tests)."""
    assert set(VALUES) | set(REPEATED) == {option.flag for option in OPTIONS}


def test_env_var_names_follow_locust() -> None:
    for option in OPTIONS:
        assert option.env_var == ENV_PREFIX + option.flag[2:].upper().replace("-", "_")
    assert ENV_PREFIX == "LOCUST_"


def test_every_option_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS:
        if option.flag in REPEATED:
            monkeypatch.setenv(option.env_var, json.dumps(list(REPEATED[option.flag])))
        else:
            monkeypatch.setenv(option.env_var, VALUES[option.flag])
    parser = Parser(prog="locust")
    add_options(parser)
    from_env = Settings.from_options(parser.parse_args([]))
    assert from_env == from_command_line()
    assert from_env != Settings()  # every value above differs from the defaults
    assert [t.rule for t in from_env.thresholds] == list(RULES)


def test_one_threshold_from_the_environment_and_the_command_line_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCUST_THRESHOLD", "e2e:p99<9s")
    monkeypatch.setenv("LOCUST_POLL_INTERVAL", "0.3")
    parser = Parser(prog="locust")
    add_options(parser)
    settings = Settings.from_options(parser.parse_args(["--poll-interval", "0.7"]))
    assert [t.rule for t in settings.thresholds] == ["e2e:p99<9s"]
    assert settings.poll_interval_s == 0.7


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCUST_JOB_TIMEOUT", "-1")
    parser = Parser(prog="locust")
    add_options(parser)
    with pytest.raises(AssertionError, match=r"--job-timeout.*-1"):
        parser.parse_args([])


def test_every_option_is_read_from_locust_conf(tmp_path: Path) -> None:
    # A config-file value that starts with "[" is read as a list: a list of inputs goes in a
    # file (as loadtests/locust.conf says).
    inputs = tmp_path / "inputs.json"
    inputs.write_text(VALUES["--probe-input"], encoding="utf-8")
    conf = tmp_path / "locust.conf"
    in_file = {**VALUES, "--probe-input": f"@{inputs}"}
    lines = [f"{flag[2:]} = {value}" for flag, value in in_file.items()]
    lines += [f"{flag[2:]} = {json.dumps(list(rules))}" for flag, rules in REPEATED.items()]
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parser = Parser(prog="locust", default_config_files=[str(conf)])
    add_options(parser)
    assert Settings.from_options(parser.parse_args([])) == from_command_line()


def test_readme_table_lists_every_option_its_variable_and_default() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(" `").split()[0]: line
        for line in readme.splitlines()
        if line.startswith("| `--")
    }
    for option in OPTIONS:
        row = rows.get(option.flag)
        assert row is not None, f"README's option table has no row for {option.flag}"
        assert f"`{option.env_var}`" in row, row


@pytest.mark.slow
def test_running_the_locustfile_lists_the_suite_options_in_help() -> None:
    """`locust -f ... --help` prints before it imports the locustfile (Locust's order); the
    locustfile run as a script is Locust with the suite loaded first."""
    result = subprocess.run(
        [sys.executable, str(LOCUSTFILE), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    help_text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "--headless" in help_text  # Locust's own options
    for option in OPTIONS:
        assert option.flag in help_text
        assert f"[env {option.env_var}]" in help_text
    for webhook in ("--webhook-url", "LOCUST_WEBHOOK_URL", "LOCUST_WEBHOOK_LISTEN"):
        assert webhook in help_text
