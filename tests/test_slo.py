"""Self-tests of runpod_testkit.slo and JobStats' SLO count: the rule parser, which jobs meet
an SLO, attainment and goodput, and the count's trip from a Locust worker to the master."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from runpod_testkit.jobstats import CLIENT_TIMEOUT, INTERRUPTED, JobStats
from runpod_testkit.loadtest.settings import Settings, SettingsError
from runpod_testkit.report import render_html_report, render_live_fragment
from runpod_testkit.slo import Slo, SloError, SloRule, slo_html, slo_line, slo_series
from runpod_testkit.stats import take_snapshot
from runpod_testkit.thresholds import Threshold, ThresholdError, evaluate

SVG_NS = "http://www.w3.org/2000/svg"


@pytest.mark.parametrize(
    ("text", "metric", "op", "limit"),
    [
        ("e2e<5s", "e2e", "<", 5000.0),
        (" TTFC <= 800ms ", "ttfc", "<=", 800.0),
        ("delayTime<1500", "delayTime", "<", 1500.0),
        ("executionTime<0.5s", "executionTime", "<", 500.0),
    ],
)
def test_rule_parser_accepts(text: str, metric: str, op: str, limit: float) -> None:
    rule = SloRule.parse(text)
    assert (rule.metric, rule.op, rule.limit_ms) == (metric, op, limit)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("e2e>5s", "not a rule"),
        ("e2e<", "not a rule"),
        ("e2e<5m", "not a rule"),
        ("latency<5s", "unknown metric 'latency'"),
        ("chunkGap<100", "unknown metric 'chunkGap'"),
    ],
)
def test_rule_parser_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(SloError, match="invalid SLO") as caught:
        SloRule.parse(text)
    assert problem in str(caught.value)


def test_a_job_must_meet_every_rule_that_applies_to_it() -> None:
    slo = Slo(["e2e<5s", "ttfc<=800"])
    assert slo.met(10, 100, 4999, 800)
    assert not slo.met(10, 100, 5000, 800)  # < is strict
    assert not slo.met(10, 100, 4000, 801)
    assert slo.met(10, 100, 4000, None)  # not streamed: the ttfc rule does not apply
    assert slo.describe() == "e2e<5s, ttfc<=800"
    assert not Slo([])


def test_attainment_counts_every_ended_job_and_goodput_divides_by_the_duration() -> None:
    stats = JobStats()
    stats.slo = Slo(["e2e<1000"])
    stats.record_terminal("COMPLETED", e2e_ms=500)  # met
    stats.record_terminal("COMPLETED", e2e_ms=1500)  # too slow
    stats.record_terminal("COMPLETED")  # e2e unknown: no rule applies, met
    stats.record_terminal("FAILED", e2e_ms=100)  # fast, but failed
    stats.record_outcome(CLIENT_TIMEOUT)  # ended for the client: missed
    stats.record_outcome(INTERRUPTED)  # the run's own cancel: not counted
    assert stats.slo_met == 2
    assert stats.slo_summary(4.0) == {
        "rules": ["e2e<1000"],
        "jobs": 5,
        "met": 2,
        "attainment": 0.4,
        "goodputPerS": 0.5,
    }
    assert stats.slo_summary(None)["goodputPerS"] is None  # type: ignore[index]
    line = slo_line(stats.slo_summary(4.0))  # type: ignore[arg-type]
    assert (
        line == "SLO e2e<1000: 2 of 5 ended jobs met it (attainment 40.00%, goodput 0.5 jobs/s)\n"
    )
    stats.reset()
    assert stats.slo_met == 0
    assert stats.slo is not None  # the rules outlive a reset (a new test, --reset-stats)


def test_without_an_slo_nothing_is_counted() -> None:
    stats = JobStats()
    stats.record_terminal("COMPLETED", e2e_ms=1)
    assert stats.slo_met == 0
    assert stats.slo_summary(1.0) is None


def test_the_count_travels_from_workers_to_the_master() -> None:
    master = JobStats()
    master.slo = Slo(["delayTime<100"])
    for delays in ([10, 20, 300], [50, 500]):
        worker = JobStats()
        worker.slo = Slo(["delayTime<100"])
        for delay in delays:
            worker.record_terminal("COMPLETED", delay_time_ms=delay)
        master.merge_transport(worker.pop_transport())
        assert worker.slo_met == 0  # shipped and reset
    assert master.slo_met == 3
    assert master.terminal_count == 5


def test_the_option_is_checked_when_parsed() -> None:
    good = SimpleNamespace(slo=["e2e<5s", "ttfc<800ms"])
    assert Settings.from_options(good).slo == ("e2e<5s", "ttfc<800ms")
    with pytest.raises(SettingsError, match="--slo: invalid SLO 'e2e>5s'"):
        Settings.from_options(SimpleNamespace(slo=["e2e>5s"]))


def test_a_threshold_on_attainment() -> None:
    stats = JobStats()
    [rule] = evaluate(["slo:attainment>=99%"], stats)
    assert (rule.passed, rule.message) == (False, "no --slo given: fails")
    stats.slo = Slo(["e2e<1s"])
    for e2e in (100, 200, 300, 2000):
        stats.record_terminal("COMPLETED", e2e_ms=e2e)
    high, low = evaluate(["slo:attainment>=99%", "SLO:Attainment>0.7"], stats)
    assert (high.value, high.passed) == (0.75, False)
    assert high.message == "observed 0.75 (75.00%), limit >= 99%"  # as written
    assert low.passed
    with pytest.raises(ThresholdError, match="unknown slo statistic 'goodput'"):
        Threshold.parse("slo:goodput>1")


def test_the_report_section_escapes_the_rules() -> None:
    summary = {"rules": ["e2e<5s"], "jobs": 4, "met": 3, "attainment": 0.75, "goodputPerS": 1.5}
    section = slo_html(summary)
    assert '<table id="slo-table" class="data">' in section
    assert "<td>e2e&lt;5s</td>" in section
    assert "<td>75.00%</td>" in section
    assert "<td>1.5</td>" in section


# ---- the SLO over time (issue 12)


def test_attainment_and_goodput_per_window() -> None:
    stats = JobStats()
    stats.slo = Slo(["e2e<1s"])
    assert slo_series(JobStats()) is None  # without --slo
    t0 = 1_000.0
    stats.record_submitted(3, at=t0)
    stats.record_terminal("COMPLETED", e2e_ms=400, at=t0 + 0.2)  # met
    stats.record_terminal("COMPLETED", e2e_ms=1500, at=t0 + 0.7)  # missed
    stats.record_terminal("FAILED", at=t0 + 1.1)  # missed
    stats.record_outcome(INTERRUPTED, at=t0 + 1.5)  # not judged
    stats.record_terminal("COMPLETED", e2e_ms=100, at=t0 + 3.0)  # met
    series = slo_series(stats)
    assert series == {
        "width": 1,
        "points": [
            {"t": 1000, "jobs": 2, "met": 1, "attainment": 0.5, "goodputPerS": 1.0},
            {"t": 1001, "jobs": 1, "met": 0, "attainment": 0.0, "goodputPerS": 0.0},
            {"t": 1003, "jobs": 1, "met": 1, "attainment": 1.0, "goodputPerS": 1.0},
        ],
    }
    # The windows add up to the whole run's figures.
    summary = stats.slo_summary(4.0)
    assert summary is not None
    assert sum(p["met"] for p in series["points"]) == summary["met"] == 2
    assert sum(p["jobs"] for p in series["points"]) == summary["jobs"] == 4
    # The outcome series and outcomes do not show the SLO count as an outcome.
    assert all("sloMet" not in p for p in stats.series_json()["jobs"]["points"])
    assert "sloMet" not in stats.outcomes
    # Coarser windows for a chart: 2 s wide, the same totals.
    coarse = slo_series(stats, max_points=2)
    assert coarse is not None
    assert coarse["width"] == 2
    assert [(p["t"], p["jobs"], p["met"]) for p in coarse["points"]] == [(1000, 3, 1), (1002, 1, 1)]
    assert coarse["points"][0]["goodputPerS"] == 0.5


def test_the_windows_travel_from_workers_to_the_master() -> None:
    master = JobStats()
    master.slo = Slo(["delayTime<=500"])
    for delay in (100, 900):
        worker = JobStats()
        worker.slo = Slo(["delayTime<=500"])
        worker.record_terminal("COMPLETED", delay_time_ms=delay, at=2_000.5)
        master.merge_transport(worker.pop_transport())
    series = slo_series(master)
    assert series is not None
    assert series["points"] == [
        {"t": 2000, "jobs": 2, "met": 1, "attainment": 0.5, "goodputPerS": 1.0}
    ]


# ---- the SLO's charts in the HTML report and the web UI tab (issue 12)


def slo_chart_stats() -> JobStats:
    stats = JobStats()
    stats.slo = Slo(["e2e<1s"])
    t0 = 1_000.0
    stats.record_submitted(4, at=t0)
    stats.record_terminal("COMPLETED", e2e_ms=400, at=t0 + 0.2)  # met
    stats.record_terminal("COMPLETED", e2e_ms=1500, at=t0 + 0.7)  # missed
    stats.record_terminal("FAILED", at=t0 + 1.1)  # missed
    stats.record_terminal("COMPLETED", e2e_ms=100, at=t0 + 3.0)  # met; none ended at 1002
    return stats


def svg(html: str, chart_id: str) -> ET.Element:
    match = re.search(rf'<svg id="{chart_id}".*?</svg>', html, re.S)
    assert match is not None, chart_id
    return ET.fromstring(match.group().replace("<svg ", f'<svg xmlns="{SVG_NS}" ', 1))


def polylines(chart: ET.Element) -> dict[str, list[list[tuple[float, float]]]]:
    """Each line's segments, by the line's title, as (x, y) in the chart's coordinates."""
    found: dict[str, list[list[tuple[float, float]]]] = {}
    for line in chart.iter(f"{{{SVG_NS}}}polyline"):
        title = line.findtext(f"{{{SVG_NS}}}title") or ""
        pairs = [pair.split(",") for pair in line.attrib["points"].split()]
        found.setdefault(title, []).append([(float(x), float(y)) for x, y in pairs])
    return found


def test_the_report_charts_attainment_and_goodput_over_time() -> None:
    html = render_html_report(take_snapshot(slo_chart_stats(), duration_s=4.0))
    chart = svg(html, "chart-slo-time")
    texts = [text.text or "" for text in chart.iter(f"{{{SVG_NS}}}text")]
    ticks = [text for text in texts if text.endswith("%")]
    assert ticks == ["0%", "20%", "40%", "60%", "80%", "100%"]  # always the whole 0-100%
    # y: 100% at the plot's top (12), 0% at its bottom (210). Windows 1000 (1 of 2 met) and
    # 1001 (0 of 1) are one segment; 1002 had no ended job, so 1003 (1 of 1) stands alone.
    lines = polylines(chart)
    segments = lines["attainment per window"]
    assert [[y for _, y in segment] for segment in segments] == [[111.0, 210.0], [12.0]]
    assert [[y for _, y in segment] for segment in lines["overall"]] == [[111.0, 111.0]]  # 2 of 4
    assert "SLO attainment (e2e&lt;1s), per second" in html
    goodput = polylines(svg(html, "chart-goodput-time"))
    assert set(goodput) == {"ended jobs", "goodput (met the SLO)"}
    assert html.index('id="chart-jobs-time"') < html.index('id="chart-slo-time"')


def test_the_web_ui_tab_charts_the_slo_and_nothing_without_one() -> None:
    fragment = render_live_fragment(take_snapshot(slo_chart_stats()))
    assert 'id="chart-slo-time"' in fragment
    assert 'id="chart-goodput-time"' in fragment
    plain = JobStats()
    plain.record_terminal("COMPLETED", e2e_ms=400, at=1_000.0)
    for html in (render_live_fragment(take_snapshot(plain)), render_html_report(plain)):
        assert "chart-slo-time" not in html
        assert "chart-goodput-time" not in html
