"""One snapshot behind every view, and what users stumbled on in those views (issue 12)."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from runpod_testkit.compare import RunDocument, compare
from runpod_testkit.cost import estimate_cost
from runpod_testkit.loadtest.summary import final_table, job_stats_document
from runpod_testkit.loadtest.webui import tab_rows
from runpod_testkit.report import render_html_report, render_live_fragment
from runpod_testkit.slo import Slo
from runpod_testkit.stats import JobStats, RunSnapshot, take_snapshot
from runpod_testkit.stats.snapshot import HealthRequests
from runpod_testkit.stats.views import csv_rows, format_table, json_document
from runpod_testkit.thresholds import evaluate

T0 = 1_700_000_000.0
GENERATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"


def run_stats(completed: int = 97, with_e2e: int = 89) -> JobStats:
    """A run in which `completed - with_e2e` jobs ended while the run was stopping (the
    tracker records those without e2e)."""
    stats = JobStats()
    for i in range(completed):
        at = T0 + i * 0.5
        stats.record_submitted(at=at)
        stats.record_terminal(
            "COMPLETED",
            delay_time_ms=20 + i % 30,
            execution_time_ms=300 + i,
            e2e_ms=400 + 3 * i if i < with_e2e else None,
            at=at + 0.3,
        )
        stats.record_health(
            {
                "jobs": {"inQueue": i % 5, "inProgress": 3},
                # What Runpod's /health answers: "ready" repeats "idle".
                "workers": {"idle": 1, "ready": 1, "running": 2, "initializing": 0},
            },
            at=at,
        )
    return stats


def chart(html: str, chart_id: str) -> ET.Element:
    match = re.search(rf'<svg id="{chart_id}".*?</svg>', html, re.S)
    assert match is not None, chart_id
    return ET.fromstring(match.group().replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


# --------------------------------------------------------------------------- one snapshot


def test_the_snapshot_is_frozen_and_views_render_only_it() -> None:
    stats = run_stats()
    snapshot = take_snapshot(stats, evaluate(["e2e:p95<5s"], stats))
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.thresholds = ()  # type: ignore[misc]
    views = (
        format_table(snapshot),
        json.dumps(json_document(snapshot)),
        json.dumps(csv_rows(snapshot)),
        json.dumps(tab_rows(snapshot)),
        render_html_report(snapshot, generated_at=GENERATED),
    )
    # Whatever the statistics record afterwards, a view of the snapshot does not change.
    for i in range(50):
        stats.record_terminal("FAILED", e2e_ms=9_999, at=T0 + 100 + i)
    assert views == (
        format_table(snapshot),
        json.dumps(json_document(snapshot)),
        json.dumps(csv_rows(snapshot)),
        json.dumps(tab_rows(snapshot)),
        render_html_report(snapshot, generated_at=GENERATED),
    )


def test_every_view_shows_the_same_numbers() -> None:
    stats = run_stats()
    snapshot = take_snapshot(stats)
    e2e = snapshot.metrics["e2e"]
    assert json_document(snapshot) == stats.to_json()  # the --job-stats-json shape is kept
    csv_e2e = next(row for row in csv_rows(snapshot) if row[0] == "e2e")
    assert csv_e2e[1:3] == [str(e2e.count), str(e2e.min)]
    tab = {row["statistic"]: row for row in tab_rows(snapshot)}
    assert (tab["e2e (ms)"]["count"], tab["e2e (ms)"]["p99"]) == (e2e.count, e2e.percentiles["p99"])
    html = render_html_report(snapshot, generated_at=GENERATED)
    assert f'<th scope="row">e2e</th><td class="num">{e2e.count}</td>' in html
    completed = re.search(r"^COMPLETED +(\d+)$", format_table(snapshot), re.M)
    assert completed is not None
    assert int(completed.group(1)) == snapshot.outcomes.completed == 97


def test_the_outcome_explanations_are_written_once() -> None:
    stats = JobStats()
    stats.record_submitted(3, at=T0)
    stats.record_outcome("interrupted", 2, at=T0)
    stats.record_outcome("unknown", 1, at=T0)
    snapshot = take_snapshot(stats)
    note = snapshot.outcomes.note("interrupted")
    tab = {row["statistic"]: row for row in tab_rows(snapshot)}
    assert tab["jobs interrupted"]["detail"] == note
    assert f"({note})" in format_table(snapshot)
    assert f'title="{note}"' in render_html_report(snapshot)
    assert snapshot.outcomes.note("unknown") in format_table(snapshot)


# --------------------------------------------------------------------------- stumbles


def test_the_table_says_why_e2e_has_fewer_samples_than_jobs_ended() -> None:
    snapshot = take_snapshot(run_stats(completed=97, with_e2e=89))
    note = snapshot.outcomes.e2e_note
    assert note is not None
    assert note.startswith("89 e2e samples for 97 jobs that ended with a server status: 8 ended")
    assert "while the run was stopping" in note
    assert note in final_table(snapshot)
    assert note in {row["statistic"]: row for row in tab_rows(snapshot)}["e2e (ms)"]["detail"]
    html = render_html_report(snapshot)
    assert re.search(r'<p id="e2e-note" class="muted">89 e2e samples for 97 jobs', html)
    # When every ended job has its e2e, nothing is said.
    assert take_snapshot(run_stats(completed=10, with_e2e=10)).outcomes.e2e_note is None


def test_health_workers_count_ready_and_idle_once() -> None:
    snapshot = take_snapshot(run_stats())
    assert snapshot.health[-1].worker_count == 3  # idle 1 + running 2; ready repeats idle
    tab = {row["statistic"]: row for row in tab_rows(snapshot)}
    assert tab["/health workers"]["max"] == 3
    assert tab["/health workers ready"]["max"] == 1  # still shown as its own row


def test_the_percentile_chart_labels_50_90_99_and_99_9() -> None:
    # 89 samples: the curve itself ends before p99 (1 in 89), the axis does not.
    html = render_html_report(take_snapshot(run_stats()))
    svg = chart(html, "chart-e2e-dist")
    ticks = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "tick"]
    assert {"50%", "90%", "99%", "99.9%"} <= set(ticks)
    # The line reaches the p99.9 tick: the value there (the maximum) can be read.
    tick_x = {t.text: float(t.get("x", "0")) for t in svg.iter(f"{SVG}text") if t.text}
    (line,) = svg.iter(f"{SVG}polyline")
    last_x = float(line.get("points", "").split()[-1].split(",")[0])
    assert last_x == pytest.approx(tick_x["99.9%"], abs=0.2)


def test_p95_and_max_lines_are_told_apart_in_the_chart_and_its_legend() -> None:
    stats = JobStats()
    for i in range(20):  # one sample per window: p95 == max everywhere
        stats.record("delayTime", 100 + i, at=T0 + i)
    html = render_html_report(stats)
    svg = chart(html, "chart-delayTime-time")
    lines = {line.findtext(f"{SVG}title"): line for line in svg.iter(f"{SVG}polyline")}
    assert set(lines) == {"p50", "p95", "max"}
    p95, top = lines["p95"], lines["max"]
    assert p95.get("points") == top.get("points")  # they coincide here...
    assert p95.get("stroke-dasharray")  # ...and still differ: dashed on top,
    assert not top.get("stroke-dasharray")  # solid, wide and pale under it
    assert float(top.get("stroke-width", "0")) > 2 * float(p95.get("stroke-width", "0"))
    assert top.get("stroke") != p95.get("stroke")
    order = [line.findtext(f"{SVG}title") for line in svg.iter(f"{SVG}polyline")]
    assert order.index("max") < order.index("p95")  # drawn under it
    figure = re.search(r'<svg id="chart-delayTime-time".*?</figure>', html, re.S)
    assert figure is not None
    keys = re.findall(
        r'<span class="key"><svg[^>]*><line ([^>]*)/></svg>([^<]*)</span>', figure.group()
    )
    legend = {label: attrs for attrs, label in keys}
    assert 'stroke-dasharray="6 3"' in legend["p95"]
    assert 'stroke-width="6"' in legend["max"]


def test_lost_workers_and_health_requests_are_shown() -> None:
    lost = "LOST  worker w-1: its statistics up to its last report are kept (3 jobs submitted)"
    snapshot = take_snapshot(
        run_stats(), lost_workers=[lost], health_requests=HealthRequests(12, 1, 240.0)
    )
    tab = tab_rows(snapshot)
    assert {"statistic": "worker lost", "detail": lost} in tab
    sampler = {row["statistic"]: row for row in tab}["/health sampler requests"]
    assert (sampler["count"], sampler["mean"]) == (12, 20.0)
    assert "kept out of Locust's request statistics" in str(sampler["detail"])
    assert "/health sampler: 12 requests, 1 failed" in format_table(snapshot)
    html = render_html_report(snapshot)
    assert f'<li class="lost-worker">{lost}</li>' in html
    assert 'id="health-requests"' in html
    assert '<section id="lost-workers">' in render_live_fragment(snapshot)


def test_the_report_renders_slo_cost_and_comparison_from_the_snapshot() -> None:
    stats = run_stats()
    stats.slo = Slo(["e2e<1s"])
    stats.record_terminal("COMPLETED", e2e_ms=100, at=T0 + 60)
    cost = estimate_cost(stats.health_samples(), completed_jobs=98, price_per_s=0.0004)
    base = RunDocument.from_json(job_stats_document(stats), "baseline")
    snapshot = take_snapshot(stats, duration_s=60.0, cost=cost)
    snapshot = dataclasses.replace(snapshot, comparison=compare(base, base, ["e2e:p95:+10%"]))
    html = render_html_report(snapshot)
    for section in ("slo", "cost", "compare"):
        assert html.count(f'<section id="{section}">') == 1, section
    assert html.index('id="thresholds"') < html.index('id="slo"') < html.index('id="cost"')
    assert html.index('id="cost"') < html.index('id="compare"') < html.index('id="percentiles"')
    assert snapshot.slo is not None
    assert f"<td>{snapshot.slo['attainment'] * 100:.2f}%</td>" in html


def test_a_job_stats_instance_still_renders_as_before() -> None:
    stats = run_stats()
    assert isinstance(take_snapshot(stats), RunSnapshot)
    assert stats.format_table() == format_table(take_snapshot(stats))
    assert stats.csv_rows() == csv_rows(take_snapshot(stats))


def test_coarsened_series_equal_a_merge_into_a_narrow_copy() -> None:
    stats = run_stats()
    series = stats._metric_series["e2e"]  # the windows behind the charts
    for max_points in (1, 3, 7, 50, 1000):
        # What coarsening did before: merge into a copy that starts at width 1 and doubles.
        expected = type(series)(max_points, series._new, series._combine)
        expected.merge(series)
        got = series.coarsened(max_points)
        assert got.width == expected.width
        assert {t: (w.count, w.total, w.max, dict(w.coarse)) for t, w in got.slots.items()} == {
            t: (w.count, w.total, w.max, dict(w.coarse)) for t, w in expected.slots.items()
        }


def test_a_snapshot_without_charts_has_the_same_numbers() -> None:
    stats = run_stats()
    full, light = take_snapshot(stats), take_snapshot(stats, charts=False)
    assert light.series["health"]["points"] == []
    assert all(points == () for points in light.distributions.values())
    assert tab_rows(light) == tab_rows(full)
    assert json_document(light) == json_document(full)
