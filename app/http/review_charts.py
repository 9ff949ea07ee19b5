"""The review pages' charts, from a proposal's decision summary and the record (``charts``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from app.http.charts import (
    IntervalRow,
    PairRow,
    Point,
    Series,
    interval_chart,
    line_chart,
    paired_bars,
)
from app.trust.decision import DecisionSummary, Share
from app.trust.timeline import VersionWeeks


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart and its text alternative: a table of the numbers it draws."""

    svg: Markup
    columns: list[str]
    rows: list[list[str]]


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def juror_accuracy(summary: DecisionSummary) -> Chart | None:
    """Each juror's final accuracy per category with its 95% credible interval and n."""
    rows = [
        (category.category, cell)
        for category in summary.categories
        for cell in category.cells
        if cell.mean is not None
    ]
    if not rows:
        return None
    svg = interval_chart(
        "Juror accuracy by category",
        [
            IntervalRow(f"{c} · {cell.juror}", cell.mean, cell.low, cell.high, cell.n)
            for c, cell in rows
        ],
        desc="Final-position accuracy of each juror in each category: the dot is the posterior "
        "mean, the bar its 95% credible interval, n the verdicts with an outcome.",
    )
    table = [[c, cell.juror, str(cell.n), cell.accuracy] for c, cell in rows]
    return Chart(svg, ["Category", "Juror", "n", "Accuracy [95% interval]"], table)


def weights(summary: DecisionSummary) -> Chart | None:
    """Each juror's active and proposed weight per category."""
    rows = [
        (category.category, cell)
        for category in summary.categories
        for cell in category.cells
        if cell.changed or cell.active or cell.proposed
    ]
    if not rows:
        return None
    svg = paired_bars(
        "Active and proposed weights",
        [PairRow(f"{c} · {cell.juror}", cell.active, cell.proposed) for c, cell in rows],
        names=("active", "proposed"),
        desc="For each juror and category, the weight in force (first bar) and the proposed "
        "one (second bar); the numbers at the right read active → proposed.",
    )
    table = [[c, cell.juror, _num(cell.active), _num(cell.proposed)] for c, cell in rows]
    return Chart(svg, ["Category", "Juror", "Active", "Proposed"], table)


def _bins(stored: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Share]]:
    return [(b, Share.of(int(b["hits"]), int(b["n"]))) for b in stored if int(b.get("n", 0))]


def reliability(evidence: Mapping[str, Any]) -> Chart | None:
    """The reliability diagram of the verdict confidence under the active and proposed maps."""
    stored = evidence.get("reliability")
    if not isinstance(stored, Mapping):
        return None
    series, table = [], []
    for which in ("active", "proposed"):
        points = []
        for raw, share in _bins(stored.get(which) or []):
            x = raw.get("mean_confidence") or (raw["lower"] + raw["upper"]) / 2
            points.append(Point(x, share.value, share.low, share.high, share.n))
            bin_ = f"{raw['lower']:.1f} to {raw['upper']:.1f}"
            table.append([which, bin_, str(share.n), _num(x, 2), share.text()])
        series.append(Series(f"{which} calibration", points))
    svg = line_chart(
        "Reliability before and after",
        series,
        desc="Observed accuracy against stated confidence, in ten confidence bins, under the "
        "active and the proposed calibration: on the diagonal is perfectly calibrated. Bars "
        "are 95% Wilson intervals; the number by each dot is the bin's count.",
        x_labels=[(t, f"{t:g}") for t in (0, 0.25, 0.5, 0.75, 1)],
        diagonal=True,
    )
    return Chart(svg, ["Under", "Confidence bin", "n", "Mean confidence", "Accuracy"], table)


def accuracy_over_time(history: Sequence[VersionWeeks]) -> Chart | None:
    """The verdicts' weekly accuracy under each approved version (and the neutral weights)."""
    weeks = sorted({week.start for line in history for week in line.weeks})
    if not weeks:
        return None
    # Weeks spread over the width; a single week sits in the middle.
    span = float(len(weeks) - 1)
    index = {start: (i if span else 0.5) for i, start in enumerate(weeks)}
    span = span or 1.0
    series, table = [], []
    for line in history:
        name = "neutral" if line.version is None else f"version {line.version}"
        points = [
            Point(
                index[w.start] / span,
                w.accuracy.value,
                w.accuracy.low,
                w.accuracy.high,
                w.accuracy.n,
            )
            for w in line.weeks
        ]
        series.append(Series(name, points))
        table += [
            [name, f"{w.start:%Y-%m-%d}", str(w.accuracy.n), w.accuracy.text()] for w in line.weeks
        ]
    step = max(1, len(weeks) // 8)
    labels = [(index[w] / span, f"{w:%m-%d}") for w in weeks[::step]]
    svg = line_chart(
        "Verdict accuracy by week",
        series,
        desc="Share of verdicts whose answer matched the recorded outcome, by the week they "
        "were decided, under the weights version they used; bars are 95% Wilson intervals, "
        "the number by each dot is how many verdicts with outcomes that week.",
        x_labels=labels,
    )
    return Chart(svg, ["Weights", "Week of", "n", "Accuracy [95% interval]"], table)
