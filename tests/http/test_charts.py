"""The SVG charts: well-formed, escaped, described in words, and placed where the numbers say."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.http.charts import (
    IntervalRow,
    PairRow,
    Point,
    Series,
    interval_chart,
    line_chart,
    paired_bars,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script> & co"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # raises on anything that is not well-formed XML


def test_an_interval_chart_is_escaped_described_and_to_scale() -> None:
    svg = _parse(
        interval_chart(
            "Accuracy",
            [IntervalRow(HOSTILE, 0.5, 0.25, 0.75, 12), IntervalRow("b", None, None, None, 0)],
            desc="What it shows.",
        )
    )
    assert svg.get("role") == "img"
    assert svg.findtext(f"{SVG}title") == "Accuracy"
    assert svg.findtext(f"{SVG}desc") == "What it shows."
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert HOSTILE in texts  # shown as text, never as markup
    assert {"n=12", "n=0"} <= set(texts)
    [interval] = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "interval"]
    [dot] = svg.iter(f"{SVG}circle")
    x1, x2, cx = float(interval.get("x1", 0)), float(interval.get("x2", 0)), float(dot.get("cx", 0))
    assert x1 < cx < x2
    assert abs((cx - x1) - (x2 - cx)) < 0.2  # 0.5 sits halfway between 0.25 and 0.75


def test_paired_bars_scale_to_the_largest_value() -> None:
    svg = _parse(paired_bars("W", [PairRow("a", 1.0, 2.0)], names=("active", "proposed"), desc="d"))
    widths = [float(r.get("width", 0)) for r in svg.iter(f"{SVG}rect") if r.get("y") != "10"]
    bars = widths[-2:]
    assert bars[1] == 2 * bars[0]


def test_a_line_chart_draws_every_point_with_its_count() -> None:
    series = [
        Series("before", [Point(0.1, 0.2, 0.1, 0.4, 5), Point(0.9, 0.8, 0.6, 0.9, 7)]),
        Series("after", [Point(0.5, None)]),
    ]
    svg = _parse(line_chart("R", series, desc="d", x_labels=[(0, "0"), (1, "1")], diagonal=True))
    assert len(list(svg.iter(f"{SVG}circle"))) == 2  # a point without a value is not drawn
    assert {"5", "7"} <= {t.text for t in svg.iter(f"{SVG}text")}
    assert len(list(svg.iter(f"{SVG}polyline"))) == 1
