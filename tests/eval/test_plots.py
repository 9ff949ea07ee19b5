"""The report's plots show their uncertainty: Wilson error bars and n on every bar."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from app.trust.scoring import wilson_interval
from eval.metrics import ReliabilityBin, proportion
from eval.plots import (
    error_bar,
    juror_accuracy_figure,
    plot_juror_accuracy,
    reliability_figure,
)
from eval.schema import Accuracy, JurorAccuracy


def _intervals(fig: Figure) -> list[tuple[float, float]]:
    """Return (low, high) of every error bar drawn on the figure, bar by bar."""
    found = []
    bars = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert bars
    for container in bars:
        assert container.errorbar is not None, "a bar without an error bar"
        lines = container.errorbar.lines[2][0]
        found += [(float(seg[0][1]), float(seg[1][1])) for seg in lines.get_segments()]
    return found


def _texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].texts]


def test_every_accuracy_bar_has_its_wilson_interval_and_n() -> None:
    accuracy = Accuracy(
        judge=proportion(3, 4),
        round1_majority=proportion(2, 4),
        final_majority=proportion(4, 4),
        weighted_vote=proportion(1, 4),
        jurors={
            "alpha": JurorAccuracy(round1=proportion(1, 4), final=proportion(3, 4)),
            "bravo": JurorAccuracy(round1=proportion(0, 4), final=proportion(2, 4)),
        },
    )
    fig = juror_accuracy_figure(accuracy)
    intervals = _intervals(fig)
    assert len(intervals) == 2 + 2 + 4  # round 1 and final of each juror, then the four methods
    # Round-1 bars first (alpha, bravo), then the final ones, then judge, round-1, final, weighted.
    expected = [(1, 4), (0, 4), (3, 4), (2, 4), (3, 4), (2, 4), (4, 4), (1, 4)]
    for (low, high), (successes, n) in zip(intervals, expected, strict=True):
        assert (low, high) == pytest.approx(wilson_interval(successes, n))
    assert _texts(fig).count("n=4") == 8


def test_reliability_bins_show_their_count_and_interval() -> None:
    bins = [
        ReliabilityBin(lower=0.5, upper=0.6, count=0, mean_confidence=None, accuracy=None),
        ReliabilityBin(lower=0.6, upper=0.7, count=5, mean_confidence=0.65, accuracy=0.4),
        ReliabilityBin(lower=0.9, upper=1.0, count=12, mean_confidence=0.95, accuracy=0.75),
    ]
    fig = reliability_figure(bins, ece=0.2, n=17)
    assert _intervals(fig) == [
        pytest.approx(wilson_interval(2, 5)),
        pytest.approx(wilson_interval(9, 12)),
    ]
    assert {"n=5", "n=12"} <= set(_texts(fig))
    assert "n=17" in fig.axes[0].get_title()


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    share = proportion(1, 2)
    accuracy = Accuracy(
        judge=share,
        round1_majority=share,
        final_majority=proportion(0, 0),
        weighted_vote=share,
        jurors={"alpha": JurorAccuracy(round1=share, final=share)},
    )
    path = tmp_path / "accuracy.png"
    plot_juror_accuracy(accuracy, path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_perfect_score_draws_without_a_negative_error_bar() -> None:
    for successes, n in ((3, 3), (0, 3), (7, 7), (840, 840)):
        low, high = error_bar(proportion(successes, n))
        assert low >= 0
        assert high >= 0
