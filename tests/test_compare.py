"""Self-tests of runpod_testkit.compare: the noise rule, the regression-rule parser, settings,
the renderings and the `runpod-testkit compare` command's exit statuses."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from runpod_testkit.cli import main
from runpod_testkit.compare import (
    EXIT_NOT_COMPARABLE,
    EXIT_REGRESSION,
    CompareError,
    CompareRule,
    Comparison,
    Distribution,
    FigureRow,
    FigureRule,
    RunDocument,
    compare,
    load_run,
    parse_rule,
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


def test_decoded_buckets_are_hdrs_own() -> None:
    """The decoder reads bucket bounds its own fast way; they are what hdrh says they are."""
    rng = random.Random(3)
    encoded = document({"e2e": [rng.lognormvariate(7, 3) for _ in range(5000)]})["histograms"]
    distribution = Distribution.decode(encoded["e2e"], 0, 10**12)
    hdr = HdrHistogram.decode(encoded["e2e"])
    expected = [
        (low, hdr.get_highest_equivalent_value(low), count)
        for index, count in enumerate(list(hdr.counts))
        if count
        for low in [hdr.get_value_from_index(index)]
    ]
    assert len(expected) > 500  # a wide spread: many buckets of every size
    assert list(zip(distribution.lows, distribution.highs, strict=True)) == [
        (low, high) for low, high, _ in expected
    ]
    assert distribution.cumulative[-1] == sum(count for _, _, count in expected) == 5000


@pytest.mark.parametrize("word_size", [2, 4, 8])
def test_histograms_of_every_counter_size_decode(word_size: int) -> None:
    """HdrHistogram encodings carry 2, 4 or 8-byte counters; each decodes (the reader takes
    the decoded counter array's own item size, not an assumed one)."""
    hdr = HdrHistogram(1, 3_600_000, 3, word_size=word_size)
    for value, count in ((5, 3), (1_000, 40_000 if word_size > 2 else 60_000), (90_000, 1)):
        hdr.record_value(value, count)
    encoded = hdr.encode()
    distribution = Distribution.decode(
        encoded.decode() if isinstance(encoded, bytes) else encoded, 5, 90_000
    )
    assert distribution.cumulative[-1] == hdr.get_total_count()
    assert distribution.percentile(50) == 1000
    assert distribution.percentile(100) == 90_000


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


# --------------------------------------------------------------------------- cost, SLO, cold starts


def with_figures(
    *,
    met: int,
    jobs: int = 1000,
    dollars_per_job: float = 0.0004,
    rules: tuple[str, ...] = ("e2e<5s",),
    price: float = 0.0004,
    cold: int = 3,
) -> dict[str, Any]:
    """A document with "slo", "cost" and "coldStarts" objects as a run writes them."""
    base = document({"e2e": [100] * 50})
    base["slo"] = {
        "rules": list(rules),
        "jobs": jobs,
        "met": met,
        "attainment": met / jobs,
        "goodputPerS": round(met / 100, 3),
    }
    base["cost"] = {
        "source": "health",
        "workerSeconds": 400.0,
        "workerSecondsPerJob": 0.4,
        "pricePerS": price,
        "dollars": dollars_per_job * jobs,
        "dollarsPerJob": dollars_per_job,
        "dollarsPer1000Jobs": dollars_per_job * 1000,
        "dollarsPerDayAtThisRate": dollars_per_job * jobs * 864,
        "emulator": None,
    }
    base["coldStarts"] = {"exact": cold, "estimate": cold + 1}
    return base


def figure_rows(comparison: Comparison) -> dict[str, FigureRow]:
    return {row.figure.name: row for row in comparison.figures}


def test_cost_slo_and_cold_starts_are_set_side_by_side() -> None:
    comparison = compare(
        RunDocument.from_json(with_figures(met=990), "base"),
        RunDocument.from_json(with_figures(met=900, dollars_per_job=0.0005, cold=7), "run"),
    )
    rows = figure_rows(comparison)
    # Only the figures the runs carry (no emulator accounting here), in the table's order.
    assert list(rows) == [
        "cost.workerSeconds",
        "cost.workerSecondsPerJob",
        "cost.dollars",
        "cost.dollarsPerJob",
        "cost.dollarsPer1000Jobs",
        "cost.dollarsPerDayAtThisRate",
        "coldStarts.exact",
        "coldStarts.estimate",
        "slo.attainment",
        "slo.goodputPerS",
    ]
    per_job = rows["cost.dollarsPerJob"]
    assert (per_job.base, per_job.run) == (0.0004, 0.0005)
    assert per_job.relative_change == pytest.approx(0.25)
    assert per_job.verdict == "not judged"  # one tally per run: no interval
    assert rows["coldStarts.exact"].change == 4
    # 99.0% of 1,000 against 90.0% of 1,000: the Wilson intervals are far apart, and a fall
    # in attainment is worse. Goodput 9.9 against 9.0 jobs/s: counts of ~1,000 vary by
    # +-8% (99%, Poisson), so the intervals overlap.
    assert rows["slo.attainment"].verdict == "worse"
    assert rows["slo.goodputPerS"].verdict == "within noise"
    assert comparison.flagged_figures() == [rows["slo.attainment"]]
    text = comparison.format_text()
    assert "cost, SLO and cold starts" in text
    assert re.search(r"cost\.dollarsPerJob +\$0\.0004 +\$0\.0005 +\+\$0\.0001 +\+25\.0%", text)
    assert re.search(r"slo\.attainment +99\.00% \[[\d.]+%-[\d.]+%\] +90\.00% ", text)
    assert "-9.00 pp" in text


def test_attainment_interval_is_wilsons() -> None:
    # 90 of 100 at z = 2.576: the Wilson score interval is 0.7962 to 0.9540.
    rows = figure_rows(
        compare(
            RunDocument.from_json(with_figures(met=90, jobs=100), "base"),
            RunDocument.from_json(with_figures(met=90, jobs=100), "run"),
        )
    )
    low, high = rows["slo.attainment"].base_interval or (0, 0)
    assert low == pytest.approx(0.7962, abs=1e-4)
    assert high == pytest.approx(0.9540, abs=1e-4)
    assert rows["slo.attainment"].verdict == "within noise"


def test_a_small_fall_in_attainment_is_within_noise() -> None:
    rows = figure_rows(
        compare(
            RunDocument.from_json(with_figures(met=95, jobs=100), "base"),
            RunDocument.from_json(with_figures(met=90, jobs=100), "run"),
        )
    )
    assert rows["slo.attainment"].verdict == "within noise"  # 100 jobs cannot tell 5 pp


@pytest.mark.parametrize(
    ("rule", "broken"),
    [
        ("cost.dollarsPerJob:+10%", True),  # +25%
        ("cost.dollarsPerJob:+30%", False),
        ("cost.dollarsPerJob:+0.00005", True),  # in dollars
        ("coldStarts.exact:+3", True),  # 3 -> 7
        ("coldStarts.exact:+4", False),
        ("slo.attainment:-1pp", True),  # 99% -> 90%, beyond noise
        ("slo.attainment:-10pp", False),
        ("slo.attainment:-5%", True),  # relative: 5% of 99% is 4.95 pp
        ("slo.goodputPerS:-20%", False),  # 9.9 -> 9.0 jobs/s
    ],
)
def test_figure_rules(rule: str, broken: bool) -> None:
    comparison = compare(
        RunDocument.from_json(with_figures(met=990), "base"),
        RunDocument.from_json(with_figures(met=900, dollars_per_job=0.0005, cold=7), "run"),
        [rule],
    )
    assert comparison.rules[0].regression is broken, comparison.rules[0].message
    assert comparison.exit_status() == (EXIT_REGRESSION if broken else 0)


def test_a_figure_rule_on_a_figure_one_run_lacks_is_not_broken() -> None:
    lacking = with_figures(met=990)
    del lacking["cost"]
    comparison = compare(
        RunDocument.from_json(lacking, "base"),
        RunDocument.from_json(with_figures(met=990), "run"),
        ["cost.dollarsPerJob:+1%"],
    )
    assert comparison.rules[0].regression is False
    assert comparison.rules[0].message == "no cost.dollarsPerJob in the baseline"
    assert figure_rows(comparison)["cost.dollarsPerJob"].verdict == "one run only"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cost.dollarsPerJob:-10%", "cost.dollarsPerJob is worse when it grows: write +N"),
        ("slo.attainment:+1pp", "slo.attainment is worse when it falls: write -N"),
        ("cost.dollars:+1pp", "pp (percentage points) is for shares only"),
        ("cost.perJob:+10%", "unknown figure 'cost.perJob'"),
        ("cost.dollars:p95:+10%", "expected FIGURE:+ALLOWANCE"),
        ("slo.attainment:-1 percent", "is not an allowance like +10%"),
    ],
)
def test_figure_rule_parser_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(CompareError, match="invalid regression rule") as caught:
        parse_rule(text)
    assert problem in str(caught.value)
    assert "cost.dollarsPer1000Jobs" in str(caught.value)  # the figures are listed


def test_figure_rules_parse_case_insensitively() -> None:
    rule = parse_rule(" SLO.Attainment : -0.5pp ")
    assert isinstance(rule, FigureRule)
    assert rule.figure.name == "slo.attainment"
    assert rule.allowance(0.99) == pytest.approx(0.005)
    assert isinstance(parse_rule("e2e:p95:+10%"), CompareRule)


def test_other_slo_rules_make_runs_not_comparable_another_price_is_listed() -> None:
    comparison = compare(
        RunDocument.from_json(with_figures(met=990), "base"),
        RunDocument.from_json(with_figures(met=990, rules=("e2e<1s",), price=0.0005), "run"),
    )
    assert comparison.not_comparable == ["slo.rules e2e<5s vs e2e<1s"]
    assert comparison.differences == ["cost.pricePerS 0.0004 vs 0.0005"]
    assert comparison.exit_status() == EXIT_NOT_COMPARABLE


def test_figures_in_markdown_html_and_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write(tmp_path / "base.json", with_figures(met=990))
    run = write(tmp_path / "run.json", with_figures(met=900, dollars_per_job=0.0005))
    markdown, page = tmp_path / "c.md", tmp_path / "c.html"
    status = main(
        [
            *("compare", base, run, "--threshold", "cost.dollarsPer1000Jobs:+10%"),
            *("--threshold", "slo.attainment:-20pp", "--markdown", str(markdown)),
            *("--html", str(page)),
        ]
    )
    assert status == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "REGRESSION  cost.dollarsPer1000Jobs:+10%  ($0.4 -> $0.5, +$0.1 (+25.0%)" in out
    kept = "ok  slo.attainment:-20pp  (99.00% -> 90.00%, -9.00 pp (-9.1%), allowed -20.00 pp)"
    assert kept in out
    md = markdown.read_text(encoding="utf-8")
    assert "### Cost, SLO and cold starts" in md
    assert "| cost.dollarsPer1000Jobs | $0.4 | $0.5 | +$0.1 | +25.0% | not judged |" in md
    html_page = page.read_text(encoding="utf-8")
    assert '<table id="compare-figures" class="data">' in html_page
    assert '<tr class="worse"><td>slo.attainment</td>' in html_page
    # Files without the objects (older runs, runs without --slo or /health): no such table.
    plain = write(tmp_path / "plain.json", document({"e2e": [100] * 50}))
    assert main(["compare", plain, plain]) == 0
    assert "cost, SLO and cold starts" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["compare", plain, plain, "--threshold", "slo.attainment:+1pp"])
    assert "worse when it falls" in capsys.readouterr().err


# --------------------------------------------------------------------------- start-up

HEAVY_MODULES = (
    "locust", "gevent", "starlette", "uvicorn", "httpx", "jsonschema", "flask", "jinja2",
    "runpod_testkit.emulator", "runpod_testkit.client", "runpod_testkit.stats.accumulator",
)  # fmt: skip


@pytest.mark.slow
def test_the_command_imports_none_of_the_heavy_modules(tmp_path: Path) -> None:
    """`runpod-testkit compare` reads two JSON files: it starts without the load suite, the
    emulator, the client or the statistics accumulator (their imports were most of its
    wall time)."""
    base = write(tmp_path / "base.json", with_figures(met=990))
    script = (
        "import sys\n"
        "from runpod_testkit.cli import main\n"
        "status = main(['compare', sys.argv[1], sys.argv[1]])\n"
        "heavy = sorted({m for m in sys.modules for h in sys.argv[2:] "
        "if m == h or m.startswith(h + '.')})\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, base, *HEAVY_MODULES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "cost, SLO and cold starts" in result.stdout  # it did compare
    assert "HEAVY []" in result.stdout
