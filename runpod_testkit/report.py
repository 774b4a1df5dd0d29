"""A self-contained HTML report of job statistics, with inline SVG charts.

The file loads nothing: no scripts, fonts, stylesheets or images from anywhere (a
Content-Security-Policy in the page says so too), so it opens offline and can be attached
to a CI run. Every piece of text, including status and worker-state names that came from
the endpoint, goes through html.escape.

Stable element ids (tests and users rely on them):
  job-stats-table, job-outcomes, thresholds-table, stream-summary, chart-<metric>-time,
  chart-<metric>-dist, chart-jobs-time, chart-queue-time, chart-workers-time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from runpod_testkit.jobstats import (
    INTERRUPTED,
    METRICS,
    REPORTED_PERCENTILES,
    SUBMITTED,
    UNKNOWN_OUTCOME,
    JobStats,
)
from runpod_testkit.operations import JobStatus
from runpod_testkit.thresholds import ThresholdResult

__all__ = [
    "live_summary",
    "page",
    "render_html_report",
    "render_live_fragment",
    "render_live_page",
    "write_html_report",
]

CHART_METRICS = METRICS  # delayTime, ..., chunkGap, webhookDelay: over time, as a curve
# Windows per time chart: latency lines stay readable at ~200, per-window job rates need
# coarser windows to be more than noise; /health is sampled, not summed, so it keeps more.
METRIC_CHART_POINTS = 200
JOBS_CHART_POINTS = 100
HEALTH_CHART_POINTS = 600
_PALETTE = ("#2563eb", "#ea580c", "#dc2626", "#16a34a", "#7c3aed", "#0891b2", "#db2777", "#65a30d")
_METRIC_TITLES = {
    "delayTime": "delayTime (queue wait, server-reported)",
    "executionTime": "executionTime (server-reported)",
    "e2e": "end to end (submit to terminal state, client)",
    "ttfc": "time to first stream chunk (client)",
    "chunkGap": "gap between stream chunks (client)",
    "webhookDelay": "job end to webhook arrival (WebhookUser, client)",
}


def write_html_report(
    stats: JobStats,
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
    stats: JobStats,
    *,
    title: str = "Job statistics",
    thresholds: Sequence[ThresholdResult] = (),
    generated_at: datetime | None = None,
    warnings: Sequence[str] = (),
    sections: Sequence[str] = (),
) -> str:
    """The whole report as one HTML document; `warnings` (e.g. a worker lost in a distributed
    run) are listed first, in a section of their own. `sections`: more `<section>` elements,
    already escaped (SLO, cost, the comparison with a baseline), placed after the thresholds."""
    series = stats.series_json(max_points=METRIC_CHART_POINTS)
    jobs = stats.series_json(max_points=JOBS_CHART_POINTS)["jobs"]
    health = stats.series_json(max_points=HEALTH_CHART_POINTS)["health"]["points"]
    origin = _series_origin(series)
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S %Z")
    over_time = [
        _metric_time_chart(name, series["metrics"][name], origin) for name in CHART_METRICS
    ]
    curves = [_metric_distribution_chart(stats, name) for name in CHART_METRICS]
    body = [
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="meta">Generated {escape(when.strip())}{_run_window(series, origin)}</p>',
        "</header>",
        _warnings(warnings),
        _summary_cards(stats, thresholds),
        '<section id="thresholds"><h2>Thresholds</h2>',
        _thresholds_table(thresholds),
        "</section>",
        *sections,
        '<section id="percentiles"><h2>Latency percentiles (ms)</h2>',
        _percentile_table(stats),
        _stream_summary(stats),
        "</section>",
        '<section id="outcomes"><h2>Job outcomes</h2>',
        _outcomes_table(stats),
        "</section>",
        '<section id="requests"><h2>Throttling, errors, retries and pacing</h2>',
        _requests_table(stats),
        "</section>",
        '<section id="over-time"><h2>Over time</h2><div class="grid">',
        _jobs_chart(jobs, origin),
        _queue_chart(health, origin),
        _workers_chart(health, origin),
        *over_time,
        "</div></section>",
        '<section id="distributions"><h2>Distributions</h2><div class="grid">',
        *curves,
        "</div></section>",
    ]
    return _page(title, "\n".join(body))


def render_live_fragment(stats: JobStats, thresholds: Sequence[ThresholdResult] = ()) -> str:
    """An HTML fragment (no <html>/<head>) for a Locust web UI tab: tables and queue chart."""
    series = stats.series_json(max_points=HEALTH_CHART_POINTS)
    origin = _series_origin(series)
    parts = [
        '<div class="rp-job-stats">',
        _percentile_table(stats),
        _stream_summary(stats),
        _outcomes_table(stats),
        _requests_table(stats),
        _thresholds_table(thresholds) if thresholds else "",
        '<div class="grid">',
        _queue_chart(series["health"]["points"], origin),
        _workers_chart(series["health"]["points"], origin),
        "</div>",
        "</div>",
    ]
    return "\n".join(part for part in parts if part)


def render_live_page(
    stats: JobStats,
    thresholds: Sequence[ThresholdResult] = (),
    *,
    title: str = "Job statistics (live)",
    refresh_s: int = 3,
) -> str:
    """`render_live_fragment` as a whole page that reloads itself every `refresh_s` seconds
    (a page a Locust master serves while a run goes; it loads nothing else either)."""
    when = datetime.now(timezone.utc).strftime("%H:%M:%S UTC")
    body = (
        f"<header><h1>{escape(title)}</h1>"
        f'<p class="meta">As of {when}; reloads every {refresh_s} s</p></header>\n'
        f"{render_live_fragment(stats, thresholds)}"
    )
    return _page(title, body, refresh_s=refresh_s)


def live_summary(stats: JobStats) -> dict[str, Any]:
    """A JSON-able dict for a web UI tab: the --job-stats-json summary plus the latest health."""
    samples = stats.health_samples()
    return {
        **stats.to_json(),
        "failureRate": stats.failure_rate,
        "health": samples[-1].to_json() if samples else None,
    }


# --------------------------------------------------------------------------- tables


def _cell(value: object) -> str:
    if value is None:
        return '<td class="num none">&ndash;</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.1f}</td>'
    return f'<td class="num">{escape(str(value))}</td>'


def _percentile_table(stats: JobStats) -> str:
    labels = [label for label, _ in REPORTED_PERCENTILES]
    head = "".join(f"<th>{escape(h)}</th>" for h in ["metric", "count", "min", *labels])
    rows = []
    for name in METRICS:
        s = stats.summary(name)
        cells = [s.count, s.min, *(s.percentiles[label] for label in labels), s.max, s.mean]
        rows.append(f'<tr><th scope="row">{escape(name)}</th>{"".join(map(_cell, cells))}</tr>')
    return (
        '<table id="job-stats-table" class="data">'
        f"<thead><tr>{head}<th>max</th><th>mean</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


_OUTCOME_TITLES = {
    SUBMITTED: "jobs the endpoint accepted",
    INTERRUPTED: "in flight when the run stopped, and cancelled by it: not a failure",
    UNKNOWN_OUTCOME: "the submission got a 5xx or lost its connection: a job may exist; "
    "it was not resubmitted",
}
_REQUEST_ROWS = (
    ("throttled", "throttled (HTTP 429)", "bad"),
    ("serverError", "server error (HTTP 5xx)", "bad"),
    ("connectionError", "connection error", "bad"),
    ("refused", "refused (HTTP 401/403)", "bad"),
    ("retried", "retried", ""),
)


def _outcome_kind(name: str) -> str:
    """Row class: completed green, failures red, submitted plain, interrupted grey."""
    return {JobStatus.COMPLETED: "ok", SUBMITTED: "", INTERRUPTED: "muted"}.get(name, "bad")


def _outcomes_table(stats: JobStats) -> str:
    outcomes = stats.outcomes or {SUBMITTED: 0}
    rows = []
    for name, n in outcomes.items():
        hint = _OUTCOME_TITLES.get(name)
        title = f' title="{escape(hint)}"' if hint else ""
        rows.append(
            f'<tr class="{_outcome_kind(name)}"{title}><th scope="row">{escape(name)}</th>'
            f'<td class="num">{n}</td></tr>'
        )
    rate = stats.failure_rate
    note = " (interrupted jobs not counted)" if stats.interrupted else ""
    foot = (
        f'<tfoot><tr><th scope="row">failure rate{note}</th>'
        f'<td class="num">{rate:.2%}</td></tr></tfoot>'
        if rate is not None
        else ""
    )
    return (
        '<table id="job-outcomes" class="data narrow">'
        "<thead><tr><th>outcome</th><th>jobs</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody>{foot}</table>"
    )


def _requests_table(stats: JobStats) -> str:
    """Answers that were not contract failures but kept a request from its answer, the
    retries they caused, and what client pacing held back."""
    counts = stats.request_counts()
    rows = [
        f'<tr class="{kind if counts[key] else ""}"><th scope="row">{escape(label)}</th>'
        f'<td class="num">{counts[key]}</td></tr>'
        for key, label, kind in _REQUEST_ROWS
    ]
    pacing = stats.pacing_summary()
    rows.append(
        f'<tr><th scope="row">held back by pacing</th><td class="num">{pacing["held"]} '
        f"({pacing['waitS']:g} s)</td></tr>"
    )
    return (
        '<table id="request-counts" class="data narrow">'
        "<thead><tr><th>requests (not contract failures)</th><th>count</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _stream_summary(stats: JobStats) -> str:
    """One line on the streams (their gaps are the chunkGap row); nothing without streams."""
    if not stats.streams:
        return ""
    per_stream = stats.stream_summary()["chunksPerStream"]
    return (
        f'<p id="stream-summary" class="muted">Streams followed to the end: {stats.streams}, '
        f"carrying {stats.chunks} chunks ({per_stream:g} per stream); chunkGap is the time "
        "between chunk arrivals as the client saw them.</p>"
    )


def _warnings(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{escape(warning)}</li>" for warning in warnings)
    return f'<section id="warnings"><h2>Warnings</h2><ul>{items}</ul></section>'


def _thresholds_table(thresholds: Sequence[ThresholdResult]) -> str:
    if not thresholds:
        return '<p id="thresholds-table" class="muted">No thresholds were set.</p>'
    rows = []
    for result in thresholds:
        verdict = "PASS" if result.passed else "FAIL"
        value = "&ndash;" if result.value is None else escape(f"{result.value:g}")
        rows.append(
            f'<tr class="{verdict.lower()}"><td><span class="badge {verdict.lower()}">'
            f"{verdict}</span></td><td><code>{escape(result.rule)}</code></td>"
            f'<td class="num">{value}</td><td>{escape(result.message)}</td></tr>'
        )
    return (
        '<table id="thresholds-table" class="data">'
        "<thead><tr><th>result</th><th>rule</th><th>value</th><th>detail</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _summary_cards(stats: JobStats, thresholds: Sequence[ThresholdResult]) -> str:
    passed = sum(1 for r in thresholds if r.passed)
    rate = stats.failure_rate
    cards = [
        ("submitted", str(stats.submitted), ""),
        ("completed", str(stats.outcomes.get(JobStatus.COMPLETED, 0)), ""),
        ("failure rate", "n/a" if rate is None else f"{rate:.2%}", "bad" if rate else ""),
    ]
    if thresholds:
        verdict = "pass" if passed == len(thresholds) else "fail"
        cards.append(("thresholds passed", f"{passed} / {len(thresholds)}", verdict))
    items = "".join(
        f'<div class="card {kind}"><div class="value">{escape(value)}</div>'
        f'<div class="label">{escape(label)}</div></div>'
        for label, value, kind in cards
    )
    return f'<section id="summary" class="cards">{items}</section>'


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class _Line:
    label: str
    points: list[tuple[float, float]]
    color: str
    dashed: bool = False


def _series_origin(series: Mapping[str, Any]) -> float:
    """The earliest timestamp of any series: x = 0 on the time charts."""
    times = [p["t"] for m in series["metrics"].values() for p in m["points"]]
    times += [p["t"] for p in series["jobs"]["points"]]
    times += [p["t"] for p in series["health"]["points"]]
    return float(min(times)) if times else 0.0


def _run_window(series: Mapping[str, Any], origin: float) -> str:
    ends = [p["t"] + m["width"] for m in series["metrics"].values() for p in m["points"]]
    ends += [p["t"] + series["jobs"]["width"] for p in series["jobs"]["points"]]
    ends += [p["t"] for p in series["health"]["points"]]
    if not ends:
        return ""
    start = datetime.fromtimestamp(origin, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f" &middot; run from {escape(start)}, {escape(_clock(max(ends) - origin))} long"


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


def _metric_time_chart(name: str, data: Mapping[str, Any], origin: float) -> str:
    width = data["width"]
    stats = (("p50", 0, False), ("p95", 1, False), ("max", 2, True))
    lines = [
        _Line(
            label,
            [(p["t"] - origin + width / 2, p[label]) for p in data["points"]],
            _PALETTE[color],
            dashed,
        )
        for label, color, dashed in stats
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


def _percentile_axis(percent: float) -> float:
    """HDR-style x axis: log10(1 / (1 - p)), so 90% -> 1, 99% -> 2, 99.9% -> 3."""
    return math.log10(100 / (100 - percent)) if percent < 100 else 6.0


def _metric_distribution_chart(stats: JobStats, name: str) -> str:
    count = stats.count(name)
    # Enough resolution to be smooth, no further out than the samples allow (1 in count).
    top = min(5.0, math.log10(count)) if count > 1 else 0.0
    steps = [i / 20 for i in range(int(top * 20) + 1)]
    percents = [100 * (1 - 10**-x) for x in steps]
    values = stats.percentiles(name, percents)
    points = [(x, float(values[p])) for x, p in zip(steps, percents, strict=True) if p in values]
    if points and count > 1:
        summary_max = stats.summary(name).max
        points.append((top, float(summary_max if summary_max is not None else points[-1][1])))
    ticks = [(x, label) for x, label in _PERCENT_TICKS if x <= max(top, 1.0)]
    return _chart(
        f"chart-{name}-dist",
        f"{_METRIC_TITLES[name]}: value at percentile",
        [_Line(name, points, _PALETTE[0])],
        x_format=_percent_label,
        y_format=_ms,
        x_ticks=[x for x, _ in ticks],
        step=True,
    )


_PERCENT_TICKS = (
    (0.0, "0%"),
    (1.0, "90%"),
    (2.0, "99%"),
    (3.0, "99.9%"),
    (4.0, "99.99%"),
    (5.0, "99.999%"),
)


def _percent_label(x: float) -> str:
    return next((label for tick, label in _PERCENT_TICKS if abs(tick - x) < 1e-9), f"{x:g}")


def _jobs_chart(data: Mapping[str, Any], origin: float) -> str:
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


def _queue_chart(points: Sequence[Mapping[str, Any]], origin: float) -> str:
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


def _workers_chart(points: Sequence[Mapping[str, Any]], origin: float) -> str:
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
) -> str:
    """A line chart as a <figure> holding an inline <svg id=chart_id>; `whole`: the y axis
    counts things (ticks at whole numbers)."""
    caption = f"<figcaption>{escape(title)}</figcaption>"
    drawn = [line for line in lines if line.points]
    if not drawn:
        svg = (
            f'<svg id="{escape(chart_id)}" class="chart empty" viewBox="0 0 {_W} 60" role="img">'
            f"<title>{escape(title)}: no samples</title>"
            f'<text x="{_W / 2}" y="34" text-anchor="middle">no samples</text></svg>'
        )
        return f'<figure class="chart">{caption}{svg}</figure>'
    xs = [x for line in drawn for x, _ in line.points]
    ys = [y for line in drawn for _, y in line.points]
    x_low, x_high = min(0.0, *xs), max(xs)
    x_grid = list(x_ticks) if x_ticks is not None else _time_ticks(x_low, x_high)
    y_grid = _nice_ticks(0.0, max(ys), whole=whole)
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
        dash = ' stroke-dasharray="5 4"' if line.dashed else ""
        for segment in _segments(line.points, gap):
            coords = _step(segment) if step else segment
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in coords)
            parts.append(
                f'<polyline fill="none" stroke="{line.color}" stroke-width="2"{dash} '
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
    legend = "".join(
        f'<span><i style="background:{line.color}"></i>{escape(line.label)}</span>'
        for line in drawn
    )
    legend_html = f'<div class="legend">{legend}</div>'
    return f'<figure class="chart">{caption}{"".join(parts)}{legend_html}</figure>'


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
.legend i { display:inline-block; width:12px; height:3px; margin-right:5px;
  vertical-align:middle; }
"""


def _page(title: str, body: str, *, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">{refresh}'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def page(title: str, body: str) -> str:
    """A whole self-contained document around `body` (escaped HTML) in this report's style:
    for other reports (the simulation sweep) that draw their own sections."""
    return _page(title, body)
