"""Self-tests of runpod_testkit.thresholds: parsing (good and bad strings) and evaluation."""

from __future__ import annotations

import argparse
import json

import pytest

from runpod_testkit.jobstats import INTERRUPTED, JobStats
from runpod_testkit.operations import JobStatus
from runpod_testkit.thresholds import (
    VALID_FORMS,
    Threshold,
    ThresholdError,
    ThresholdResult,
    all_passed,
    evaluate,
    parse_thresholds,
)

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "subject", "stat", "op", "limit"),
    [
        ("delayTime:p95<2000", "delayTime", "p95", "<", 2000),
        ("e2e:p99<=5000", "e2e", "p99", "<=", 5000),
        ("ttfc:max<800", "ttfc", "max", "<", 800),
        ("executionTime:mean<100", "executionTime", "mean", "<", 100),
        ("executionTime:min>=0", "executionTime", "min", ">=", 0),
        ("e2e:p99.9<1.5s", "e2e", "p99.9", "<", 1500),
        ("e2e:p50 < 250ms", "e2e", "p50", "<", 250),
        ("  delaytime : P95 > 1e3 ", "delayTime", "p95", ">", 1000),
        ("e2e:p100==7", "e2e", "p100", "==", 7),
        ("e2e:p99.90<7", "e2e", "p99.9", "<", 7),
        ("ttfc:count>0", "ttfc", "count", ">", 0),
        ("failures:rate<0.01", "failures", "rate", "<", 0.01),
        ("failures:rate<=2.5%", "failures", "rate", "<=", 0.025),
        ("failures:count==0", "failures", "count", "==", 0),
        ("jobs:count>=100", "jobs", "count", ">=", 100),
        ("jobs:submitted>=100", "jobs", "count", ">=", 100),
        ("jobs:dropped==0", "jobs", "dropped", "==", 0),
        ("jobs:timed_out<3", "jobs", "TIMED_OUT", "<", 3),
        ("jobs:interrupted==0", "jobs", "interrupted", "==", 0),
        ("jobs:INTERRUPTED<=2", "jobs", "interrupted", "<=", 2),
        ("chunkGap:p99<250ms", "chunkGap", "p99", "<", 250),
    ],
)
def test_good_rules_parse(text: str, subject: str, stat: str, op: str, limit: float) -> None:
    rule = Threshold.parse(text)
    assert (rule.subject, rule.stat, rule.op) == (subject, stat, op)
    assert rule.limit == pytest.approx(limit)
    assert rule.rule == text.strip()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "missing ':'"),
        ("delayTime p95<2000", "missing ':'"),
        ("latency:p95<2000", "unknown metric 'latency'"),
        ("delayTime:p95", "missing comparison operator"),
        ("delayTime:p95=2000", "unknown operator '='"),
        ("delayTime:p95!=2000", "unknown operator '!='"),
        ("delayTime:p95=<2000", "unknown operator '=<'"),
        ("delayTime:<2000", "missing statistic"),
        ("delayTime:median<2000", "unknown statistic 'median'"),
        ("delayTime:p0<2000", "not in (0, 100]"),
        ("delayTime:p101<2000", "not in (0, 100]"),
        ("delayTime:p95<", "missing number"),
        ("delayTime:p95<fast", "'fast' is not a number"),
        ("delayTime:p95<2000us", "'2000us' is not a number"),
        ("delayTime:p95<1e999", "not a finite number"),
        ("delayTime:count<5s", "unit 's' only applies to time statistics"),
        ("delayTime:p95<5%", "'%' only applies to failures:rate"),
        ("failures:p95<1", "unknown failures statistic 'p95'"),
        ("failures:count<1%", "'%' only applies to failures:rate"),
        ("jobs:p95<1", "unknown job outcome 'p95'"),
        ("jobs:count<1ms", "unit 'ms' only applies"),
    ],
)
def test_bad_rules_raise_one_line_errors_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ThresholdError) as caught:
        Threshold.parse(text)
    message = str(caught.value)
    assert problem in message
    assert repr(text) in message
    assert VALID_FORMS in message
    assert "\n" not in message


def test_threshold_error_is_a_value_error_and_argparse_shows_its_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert issubclass(ThresholdError, ValueError)
    parser = argparse.ArgumentParser(prog="locust")
    parser.add_argument("--threshold", action="append", type=Threshold.parse, default=[])
    parsed = parser.parse_args(["--threshold", "e2e:p95<10"])
    assert parsed.threshold == [Threshold.parse("e2e:p95<10")]
    with pytest.raises(SystemExit):
        parser.parse_args(["--threshold", "e2e:p95<<10"])
    assert "'<10' is not a number; valid forms:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--threshold", "latency:p95<10"])
    assert "unknown metric 'latency'" in capsys.readouterr().err


def test_parse_thresholds_stops_at_the_first_bad_rule() -> None:
    assert [t.rule for t in parse_thresholds(["e2e:p95<1", "ttfc:max<2"])] == [
        "e2e:p95<1",
        "ttfc:max<2",
    ]
    with pytest.raises(ThresholdError, match="'nope'"):
        parse_thresholds(["e2e:p95<1", "nope", "also bad"])


def sample_stats() -> JobStats:
    stats = JobStats(clock=lambda: T0)
    for value in range(1, 101):  # delayTime 1..100: p95 = 95, mean = 50.5
        stats.record("delayTime", value)
    stats.record("e2e", 0)
    stats.record_submitted(120)
    stats.record_outcome("COMPLETED", 95)
    stats.record_outcome("FAILED", 3)
    stats.record_outcome("error", 2)  # client-side: counts as a failed job
    stats.record_outcome("dropped", 4)  # never submitted: not a job outcome
    return stats


@pytest.mark.parametrize(
    ("text", "value", "passed"),
    [
        ("delayTime:p95<96", 95, True),
        ("delayTime:p95<95", 95, False),
        ("delayTime:p95<=95", 95, True),
        ("delayTime:p95==95", 95, True),
        ("delayTime:p95>95", 95, False),
        ("delayTime:p95>=95", 95, True),
        ("delayTime:p99.9<1s", 100, True),
        ("delayTime:mean<50.5", 50.5, False),
        ("delayTime:min==1", 1, True),
        ("delayTime:max<=100", 100, True),
        ("delayTime:count>=100", 100, True),
        ("e2e:max==0", 0, True),
        ("ttfc:count==0", 0, True),
        ("failures:rate<0.05", 0.05, False),
        ("failures:rate<=5%", 0.05, True),
        ("failures:count==5", 5, True),
        ("jobs:count>=100", 120, True),
        ("jobs:dropped>0", 4, True),
        ("jobs:CANCELLED==0", 0, True),
    ],
)
def test_evaluation(text: str, value: float, passed: bool) -> None:
    (result,) = evaluate([text], sample_stats())
    assert result.value == pytest.approx(value)
    assert result.passed is passed
    assert result.rule == text
    assert result.to_json() == {"rule": text, "value": result.value, "passed": passed}


@pytest.mark.parametrize("text", ["ttfc:p95<800", "ttfc:max<800", "executionTime:mean<1"])
def test_rule_on_a_metric_without_samples_fails_with_null(text: str) -> None:
    (result,) = evaluate([Threshold.parse(text)], sample_stats())
    assert result.value is None
    assert result.passed is False
    assert "no samples of" in result.message
    assert json.loads(json.dumps(result.to_json()))["value"] is None


def test_failure_rate_without_ended_jobs_fails_with_null() -> None:
    stats = JobStats()
    stats.record_submitted(5)
    (result,) = evaluate(["failures:rate<0.5"], stats)
    assert (result.value, result.passed) == (None, False)
    assert "no ended jobs" in result.message


def test_messages_show_observed_value_and_limit() -> None:
    results = evaluate(["delayTime:p95<2s", "failures:rate<1%"], sample_stats())
    assert results[0].message == "observed 95 ms, limit < 2000 ms"
    # The limit as the user wrote it: "1%", not 0.01 (and 0.01 stays 0.01).
    assert results[1].message == "observed 0.05 (5.00%), limit < 1%"
    (ratio,) = evaluate(["failures:rate<0.01"], sample_stats())
    assert ratio.message == "observed 0.05 (5.00%), limit < 0.01"
    (spaced,) = evaluate(["failures:rate <= 2.5%"], sample_stats())
    assert spaced.message.endswith("limit <= 2.5%")


def test_all_passed_and_to_json_in_the_stats_document() -> None:
    stats = sample_stats()
    results = evaluate(["jobs:count>=100", "delayTime:p95<10"], stats)
    assert not all_passed(results)
    assert all_passed(results[:1])
    assert all_passed([])
    assert stats.to_json(results)["thresholds"] == [
        {"rule": "jobs:count>=100", "value": 120, "passed": True},
        {"rule": "delayTime:p95<10", "value": 95, "passed": False},
    ]
    assert isinstance(results[0], ThresholdResult)
    table = stats.format_table(results)
    assert "PASS  jobs:count>=100  (observed 120, limit >= 100)" in table
    assert "FAIL  delayTime:p95<10  (observed 95 ms, limit < 10 ms)" in table


def test_interrupted_jobs_have_a_rule_and_are_not_failures() -> None:
    stats = JobStats()
    stats.record_submitted(3)
    stats.record_outcome(JobStatus.COMPLETED)
    stats.record_outcome(INTERRUPTED, 2)
    interrupted, none_interrupted, failures = evaluate(
        ["jobs:interrupted==2", "jobs:interrupted==0", "failures:count==0"], stats
    )
    assert (interrupted.value, interrupted.passed) == (2, True)
    assert (none_interrupted.value, none_interrupted.passed) == (2, False)
    assert (failures.value, failures.passed) == (0, True)
