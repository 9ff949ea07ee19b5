"""PNG plots for reports, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eval.metrics import ReliabilityBin
from eval.records import METHODS
from eval.schema import Accuracy


def _save(fig: Figure, path: Path) -> None:
    # An explicit Agg canvas: works headless and leaves any pyplot backend untouched.
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def plot_reliability(
    bins: Sequence[ReliabilityBin], path: Path, *, ece: float | None, n: int
) -> None:
    """Reliability diagram: per-bin accuracy against mean confidence, with the diagonal."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    filled = [b for b in bins if b.count and b.accuracy is not None]
    width = bins[0].upper - bins[0].lower if bins else 0.1
    ax.bar(
        [b.lower for b in filled],
        [b.accuracy or 0.0 for b in filled],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot(
        [b.mean_confidence or 0.0 for b in filled],
        [b.accuracy or 0.0 for b in filled],
        marker="o",
        color="black",
        label="(mean confidence, accuracy)",
    )
    for b in filled:
        ax.annotate(
            str(b.count), (b.lower + width / 2, b.accuracy or 0.0), ha="center", va="bottom"
        )
    ece_text = "-" if ece is None else f"{ece:.3f}"
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="verdict confidence", ylabel="accuracy")
    ax.set_title(f"Reliability (ECE {ece_text}, n={n})")
    ax.legend(loc="upper left")
    _save(fig, path)


def plot_juror_accuracy(accuracy: Accuracy, path: Path) -> None:
    """Bar chart of each juror's round-1 and final accuracy, with verdict methods as lines."""
    names = list(accuracy.jurors)
    fig = Figure(figsize=(max(5.0, 1.2 * len(names) + 3), 4))
    ax = fig.add_subplot()
    xs = list(range(len(names)))
    for offset, which in ((-0.2, "round1"), (0.2, "final")):
        values = [getattr(accuracy.jurors[n], which).value or 0.0 for n in names]
        ax.bar([x + offset for x in xs], values, width=0.4, label=f"juror {which}")
    styles = [("-", "black"), ("--", "tab:red"), (":", "tab:green"), ("-.", "tab:purple")]
    for method, (style, colour) in zip(METHODS, styles, strict=True):
        value = accuracy.of(method).value
        if value is not None:
            ax.axhline(value, linestyle=style, color=colour, linewidth=1.5, label=method)
    ax.set_xticks(xs, names, rotation=20, ha="right")
    ax.set(ylim=(0, 1.05), ylabel="accuracy", title="Accuracy by juror and by verdict method")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    _save(fig, path)
