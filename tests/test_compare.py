"""Self-tests of runpod_testkit.compare: the noise rule, the regression-rule parser, settings,
the renderings and the `runpod-testkit compare` command's exit statuses."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from runpod_testkit.cli import main
from runpod_testkit.compare import (
    EXIT_NOT_COMPARABLE,
    EXIT_REGRESSION,
    CompareError,
    CompareRule,
    RunDocument,
    compare,
    load_run,
)
from runpod_testkit.jobstats import JobStats
from runpod_testkit.loadtest.summary import job_stats_document

RUN_SETTINGS: dict[str, Any] = {
    "host": "embedded",
    "users": 8,
    "spawnRate": 8.0,
    "arrivalRate": 0.0,
    "maxInFlight": None,
    "userClasses": ["RunPollUser"],
    "probeInput": "sha256:abc",
    "emulator": {"workersMax": 4},
    "versions": {"runpod-testkit": "0.1.0", "locust": "2.47.0"},
    "startedAt": 1_700_000_000.0,
    "endedAt": 1_700_000_010.0,
}


def document(
    values: Mapping[str, Iterable[float]], run: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    stats = JobStats()
    for metric, metric_values in values.items():
        for value in metric_values:
            stats.record(metric, value, at=1_700_000_000.0)
    stats.record_submitted(10)
    stats.record_outcome("COMPLETED", 10)
    return job_stats_document(stats, run=RUN_SETTINGS if run is None else run)


def run_document(values: Mapping[str, Iterable[float]], name: str = "run") -> RunDocument:
    return RunDocument.from_json(document(values), name)


# --------------------------------------------------------------------------- the noise rule


def test_percentile_interval_is_the_order_statistics_of_the_binomial_ranks() -> None:
    # 1..1000 ms once each: the value of rank r is r, so the interval shows the ranks.
    distribution = run_document({"e2e": range(1, 1001)}).distributions["e2e"]
    n, p, z = 1000, 0.5, 2.576
    spread = z * math.sqrt(n * p * (1 - p))
    assert distribution.interval(50.0) == (
        math.floor(n * p - spread),
        math.ceil(n * p + spread) + 1,
    )
    assert distribution.percentile(50.0) == 500
    assert distribution.percentile(95.0) == 950


def test_an_interval_side_the_sample_cannot_bound_is_open() -> None:
    distribution = run_document({"e2e": range(1, 301)}).distributions["e2e"]
    low, high = distribution.interval(99.9)
    assert high == math.inf
    assert 290 <= low < 300
    tiny = run_document({"e2e": [5, 6]}).distributions["e2e"]
    assert tiny.interval(50.0) == (-math.inf, math.inf)


def test_intervals_above_2048_ms_cover_the_hdr_bucket() -> None:
    # HDR keeps 3 significant digits: 10,000 ms shares a bucket with its neighbours.
    distribution = run_document({"e2e": [10_000] * 200}).distributions["e2e"]
    low, high = distribution.interval(50.0)
    assert low == high == 10_000  # clamped to the exact min and max the run recorded


def test_mean_interval_shrinks_with_the_sample() -> None:
    rng = random.Random(7)
    small = run_document({"e2e": [rng.gauss(500, 50) for _ in range(100)]})
    large = run_document({"e2e": [rng.gauss(500, 50) for _ in range(10_000)]})
    small_low, small_high = small.interval("e2e", "mean") or (0, 0)
    large_low, large_high = large.interval("e2e", "mean") or (0, 0)
    assert small_low < 500 < small_high
    assert large_low < 500 < large_high
    assert (large_high - large_low) < (small_high - small_low) / 5


def verdicts(shift: float, trials: int, seed: int, jobs: int = 500) -> list[str]:
    """p50 and p95 verdicts of `trials` pairs of samples of `jobs` jobs (100 ms plus an
    exponential 400 ms), the second scaled by shift; no noise floor: the intervals decide."""
    rng = random.Random(seed)
    found: list[str] = []
    for _ in range(trials):
        base = [100 + rng.expovariate(1 / 400) for _ in range(jobs)]
        run = [(100 + rng.expovariate(1 / 400)) * shift for _ in range(jobs)]
        comparison = compare(
            run_document({"e2e": base}, "base"),
            run_document({"e2e": run}),
            min_change_pct=0,
            min_change_ms=0,
        )
        found += [row.verdict for row in comparison.rows if row.stat in ("p50", "p95")]
    return found


def test_the_same_distribution_is_almost_never_flagged() -> None:
    found = verdicts(1.0, trials=60, seed=1)
    flagged = sum(verdict != "within noise" for verdict in found)
    # Two 99% intervals that must not overlap: the false-alarm rate is far below 1%.
    assert flagged <= 1, found


def test_a_30_percent_slowdown_of_2000_jobs_is_flagged_worse() -> None:
    found = verdicts(1.3, trials=15, seed=2, jobs=2000)
    assert found.count("worse") >= 0.9 * len(found), found
    assert "better" not in found


def test_the_noise_floor_keeps_small_changes_within_noise() -> None:
    base = run_document({"e2e": [100] * 1000}, "base")
    slower = run_document({"e2e": [104] * 1000})
    rows = {row.stat: row for row in compare(base, slower).rows if row.metric == "e2e"}
    assert rows["p50"].verdict == "within noise"  # 4 ms: under the 5 ms (and 5%) floor
    lower_floor = compare(base, slower, min_change_ms=1, min_change_pct=1)
    rows = {row.stat: row for row in lower_floor.rows if row.metric == "e2e"}
    assert rows["p50"].verdict == "worse"
    assert rows["p50"].change == 4
    assert rows["p50"].relative_change == pytest.approx(0.04)
    assert rows["max"].verdict == "not judged"
    assert rows["count"].verdict == "not judged"


def test_files_without_histograms_are_compared_but_not_judged() -> None:
    old = document({"e2e": range(100, 200)})
    del old["histograms"], old["run"]
    comparison = compare(
        RunDocument.from_json(old, "old.json"), run_document({"e2e": range(300, 400)})
    )
    p50 = next(row for row in comparison.rows if row.metric == "e2e" and row.stat == "p50")
    assert p50.verdict == "not judged"
    assert p50.change == 200
    assert any("old.json has no 'run' object" in note for note in comparison.notes)
    assert any("old.json has no 'histograms'" in note for note in comparison.notes)
    assert comparison.exit_status() == 0


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("text", "metric", "stat", "amount", "relative"),
    [
        ("delayTime:p95:+10%", "delayTime", "p95", 10.0, True),
        (" e2e : P99.9 : +250ms ", "e2e", "p99.9", 250.0, False),
        ("EXECUTIONTIME:mean:+1.5s", "executionTime", "mean", 1500.0, False),
        ("ttfc:max:+0%", "ttfc", "max", 0.0, True),
        ("e2e:p50.0:+5%", "e2e", "p50", 5.0, True),
    ],
)
def test_rule_parser_accepts(
    text: str, metric: str, stat: str, amount: float, relative: bool
) -> None:
    rule = CompareRule.parse(text)
    assert (rule.metric, rule.stat, rule.amount, rule.relative) == (
        metric,
        stat,
        amount,
        relative,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("delayTime:p95<10%", "expected METRIC:STAT:+ALLOWANCE"),
        ("latency:p95:+10%", "unknown metric 'latency'"),
        ("e2e:p100:+10%", "unknown statistic 'p100'"),
        ("e2e:median:+10%", "unknown statistic 'median'"),
        ("e2e:p95:10%", "is not an allowed increase"),
        ("e2e:p95:-10%", "is not an allowed increase"),
        ("e2e:p95:+ten", "is not an allowed increase"),
    ],
)
def test_rule_parser_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(CompareError, match="invalid regression rule") as caught:
        CompareRule.parse(text)
    assert problem in str(caught.value)


def test_rule_is_broken_only_beyond_its_allowance_and_beyond_noise() -> None:
    base = run_document({"delayTime": [1000] * 400}, "base")
    slower = run_document({"delayTime": [1150] * 400})
    comparison = compare(
        base,
        slower,
        ["delayTime:p95:+10%", "delayTime:p95:+20%", "delayTime:p95:+200ms", "delayTime:max:+100"],
    )
    broken = [result.regression for result in comparison.rules]
    assert broken == [True, False, False, True]
    assert comparison.exit_status() == EXIT_REGRESSION
    # Beyond the allowance but inside the noise: not broken.
    noisy = compare(
        run_document({"delayTime": [1000, 1150] * 3}, "base"),
        run_document({"delayTime": [1150, 1000, 1150] * 2}),
        ["delayTime:p50:+1%"],
    )
    assert noisy.rules[0].regression is False
    assert "within noise" in noisy.rules[0].message
    assert noisy.exit_status() == 0


def test_a_percentile_the_run_did_not_report_comes_from_the_histogram() -> None:
    comparison = compare(
        run_document({"e2e": range(1, 1001)}, "base"),
        run_document({"e2e": range(1, 1001)}),
        ["e2e:p75:+1%"],
    )
    assert comparison.rules[0].base == comparison.rules[0].run == 750
    assert comparison.rules[0].regression is False


# --------------------------------------------------------------------------- settings


def test_workload_differences_make_runs_not_comparable() -> None:
    other = {**RUN_SETTINGS, "users": 20, "probeInput": "sha256:def", "emulator": {}}
    comparison = compare(
        RunDocument.from_json(document({"e2e": [100] * 50}), "a.json"),
        RunDocument.from_json(document({"e2e": [100] * 50}, run=other), "b.json"),
    )
    assert comparison.not_comparable == ["users 8 vs 20", "probeInput sha256:abc vs sha256:def"]
    assert comparison.differences == ["emulator.workersMax 4 vs unset"]
    assert comparison.exit_status() == EXIT_NOT_COMPARABLE
    assert comparison.exit_status(ignore_settings=True) == 0
    assert "not comparable: users 8 vs 20" in comparison.format_text()


def test_renderings_carry_the_table_rules_and_escape_html() -> None:
    comparison = compare(
        run_document({"e2e": [100] * 300}, "<base>.json"),
        run_document({"e2e": [300] * 300}),
        ["e2e:p95:+10%"],
    )
    text = comparison.format_text()
    assert "REGRESSION  e2e:p95:+10%" in text
    assert "jobs: 10 submitted, 10 completed in 10.0 s (1.00/s)" in text
    markdown = comparison.to_markdown()
    assert "| e2e | p95 | 100 [100-100] | 300 [300-300] | +200 | +200.0% | worse |" in markdown
    page = comparison.to_html()
    assert page.startswith("<!doctype html>")
    assert comparison.html_section() in page  # the report embeds the same section
    assert "&lt;base&gt;.json" in page
    assert "<base>" not in page
    assert 'id="compare-table"' in page
    assert 'class="regression"' in page


# --------------------------------------------------------------------------- the command


def write(path: Path, content: Mapping[str, Any]) -> str:
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def test_command_exit_statuses_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write(tmp_path / "base.json", document({"e2e": [100] * 300}))
    slow = write(tmp_path / "slow.json", document({"e2e": [200] * 300}))
    other = write(
        tmp_path / "other.json", document({"e2e": [100] * 300}, run={**RUN_SETTINGS, "users": 2})
    )
    assert main(["compare", base, base, "--threshold", "e2e:p95:+10%"]) == 0
    markdown, page = tmp_path / "c.md", tmp_path / "c.html"
    status = main(
        [
            *("compare", base, slow, "--threshold", "e2e:p95:+10%"),
            *("--markdown", str(markdown), "--html", str(page)),
        ]
    )
    assert status == EXIT_REGRESSION == 4
    assert "REGRESSION  e2e:p95:+10%" in capsys.readouterr().out
    assert "| e2e | p95 |" in markdown.read_text(encoding="utf-8")
    assert 'id="compare-rules"' in page.read_text(encoding="utf-8")
    assert main(["compare", base, other]) == EXIT_NOT_COMPARABLE == 2
    assert "the runs' workloads differ" in capsys.readouterr().err
    assert main(["compare", base, other, "--ignore-settings"]) == 0


def test_command_refuses_unusable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base.json", document({"e2e": [100] * 10}))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert main(["compare", base, str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err
    assert main(["compare", base, str(tmp_path / "broken.json")]) == 2
    assert "broken.json: not JSON" in capsys.readouterr().err
    assert main(["compare", base, write(tmp_path / "list.json", {"jobs": {}})]) == 2
    assert "not a --job-stats-json document" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", base, base, "--threshold", "e2e:p95<10"])
    assert exit_info.value.code == 2
    assert "invalid regression rule" in capsys.readouterr().err
    with pytest.raises(CompareError, match="not an HDR histogram"):
        load_run(
            write(tmp_path / "bad.json", {**document({"e2e": [1]}), "histograms": {"e2e": "x"}})
        )
