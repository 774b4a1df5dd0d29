"""A self-contained HTML report of job statistics, with inline SVG charts.

The file loads nothing: no scripts, fonts, stylesheets or images from anywhere (a
Content-Security-Policy in the page says so too), so it opens offline and can be attached
to a CI run. The page is a Jinja2 template (runpod_testkit/templates) with autoescaping: every
piece of text, including status and worker-state names that came from the endpoint, is
escaped. The SVG charts are built here, each label escaped, and passed in as markup.

Every function renders a `RunSnapshot` (runpod_testkit.stats.snapshot); given a `JobStats`,
it takes the snapshot first.

Stable element ids (tests and users rely on them):
  job-stats-table, job-outcomes, thresholds-table, stream-summary, chart-<metric>-time,
  chart-<metric>-dist, chart-jobs-time, chart-queue-time, chart-workers-time; with a
  snapshot that has them: slo, chart-slo-time, cost, cold-starts, compare (compare-table,
  compare-figures), chart-goodput-time, lost-workers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from markupsafe import Markup

from runpod_testkit.operations import JobStatus
from runpod_testkit.stats.names import (
    INTERRUPTED,
    METRICS,
    REPORTED_PERCENTILES,
    SUBMITTED,
)
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.snapshot import (
    DISTRIBUTION_PERCENT_TICKS,
    RunSnapshot,
    take_snapshot,
)
from runpod_testkit.stats.thresholds import ThresholdResult
from runpod_testkit.stats.views import json_document
from runpod_testkit.templating import templates

__all__ = [
    "live_charts",
    "live_summary",
    "page",
    "render_html_report",
    "render_live_fragment",
    "render_live_page",
    "write_html_report",
]

CHART_METRICS = METRICS  # delayTime, ..., chunkGap, webhookDelay: over time, as a curve
_PALETTE = ("#2563eb", "#ea580c", "#dc2626", "#16a34a", "#7c3aed", "#0891b2", "#db2777", "#65a30d")
_METRIC_TITLES = {
    "delayTime": "delayTime (queue wait, server-reported)",
    "executionTime": "executionTime (server-reported)",
    "e2e": "end to end (submit to terminal state, client)",
    "ttfc": "time to first stream chunk (client)",
    "chunkGap": "gap between stream chunks (client)",
    "webhookDelay": "job end to webhook arrival (WebhookUser, client)",
}
_REQUEST_ROWS = (
    ("throttled", "throttled (HTTP 429)", "bad"),
    ("serverError", "server error (HTTP 5xx)", "bad"),
    ("connectionError", "connection error", "bad"),
    ("refused", "refused (HTTP 401/403)", "bad"),
    ("retried", "retried", ""),
)
# Row class of an outcome: completed green, submitted plain, interrupted grey, the rest red.
_OUTCOME_KINDS = {JobStatus.COMPLETED: "ok", SUBMITTED: "", INTERRUPTED: "muted"}
_LABELS = tuple(label for label, _ in REPORTED_PERCENTILES)

Stats = JobStats | RunSnapshot


def _table_args(snap: RunSnapshot) -> dict[str, Any]:
    return {
        "snap": snap,
        "metrics": METRICS,
        "labels": _LABELS,
        "kinds": _OUTCOME_KINDS,
        "request_rows": _REQUEST_ROWS,
    }


def _snapshot(stats: Stats, thresholds: Sequence[ThresholdResult]) -> RunSnapshot:
    """A JobStats is read into a snapshot (without its SLO: callers of this older form pass
    the SLO section themselves)."""
    if isinstance(stats, RunSnapshot):
        return stats
    return dataclasses.replace(take_snapshot(stats, thresholds), slo=None)


def write_html_report(
    stats: Stats,
    path: str | Path,
    *,
    title: str = "Job statistics",
    thresholds: Sequence[ThresholdResult] = (),
    generated_at: datetime | None = None,
    warnings: Sequence[str] = (),
    sections: Sequence[str] = (),
) -> None:
    """Write `render_html_report(...)` to `path` (UTF-8)."""
    html = render_html_report(
        stats,
        title=title,
        thresholds=thresholds,
        generated_at=generated_at,
        warnings=warnings,
        sections=sections,
    )
    Path(path).write_text(html, encoding="utf-8")


def render_html_report(
    stats: Stats,
    *,
    title: str = "Job statistics",
    thresholds: Sequence[ThresholdResult] = (),
    generated_at: datetime | None = None,
    warnings: Sequence[str] = (),
    sections: Sequence[str] = (),
) -> str:
    """The whole report as one HTML document; `warnings` (e.g. a worker lost in a distributed
    run) are listed first, in a section of their own. The snapshot's SLO, cost and comparison
    follow the thresholds; `sections`: more `<section>` elements, already escaped, after them.
    `thresholds` is used only when `stats` is a JobStats (a snapshot carries its own)."""
    snap = _snapshot(stats, thresholds)
    series = snap.series
    origin = _series_origin(series)
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S %Z")
    run_start, run_length = _run_window(series, origin)
    snapshot_sections = [
        Markup(section)  # rendered by the autoescaping _sections.html.j2
        for section in (
            snap.cost.html_section() if snap.cost is not None else None,
            snap.cold_starts.html_section() if snap.cold_starts is not None else None,
            snap.comparison.html_section() if snap.comparison is not None else None,
        )
        if section
    ]
    return (
        templates()
        .get_template("report.html.j2")
        .render(
            **_page_args(title),
            **_table_args(snap),
            generated=when.strip(),
            run_start=run_start,
            run_length=run_length,
            warnings=warnings,
            cards=_summary_cards(snap),
            snapshot_sections=snapshot_sections,
            sections=[Markup(section) for section in sections],  # escaped by callers
            over_time=[
                _jobs_chart(series["jobs"], origin),
                *_slo_charts(snap, origin),
                _queue_chart(series["health"]["points"], origin),
                _workers_chart(series["health"]["points"], origin),
                *(
                    _metric_time_chart(name, series["metrics"][name], origin)
                    for name in CHART_METRICS
                ),
            ],
            distributions=[_metric_distribution_chart(snap, name) for name in CHART_METRICS],
        )
    )


def live_charts(snap: RunSnapshot) -> list[Markup]:
    """The charts a live view shows: queue depth, workers by state, delayTime and e2e over
    time, and the SLO attainment with --slo."""
    series = snap.series
    origin = _series_origin(series)
    return [
        _queue_chart(series["health"]["points"], origin),
        _workers_chart(series["health"]["points"], origin),
        _metric_time_chart("delayTime", series["metrics"]["delayTime"], origin),
        _metric_time_chart("e2e", series["metrics"]["e2e"], origin),
        *_slo_charts(snap, origin),
    ]


def render_live_fragment(stats: Stats, thresholds: Sequence[ThresholdResult] = ()) -> str:
    """An HTML fragment (no <html>/<head>) for a Locust web UI tab: tables and live charts."""
    snap = _snapshot(stats, thresholds)
    return (
        templates()
        .get_template("fragment.html.j2")
        .render(**_table_args(snap), charts=live_charts(snap))
    )


def render_live_page(
    stats: Stats,
    thresholds: Sequence[ThresholdResult] = (),
    *,
    title: str = "Job statistics (live)",
    refresh_s: int = 3,
) -> str:
    """`render_live_fragment` as a whole page that reloads itself every `refresh_s` seconds
    (a page a Locust master serves while a run goes; it loads nothing else either)."""
    return (
        templates()
        .get_template("live.html.j2")
        .render(
            **_page_args(title, refresh_s=refresh_s),
            when=datetime.now(timezone.utc).strftime("%H:%M:%S UTC"),
            fragment=Markup(render_live_fragment(stats, thresholds)),  # a template's
        )
    )


def live_summary(stats: Stats) -> dict[str, Any]:
    """A JSON-able dict for a web UI tab: the --job-stats-json summary plus the latest health."""
    snap = _snapshot(stats, ())
    latest = snap.latest_health
    return {
        **json_document(snap),
        "failureRate": snap.outcomes.failure_rate,
        "health": latest.to_json() if latest else None,
    }


def _summary_cards(snap: RunSnapshot) -> list[tuple[str, str, str]]:
    thresholds = snap.thresholds
    passed = sum(1 for r in thresholds if r.passed)
    rate = snap.outcomes.failure_rate
    cards = [
        ("submitted", str(snap.outcomes.counts.get(SUBMITTED, 0)), ""),
        ("completed", str(snap.outcomes.completed), ""),
        ("failure rate", "n/a" if rate is None else f"{rate:.2%}", "bad" if rate else ""),
    ]
    if thresholds:
        verdict = "pass" if passed == len(thresholds) else "fail"
        cards.append(("thresholds passed", f"{passed} / {len(thresholds)}", verdict))
    return cards


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class _Line:
    label: str
    points: list[tuple[float, float]]
    color: str
    dash: str | None = None
    """An SVG stroke-dasharray, None for a solid line."""
    width: float = 2.0
    opacity: float = 1.0
    joined: bool = False
    """Drawn whole, not split where its points are far apart (a level, not a series)."""


def _series_origin(series: Mapping[str, Any]) -> float:
    """The earliest timestamp of any series: x = 0 on the time charts."""
    times = [p["t"] for m in series["metrics"].values() for p in m["points"]]
    times += [p["t"] for p in series["jobs"]["points"]]
    times += [p["t"] for p in series["health"]["points"]]
    return float(min(times)) if times else 0.0


def _run_window(series: Mapping[str, Any], origin: float) -> tuple[str | None, str | None]:
    """(start, length) of the run as the series saw it; (None, None) without samples."""
    ends = [p["t"] + m["width"] for m in series["metrics"].values() for p in m["points"]]
    ends += [p["t"] + series["jobs"]["width"] for p in series["jobs"]["points"]]
    ends += [p["t"] for p in series["health"]["points"]]
    if not ends:
        return None, None
    start = datetime.fromtimestamp(origin, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return start, _clock(max(ends) - origin)


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _ms(value: float, top: float) -> str:
    """Milliseconds, or seconds on an axis that goes past 10 s."""
    if top >= 10_000:
        return f"{value / 1000:g} s"
    return f"{value:g} ms"


# (label, colour, dash, width, opacity). max is drawn first, wide and pale, and p95 on top of
# it, thin and dashed: where the two are equal (a window with few samples) both stay visible.
_TIME_LINES = (
    ("max", 2, None, 6.0, 0.35),
    ("p50", 0, None, 2.0, 1.0),
    ("p95", 1, "6 3", 2.0, 1.0),
)


def _metric_time_chart(name: str, data: Mapping[str, Any], origin: float) -> Markup:
    width = data["width"]
    lines = [
        _Line(
            label,
            [(p["t"] - origin + width / 2, p[label]) for p in data["points"]],
            _PALETTE[color],
            dash,
            stroke,
            opacity,
        )
        for label, color, dash, stroke, opacity in _TIME_LINES
    ]
    per = f"per {width} s window" if width > 1 else "per second"
    return _chart(
        f"chart-{name}-time",
        f"{_METRIC_TITLES[name]}, {per}",
        lines,
        x_format=_clock,
        y_format=_ms,
        gap=width,
    )


def _metric_distribution_chart(snap: RunSnapshot, name: str) -> Markup:
    points = list(snap.distributions[name])
    top = points[-1][0] if points else 0.0
    if points:
        # Past 1 - 1/count every percentile is the maximum: carry it on to p99.9, so that
        # p50, p90, p99 and p99.9 can be read off every chart.
        points.append((max(top, _LAST_TICK), points[-1][1]))
    ticks = [x for x, _ in DISTRIBUTION_PERCENT_TICKS if x <= max(top, _LAST_TICK)]
    return _chart(
        f"chart-{name}-dist",
        f"{_METRIC_TITLES[name]}: value at percentile",
        [_Line(name, points, _PALETTE[0])],
        x_format=_percent_label,
        y_format=_ms,
        x_ticks=ticks,
        step=True,
    )


_LAST_TICK = 3.0  # 99.9%


def _percent_label(x: float) -> str:
    return next(
        (label for tick, label in DISTRIBUTION_PERCENT_TICKS if abs(tick - x) < 1e-9), f"{x:g}"
    )


def _jobs_chart(data: Mapping[str, Any], origin: float) -> Markup:
    width = data["width"]
    names = sorted({k for p in data["points"] for k in p if k != "t"}, key=_outcome_order)
    lines = [
        _Line(
            name,
            [(p["t"] - origin + width / 2, p.get(name, 0) / width) for p in data["points"]],
            _PALETTE[i % len(_PALETTE)],
        )
        for i, name in enumerate(names)
    ]
    return _chart(
        "chart-jobs-time", "Jobs per second", lines, x_format=_clock, y_format=_rate, gap=width
    )


def _outcome_order(name: str) -> tuple[int, str]:
    return (0 if name == SUBMITTED else 1 if name == JobStatus.COMPLETED else 2, name)


def _rate(value: float, top: float) -> str:
    return f"{value:g}/s"


def _slo_charts(snap: RunSnapshot, origin: float) -> list[Markup]:
    """The SLO attainment per window over the run's overall attainment, and the goodput per
    window over the rate of ended jobs; none without --slo. Windows in which no job ended have
    no attainment: a gap. As with max and p95, the level behind is drawn wide and pale, the
    line in front thin on top of it: where the two are equal (every job met the SLO) both show."""
    over_time, summary = snap.slo_over_time, snap.slo
    if over_time is None or summary is None:
        return []
    width = over_time["width"]
    points = over_time["points"]
    measured = [p for p in points if p["attainment"] is not None]
    attainment: list[_Line] = []
    overall = summary.get("attainment")
    if overall is not None and measured:
        first, last = measured[0]["t"] - origin, measured[-1]["t"] - origin + width
        level = [(first, overall * 100), (last, overall * 100)]
        attainment.append(_Line("overall", level, _PALETTE[1], None, 6.0, 0.35, joined=True))
    attainment.append(
        _Line(
            "attainment per window",
            [(p["t"] - origin + width / 2, p["attainment"] * 100) for p in measured],
            _PALETTE[3],
        )
    )
    middles = [p["t"] - origin + width / 2 for p in points]
    rates = [
        _Line(
            "ended jobs",
            [(x, p["jobs"] / width) for x, p in zip(middles, points, strict=True)],
            _PALETTE[0],
            None,
            6.0,
            0.35,
        ),
        _Line(
            "goodput (met the SLO)",
            [(x, p["goodputPerS"]) for x, p in zip(middles, points, strict=True)],
            _PALETTE[3],
        ),
    ]
    per = f"per {width} s window" if width > 1 else "per second"
    rules = ", ".join(summary.get("rules", ()))
    return [
        _chart(
            "chart-slo-time",
            f"SLO attainment ({rules}), {per}",
            attainment,
            x_format=_clock,
            y_format=_share,
            gap=width,
            y_top=100.0,
        ),
        _chart(
            "chart-goodput-time",
            f"Goodput: jobs per second that met the SLO ({rules})",
            rates,
            x_format=_clock,
            y_format=_rate,
            gap=width,
        ),
    ]


def _share(value: float, top: float) -> str:
    return f"{value:g}%"


def _queue_chart(points: Sequence[Mapping[str, Any]], origin: float) -> Markup:
    lines = [
        _Line(key, [(p["t"] - origin, p[key]) for p in points], _PALETTE[i])
        for i, key in enumerate(("inQueue", "inProgress"))
    ]
    return _chart(
        "chart-queue-time",
        "Queue depth (/health)",
        lines,
        x_format=_clock,
        y_format=_count,
        whole=True,
    )


def _workers_chart(points: Sequence[Mapping[str, Any]], origin: float) -> Markup:
    states = sorted({state for p in points for state in p["workers"]})
    lines = [
        _Line(
            state,
            [(p["t"] - origin, p["workers"].get(state, 0)) for p in points],
            _PALETTE[i % len(_PALETTE)],
        )
        for i, state in enumerate(states)
    ]
    return _chart(
        "chart-workers-time",
        "Workers by state (/health)",
        lines,
        x_format=_clock,
        y_format=_count,
        whole=True,
    )


def _count(value: float, top: float) -> str:
    return f"{value:g}"


_W, _H = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 12, 30


def _nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round-numbered ticks covering [low, high]; `whole`: whole-number steps only (counts)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    if whole:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(
        m * magnitude
        for m in (1, 2, 2.5, 5, 10)
        if m * magnitude >= raw and not (whole and (m * magnitude) % 1)
    )
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600)


def _time_ticks(low: float, high: float) -> list[float]:
    """Ticks at round seconds/minutes/hours inside [low, high], at most 7 of them."""
    span = max(high - low, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= 6), 43200 * math.ceil(span / 43200 / 6))
    first = math.ceil(low / step) * step
    return [float(first + i * step) for i in range(int((high - first) // step) + 1)]


def _chart(
    chart_id: str,
    title: str,
    lines: Sequence[_Line],
    *,
    x_format: Callable[[float], str],
    y_format: Callable[[float, float], str],
    x_ticks: Sequence[float] | None = None,
    gap: float | None = None,
    step: bool = False,
    whole: bool = False,
    y_top: float | None = None,
) -> Markup:
    """A line chart as a <figure> holding an inline <svg id=chart_id>; `whole`: the y axis
    counts things (ticks at whole numbers); `y_top`: a fixed top of the y axis (100 for a
    percentage), else the largest value's."""
    caption = f"<figcaption>{escape(title)}</figcaption>"
    drawn = [line for line in lines if line.points]
    if not drawn:
        svg = (
            f'<svg id="{escape(chart_id)}" class="chart empty" viewBox="0 0 {_W} 60" role="img">'
            f"<title>{escape(title)}: no samples</title>"
            f'<text x="{_W / 2}" y="34" text-anchor="middle">no samples</text></svg>'
        )
        return Markup(f'<figure class="chart">{caption}{svg}</figure>')
    xs = [x for line in drawn for x, _ in line.points]
    ys = [y for line in drawn for _, y in line.points]
    x_low, x_high = min(0.0, *xs), max(xs)
    x_grid = list(x_ticks) if x_ticks is not None else _time_ticks(x_low, x_high)
    y_grid = _nice_ticks(0.0, max(ys) if y_top is None else y_top, whole=whole)
    x_low, x_high = min(x_low, *x_grid), max(x_high, *x_grid)
    y_high = y_grid[-1]
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + (x - x_low) / ((x_high - x_low) or 1) * plot_w

    def sy(y: float) -> float:
        return _TOP + plot_h - y / (y_high or 1) * plot_h

    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {_W} {_H}" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    for y in y_grid:
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{sy(y):.1f}" '
            f'y2="{sy(y):.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(y, y_grid[-1]))}</text>"
        )
    for x in x_grid:
        parts.append(
            f'<text class="tick" x="{sx(x):.1f}" y="{_H - _BOTTOM + 18}" text-anchor="middle">'
            f"{escape(x_format(x))}</text>"
        )
    for line in drawn:
        dash = _stroke(line)
        for segment in _segments(line.points, None if line.joined else gap):
            coords = _step(segment) if step else segment
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in coords)
            parts.append(
                f'<polyline fill="none" stroke="{line.color}"{dash} '
                f'points="{path}"><title>{escape(line.label)}</title></polyline>'
            )
            if len(segment) == 1:  # a lone point draws no line; show a dot
                x, y = segment[0]
                parts.append(
                    f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{line.color}"/>'
                )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + plot_h}" '
        f'y2="{_TOP + plot_h}"/></svg>'
    )
    # Each key draws its line's own stroke, so a dashed or pale line is told apart in it too.
    legend = "".join(
        f'<span class="key"><svg width="22" height="8" aria-hidden="true"><line x1="1" x2="21" '
        f'y1="4" y2="4" stroke="{line.color}"{_stroke(line)}/></svg>{escape(line.label)}</span>'
        for line in drawn
    )
    legend_html = f'<div class="legend">{legend}</div>'
    figure = f'<figure class="chart">{caption}{"".join(parts)}{legend_html}</figure>'
    return Markup(figure)  # every text in it went through html.escape


def _stroke(line: _Line) -> str:
    """The stroke attributes of a line (after its colour)."""
    attributes = f' stroke-width="{line.width:g}"'
    if line.dash:
        attributes += f' stroke-dasharray="{line.dash}"'
    if line.opacity < 1:
        attributes += f' stroke-opacity="{line.opacity:g}"'
    return attributes


def _segments(
    points: Sequence[tuple[float, float]], gap: float | None
) -> Iterable[list[tuple[float, float]]]:
    """Split where consecutive points are further apart than `gap` (no data in between)."""
    current: list[tuple[float, float]] = []
    for point in points:
        if current and gap is not None and point[0] - current[-1][0] > gap * 1.5:
            yield current
            current = []
        current.append(point)
    if current:
        yield current


def _step(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for x, y in points:
        if out:
            out.append((x, out[-1][1]))
        out.append((x, y))
    return out


# --------------------------------------------------------------------------- page

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
:root { color-scheme: light dark; --fg:#1f2937; --muted:#6b7280; --bg:#f8fafc; --panel:#fff;
  --line:#e5e7eb; --ok:#15803d; --bad:#b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg:#e5e7eb; --muted:#9ca3af; --bg:#0f172a;
  --panel:#111827; --line:#374151; --ok:#4ade80; --bad:#f87171; } }
* { box-sizing: border-box; }
body { margin:0; padding:24px; background:var(--bg); color:var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header h1 { margin:0 0 4px; font-size:22px; }
h2 { font-size:16px; margin:28px 0 10px; }
.meta, .muted { color:var(--muted); }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin-top:16px; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:8px;
  padding:10px 16px; min-width:140px; }
.card .value { font-size:22px; font-weight:600; font-variant-numeric:tabular-nums; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card.pass .value { color:var(--ok); } .card.fail .value, .card.bad .value { color:var(--bad); }
table.data { border-collapse:collapse; background:var(--panel); border:1px solid var(--line);
  border-radius:8px; overflow:hidden; }
table.data th, table.data td { padding:6px 12px; border-bottom:1px solid var(--line);
  text-align:left; }
table.data thead th { font-size:12px; color:var(--muted); text-transform:uppercase; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.none { color:var(--muted); }
tr.bad th { color:var(--bad); } tr.ok th { color:var(--ok); } tr.muted th { color:var(--muted); }
.badge { font-weight:700; font-size:12px; padding:2px 8px; border-radius:999px; color:#fff; }
.badge.pass { background:var(--ok); } .badge.fail { background:var(--bad); }
.rp-job-stats > * + * { margin-top:16px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(460px, 1fr)); gap:16px; }
figure.chart { margin:0; background:var(--panel); border:1px solid var(--line);
  border-radius:8px; padding:10px 12px; }
figcaption { font-weight:600; margin-bottom:4px; }
svg.chart { width:100%; height:auto; display:block; }
svg .grid { stroke:var(--line); } svg .axis { stroke:var(--muted); }
svg text { fill:var(--muted); font-size:11px; }
.legend { display:flex; gap:14px; flex-wrap:wrap; font-size:12px; color:var(--muted); }
.legend svg { margin-right:5px; vertical-align:middle; }
"""


def _page_args(title: str, *, refresh_s: int | None = None) -> dict[str, Any]:
    return {"title": title, "csp": Markup(_CSP), "style": Markup(_STYLE), "refresh_s": refresh_s}


def page(title: str, body: str) -> str:
    """A whole self-contained document around `body` (escaped HTML) in this report's style:
    for other reports (the simulation sweep) that draw their own sections."""
    return (
        templates()
        .from_string('{% extends "page.html.j2" %}{% block body %}{{ body }}{% endblock %}')
        .render(body=Markup(body), **_page_args(title))  # `body` was escaped by its caller
    )
