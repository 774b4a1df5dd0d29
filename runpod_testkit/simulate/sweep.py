"""--sweep: one simulation per combination of setting values, in parallel processes.

A setting's value is one value, a list (`5,30,120`) or an inclusive integer range (`1..10`).
Every point runs the same arrivals and durations (drawn once from --seed), and each point's
model is seeded by --seed too, so a sweep gives the same rows whatever --jobs is.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from html import escape
from typing import Any

from runpod_testkit.simulate.engine import EndpointSettings, SimulationResult, simulate
from runpod_testkit.slo import Slo

__all__ = [
    "SWEEP_FIELDS",
    "SweepRow",
    "cheapest_meeting_slo",
    "parse_values",
    "run_sweep",
    "sweep_html",
    "sweep_settings",
    "sweep_table",
]

SWEEP_FIELDS: dict[str, Callable[[str], Any]] = {
    "workers_min": int,
    "workers_max": int,
    "cold_start_s": float,
    "idle_timeout_s": float,
    "scaler": str,
    "scaler_threshold": float,
    "execution_timeout_s": float,
}
"""EndpointSettings fields a sweep may vary, with the type of one value."""


def parse_values(option: str, text: str, kind: Callable[[str], Any]) -> list[Any]:
    """`A..B` (integers, inclusive), `X,Y,Z` or one value; ValueError naming `option`."""
    text = text.strip()
    if ".." in text and kind is not str:
        low_text, _, high_text = text.partition("..")
        try:
            low, high = int(low_text), int(high_text)
        except ValueError:
            raise ValueError(f"{option} {text!r}: a range is A..B with whole numbers") from None
        if high < low:
            raise ValueError(f"{option} {text!r}: empty range (B is below A)")
        return [kind(str(value)) for value in range(low, high + 1)]
    parts = [part.strip() for part in text.split(",")]
    if not text or any(not part for part in parts):
        raise ValueError(f"{option} {text!r}: empty value in the list")
    values: list[Any] = []
    for part in parts:
        try:
            value = kind(part)
        except ValueError:
            raise ValueError(f"{option} {part!r}: not a number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{option} {part!r}: not a finite number")
        values.append(value)
    return values


def sweep_settings(base: EndpointSettings, values: dict[str, list[Any]]) -> list[EndpointSettings]:
    """Every combination of `values` (field -> its values) over `base`; ValueError for a
    combination the model refuses (workers-max below workers-min, say)."""
    names = list(values)
    return [
        replace(base, **dict(zip(names, combination, strict=True)))
        for combination in itertools.product(*(values[name] for name in names))
    ]


@dataclass(frozen=True)
class SweepRow:
    settings: EndpointSettings
    percentiles: dict[str, dict[str, int | None]]
    """delayTime and e2e: p50, p95, p99 (ms)."""
    jobs: int
    completed: int
    cold_starts: int
    worker_seconds: float
    billed_seconds: int
    dollars: float | None
    slo_attainment: float | None

    @classmethod
    def of(cls, result: SimulationResult) -> SweepRow:
        """From a simulation run with `tally_only`."""
        tally = result.tally
        assert tally is not None
        percentiles = {
            metric: {
                label: tally.percentile(metric, percent)
                for label, percent in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))
            }
            for metric in ("delayTime", "e2e")
        }
        return cls(
            settings=result.settings,
            percentiles=percentiles,
            jobs=tally.ended,
            completed=tally.completed,
            cold_starts=result.cold_starts,
            worker_seconds=result.worker_seconds,
            billed_seconds=result.billed_seconds,
            dollars=result.dollars,
            slo_attainment=tally.slo_attainment,
        )

    def meets(self, target: float) -> bool:
        return self.slo_attainment is not None and self.slo_attainment >= target

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "delayTime": self.percentiles["delayTime"],
            "e2e": self.percentiles["e2e"],
            "jobs": self.jobs,
            "completed": self.completed,
            "coldStarts": self.cold_starts,
            "workerSeconds": round(self.worker_seconds, 3),
            "billedSeconds": self.billed_seconds,
            "dollars": None if self.dollars is None else round(self.dollars, 6),
            "sloAttainment": self.slo_attainment,
        }


@dataclass(frozen=True)
class _Point:
    arrivals: Sequence[float]
    durations: Sequence[float]
    duration_s: float
    seed: int
    slo_rules: tuple[str, ...]
    price_per_s: float | None


_shared: dict[str, _Point] = {}
"""In a sweep's worker process: the point every task of the sweep runs (see `run_sweep`)."""


def _start_sweep_process(point: _Point) -> None:
    """A sweep's worker process: keep the point its tasks run, and collect garbage rarely.
    The process only runs simulations, whose jobs and workers are freed by reference counts
    as they end (the emulator's server tunes its collector the same way, for the same reason);
    with the default thresholds the collector took ~6% of a point's instructions."""
    _shared["point"] = point
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_shared_point(settings: EndpointSettings) -> SweepRow:
    return _run_point(_shared["point"], settings)


def _run_point(point: _Point, settings: EndpointSettings) -> SweepRow:
    result = simulate(
        point.arrivals,
        point.durations,
        settings,
        duration_s=point.duration_s,
        seed=point.seed,
        slo=Slo(point.slo_rules) if point.slo_rules else None,
        price_per_s=point.price_per_s,
        tally_only=True,
    )
    return SweepRow.of(result)


def run_sweep(
    arrivals: Sequence[float],
    durations: Sequence[float],
    settings: Sequence[EndpointSettings],
    *,
    duration_s: float,
    seed: int = 0,
    slo: Slo | None = None,
    price_per_s: float | None = None,
    jobs: int = 1,
) -> list[SweepRow]:
    """One row per setting, in the order given; `jobs` > 1 runs them in that many processes."""
    point = _Point(
        list(arrivals),
        list(durations),
        duration_s,
        seed,
        tuple(rule.rule for rule in slo.rules) if slo else (),
        price_per_s,
    )
    if jobs <= 1 or len(settings) <= 1:
        return [_run_point(point, one) for one in settings]
    # The arrivals and durations go to each process once (its initializer), not with every
    # setting; one setting per task, so that a slow (saturated) point does not hold others back.
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(settings)), initializer=_start_sweep_process, initargs=(point,)
    ) as pool:
        return list(pool.map(_run_shared_point, settings))


def cheapest_meeting_slo(rows: Sequence[SweepRow], target: float) -> SweepRow | None:
    """The row with the fewest billed seconds whose SLO attainment reaches `target` (ties:
    the lower p95 e2e, then the earlier row); None when none does or there is no SLO."""
    meeting = [row for row in rows if row.meets(target)]
    if not meeting:
        return None
    return min(
        meeting,
        key=lambda row: (row.billed_seconds, row.percentiles["e2e"]["p95"] or 0),
    )


_COLUMNS = (
    "workersMin",
    "workersMax",
    "coldStartS",
    "idleTimeoutS",
    "scaler",
    "scalerThreshold",
)


def _setting_cells(row: SweepRow) -> list[str]:
    settings = row.settings.to_json()
    return [_shown(settings[name]) for name in _COLUMNS]


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _row_cells(row: SweepRow) -> list[str]:
    delay, e2e = row.percentiles["delayTime"], row.percentiles["e2e"]
    return [
        *_setting_cells(row),
        *(_shown(delay[p]) for p in ("p50", "p95", "p99")),
        *(_shown(e2e[p]) for p in ("p50", "p95", "p99")),
        str(row.cold_starts),
        f"{row.worker_seconds:.1f}",
        "-" if row.dollars is None else f"{row.dollars:.4f}",
        "-" if row.slo_attainment is None else f"{row.slo_attainment:.2%}",
    ]


_HEADER = [
    "min",
    "max",
    "cold_s",
    "idle_s",
    "scaler",
    "threshold",
    "delay_p50",
    "delay_p95",
    "delay_p99",
    "e2e_p50",
    "e2e_p95",
    "e2e_p99",
    "cold_starts",
    "worker_s",
    "dollars",
    "slo",
]


def sweep_table(rows: Sequence[SweepRow]) -> str:
    """The sweep as a plain-text table (ms for the percentiles)."""
    table = [_HEADER, *(_row_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADER))]
    return "\n".join(
        "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in table
    )


def describe(settings: EndpointSettings) -> str:
    """One line naming a setting, as the options spell it."""
    text = (
        f"--workers-min {settings.workers_min} --workers-max {settings.workers_max} "
        f"--cold-start-s {settings.cold_start_s:g} --idle-timeout-s {settings.idle_timeout_s:g} "
        f"--scaler {settings.scaler} --scaler-threshold {settings.scaler_threshold:g}"
    )
    if settings.execution_timeout_s is not None:
        text += f" --execution-timeout-s {settings.execution_timeout_s:g}"
    return text


def sweep_html(
    rows: Sequence[SweepRow], cheapest: SweepRow | None, *, title: str, banner: str
) -> str:
    """The sweep's report: the simulation banner, the cheapest setting, the table, and a
    chart of cost against p95 e2e (one dot per setting)."""
    from runpod_testkit.report import page

    head = "".join(f"<th>{escape(name)}</th>" for name in _HEADER)
    body_rows = []
    for row in rows:
        marked = ' class="ok"' if row is cheapest else ""
        cells = "".join(f'<td class="num">{escape(cell)}</td>' for cell in _row_cells(row))
        body_rows.append(f"<tr{marked}>{cells}</tr>")
    answer = (
        f"<p id='cheapest'>Cheapest setting meeting the SLO: <code>"
        f"{escape(describe(cheapest.settings))}</code></p>"
        if cheapest is not None
        else "<p id='cheapest'>No setting met the SLO (or no --slo was given).</p>"
    )
    parts = [
        f"<header><h1>{escape(title)}</h1></header>",
        f'<section id="simulation-banner"><p class="badge fail">SIMULATION</p> '
        f"<p>{escape(banner)}</p></section>",
        answer,
        '<section id="sweep"><h2>Settings</h2>',
        f'<table id="sweep-table" class="data"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body_rows)}</tbody></table></section>",
        '<section id="sweep-chart-section"><h2>Cost against p95 e2e</h2>',
        _cost_chart(rows, cheapest),
        "</section>",
    ]
    return page(title, "\n".join(parts))


_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 320, 70, 20, 16, 44


def _cost_chart(rows: Sequence[SweepRow], cheapest: SweepRow | None) -> str:
    """A hand-written SVG scatter: x the p95 e2e (s), y the cost (dollars, else billed
    worker-seconds); the cheapest setting meeting the SLO drawn larger."""
    priced = all(row.dollars is not None for row in rows)
    points = [
        (
            (row.percentiles["e2e"]["p95"] or 0) / 1000,
            float(row.dollars if priced and row.dollars is not None else row.billed_seconds),
            row,
        )
        for row in rows
    ]
    y_name = "dollars" if priced else "billed worker-seconds"
    if not points:
        return '<svg id="sweep-chart" class="chart empty" viewBox="0 0 720 60"></svg>'
    x_high = max(x for x, _, _ in points) or 1.0
    y_high = max(y for _, y, _ in points) or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + x / x_high * plot_w

    def sy(y: float) -> float:
        return _TOP + plot_h - y / y_high * plot_h

    parts = [
        f'<svg id="sweep-chart" class="chart" viewBox="0 0 {_W} {_H}" role="img">',
        f"<title>cost ({escape(y_name)}) against p95 e2e (s)</title>",
    ]
    for i in range(5):
        y = y_high * i / 4
        x = x_high * i / 4
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{sy(y):.1f}" '
            f'y2="{sy(y):.1f}"/><text class="tick" x="{_LEFT - 6}" y="{sy(y) + 4:.1f}" '
            f'text-anchor="end">{y:.4g}</text>'
            f'<text class="tick" x="{sx(x):.1f}" y="{_H - _BOTTOM + 18}" '
            f'text-anchor="middle">{x:.3g}</text>'
        )
    parts.append(
        f'<text class="tick" x="{_LEFT + plot_w / 2}" y="{_H - 6}" text-anchor="middle">'
        f"p95 e2e (s)</text>"
    )
    for x, y, row in points:
        best = row is cheapest
        color = "#16a34a" if best else ("#2563eb" if row.meets(0.0) else "#6b7280")
        parts.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{7 if best else 4}" '
            f'fill="{color}"><title>{escape(describe(row.settings))}: p95 e2e {x:.3g} s, '
            f"{escape(y_name)} {y:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return f'<figure class="chart">{"".join(parts)}</figure>'
