"""Small SVG charts drawn on the server: no script, no plotting library, text alternatives built in.

Each chart is an inline ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in
words what it shows, followed on the page by a table of the same numbers (the template's job).
Every text is escaped here; the result is ``Markup`` so that the template does not escape it
again. Three shapes cover the pages:

    interval_chart     a dot and its interval per row (accuracy with n), on [0, 1]
    paired_bars        two bars per row (active against proposed weight)
    line_chart         series of (x label, share, interval) points: reliability, weekly accuracy
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

WIDTH = 590
ROW = 20
LABEL_WIDTH = 180
PAD = 12
PALETTE = ("#0b5cad", "#c2571a", "#1f7a3a", "#7a3aa3", "#a3281c", "#4a525b")


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One estimate: its label, value, interval and how many observations back it."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True, slots=True)
class PairRow:
    """Two values to compare on one row, e.g. the active and the proposed weight."""

    label: str
    first: float
    second: float


@dataclass(frozen=True, slots=True)
class Point:
    """A point of a line chart: where on x (0..1 or an index), its share, interval and n."""

    x: float
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


@dataclass(frozen=True, slots=True)
class Series:
    """A named line of points."""

    name: str
    points: Sequence[Point] = field(default_factory=tuple)


def _svg(title: str, desc: str, height: int, body: Sequence[str]) -> Markup:
    slug = "chart-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40]
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" aria-labelledby="{slug}-t {slug}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{slug}-t">{escape(title)}</title>',
        f'<desc id="{slug}-d">{escape(desc)}</desc>',
        *body,
        "</svg>",
    ]
    # Every text above was escaped: the parts are markup.
    return Markup("\n".join(parts))


def _x(value: float, *, left: float, width: float, lo: float = 0.0, hi: float = 1.0) -> float:
    span = hi - lo or 1.0
    return left + (min(max(value, lo), hi) - lo) / span * width


def _axis(
    left: float, width: float, top: float, bottom: float, ticks: Sequence[float]
) -> list[str]:
    """Draw vertical grid lines and their labels along the bottom, for values in [0, 1]."""
    body = []
    for tick in ticks:
        x = _x(tick, left=left, width=width)
        body.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>')
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 14}">{tick:g}</text>')
    return body


def interval_chart(title: str, rows: Sequence[IntervalRow], *, desc: str) -> Markup:
    """Draw one dot per row with its interval as a bar and its n at the right, on [0, 1]."""
    left, width = LABEL_WIDTH, WIDTH - LABEL_WIDTH - 70
    height = PAD * 2 + ROW * len(rows) + 20
    body = _axis(left, width, PAD, PAD + ROW * len(rows), (0, 0.25, 0.5, 0.75, 1))
    for i, row in enumerate(rows):
        y = PAD + ROW * i + ROW / 2
        body.append(
            f'<text class="label" x="{left - 8}" y="{y + 4:.1f}">{escape(row.label)}</text>'
        )
        if row.low is not None and row.high is not None:
            x1, x2 = _x(row.low, left=left, width=width), _x(row.high, left=left, width=width)
            body.append(f'<line class="interval" x1="{x1:.1f}" y1="{y}" x2="{x2:.1f}" y2="{y}"/>')
        if row.value is not None:
            cx = _x(row.value, left=left, width=width)
            body.append(f'<circle class="dot" cx="{cx:.1f}" cy="{y}" r="4"/>')
        body.append(f'<text class="count" x="{left + width + 8}" y="{y + 4:.1f}">n={row.n}</text>')
    return _svg(title, desc, height, body)


def paired_bars(
    title: str, rows: Sequence[PairRow], *, names: tuple[str, str], desc: str
) -> Markup:
    """Draw two bars per row (``names`` says which is which), scaled to the largest value."""
    left, width = LABEL_WIDTH, WIDTH - LABEL_WIDTH - 84
    top = PAD + 16
    height = top + ROW * len(rows) + PAD
    largest = max([1e-9, *(max(r.first, r.second) for r in rows)])
    body = [
        f'<rect class="bar s0" x="{left}" y="{PAD - 2}" width="10" height="8"/>',
        f'<text class="legend" x="{left + 14}" y="{PAD + 6}">{escape(names[0])}</text>',
        f'<rect class="bar s1" x="{left + 130}" y="{PAD - 2}" width="10" height="8"/>',
        f'<text class="legend" x="{left + 144}" y="{PAD + 6}">{escape(names[1])}</text>',
    ]
    for i, row in enumerate(rows):
        y = top + ROW * i
        body.append(f'<text class="label" x="{left - 8}" y="{y + 13}">{escape(row.label)}</text>')
        for j, value in enumerate((row.first, row.second)):
            w = max(value, 0.0) / largest * width
            top_y = y + 2 + 8 * j
            body.append(
                f'<rect class="bar s{j}" x="{left}" y="{top_y}" width="{w:.1f}" height="7"/>'
            )
        body.append(
            f'<text class="count" x="{left + width + 6}" y="{y + 13}">'
            f"{row.first:.2f}→{row.second:.2f}</text>"
        )
    return _svg(title, desc, height, body)


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    desc: str,
    x_labels: Sequence[tuple[float, str]],
    x_range: tuple[float, float] = (0.0, 1.0),
    diagonal: bool = False,
) -> Markup:
    """Draw each series as dots joined by a line, with interval whiskers and n beside each dot."""
    left, right, top, plot_h = 40, WIDTH - 20, PAD + 18, 200
    width, bottom = right - left, PAD + 18 + 200
    lo, hi = x_range
    body = []
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = bottom - tick * plot_h
        body.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        body.append(f'<text class="label" x="{left - 4}" y="{y + 4:.1f}">{tick:g}</text>')
    for value, text in x_labels:
        x = _x(value, left=left, width=width, lo=lo, hi=hi)
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 14}">{escape(text)}</text>')
    if diagonal:
        body.append(f'<line class="diagonal" x1="{left}" y1="{bottom}" x2="{right}" y2="{top}"/>')
    for s, line in enumerate(series):
        colour = f"s{s % len(PALETTE)}"
        legend_x = left + 150 * s
        body.append(
            f'<rect class="bar {colour}" x="{legend_x}" y="{PAD - 4}" width="10" height="8"/>'
        )
        body.append(
            f'<text class="legend" x="{legend_x + 14}" y="{PAD + 4}">{escape(line.name)}</text>'
        )
        drawn = [p for p in line.points if p.value is not None]
        coords = [
            (_x(p.x, left=left, width=width, lo=lo, hi=hi), bottom - (p.value or 0.0) * plot_h)
            for p in drawn
        ]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            body.append(f'<polyline class="line {colour}" points="{path}"/>')
        for point, (x, y) in zip(drawn, coords, strict=True):
            if point.low is not None and point.high is not None:
                y1, y2 = bottom - point.low * plot_h, bottom - point.high * plot_h
                body.append(
                    f'<line class="interval {colour}" x1="{x:.1f}" y1="{y1:.1f}" '
                    f'x2="{x:.1f}" y2="{y2:.1f}"/>'
                )
            body.append(f'<circle class="dot {colour}" cx="{x:.1f}" cy="{y:.1f}" r="3.5"/>')
            body.append(f'<text class="count" x="{x + 5:.1f}" y="{y - 5:.1f}">{point.n}</text>')
    return _svg(title, desc, bottom + 24, body)
