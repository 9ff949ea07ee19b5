"""PNG plots for reports, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Honest about n: evaluation runs have a handful to a few hundred items, so every accuracy bar
carries its Wilson 95% interval as an error bar and its n, and every reliability bin its count.
The ``*_figure`` functions build the figure (what the tests read); ``plot_*`` save it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eval.metrics import Proportion, ReliabilityBin, proportion
from eval.schema import Accuracy

ERROR_BAR = {"ecolor": "black", "capsize": 3, "elinewidth": 1}


def _save(fig: Figure, path: Path) -> None:
    # An explicit Agg canvas: works headless and leaves any pyplot backend untouched.
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def error_bar(share: Proportion) -> tuple[float, float]:
    """Return the distances from a share down to its interval's low end and up to its high end."""
    if share.value is None or share.low is None or share.high is None:
        return (0.0, 0.0)
    # Clamped: at 0/n or n/n the interval's end equals the share up to rounding.
    return (max(share.value - share.low, 0.0), max(share.high - share.value, 0.0))


def bin_accuracy(bin_: ReliabilityBin) -> Proportion:
    """Return a bin's accuracy as a share of its count, with its Wilson interval."""
    successes = round((bin_.accuracy or 0.0) * bin_.count)
    return proportion(successes, bin_.count)


def _bars(ax: Axes, xs: Sequence[float], shares: Sequence[Proportion], **style: object) -> None:
    """Draw accuracy bars with Wilson error bars and each bar's n above its interval."""
    values = [share.value or 0.0 for share in shares]
    below, above = zip(*(error_bar(share) for share in shares), strict=True) if shares else ((), ())
    ax.bar(xs, values, yerr=[list(below), list(above)], error_kw=ERROR_BAR, **style)  # type: ignore[arg-type]
    for x, share, up in zip(xs, shares, above, strict=True):
        ax.annotate(
            f"n={share.n}",
            (x, (share.value or 0.0) + up),
            ha="center",
            va="bottom",
            fontsize="x-small",
        )


def reliability_figure(bins: Sequence[ReliabilityBin], *, ece: float | None, n: int) -> Figure:
    """Reliability diagram: per-bin accuracy (Wilson bars) against confidence, with counts."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    filled = [b for b in bins if b.count and b.accuracy is not None]
    width = bins[0].upper - bins[0].lower if bins else 0.1
    _bars(
        ax,
        [b.lower + width / 2 for b in filled],
        [bin_accuracy(b) for b in filled],
        width=width,
        edgecolor="black",
        alpha=0.7,
        label="accuracy (95% Wilson interval)",
    )
    ax.plot(
        [b.mean_confidence or 0.0 for b in filled],
        [b.accuracy or 0.0 for b in filled],
        marker="o",
        color="black",
        label="(mean confidence, accuracy)",
    )
    ece_text = "-" if ece is None else f"{ece:.3f}"
    ax.set(xlim=(0, 1), ylim=(0, 1.12), xlabel="verdict confidence", ylabel="accuracy")
    ax.set_title(f"Reliability (ECE {ece_text}, n={n})")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_reliability(
    bins: Sequence[ReliabilityBin], path: Path, *, ece: float | None, n: int
) -> None:
    """Save the reliability diagram."""
    _save(reliability_figure(bins, ece=ece, n=n), path)


def juror_accuracy_figure(accuracy: Accuracy) -> Figure:
    """Each juror's round-1 and final accuracy, then each verdict method's, all with intervals."""
    names = list(accuracy.jurors)
    methods = accuracy.methods()
    fig = Figure(figsize=(max(6.0, 0.9 * (len(names) + len(methods)) + 3), 4.5))
    ax = fig.add_subplot()
    xs = [float(x) for x in range(len(names))]
    for offset, which in ((-0.2, "round1"), (0.2, "final")):
        shares = [getattr(accuracy.jurors[name], which) for name in names]
        _bars(ax, [x + offset for x in xs], shares, width=0.4, label=f"juror {which}")
    method_xs = [len(names) + 0.5 + i for i in range(len(methods))]
    _bars(
        ax,
        method_xs,
        [accuracy.of(method) for method in methods],
        width=0.6,
        color="tab:grey",
        label="verdict method",
    )
    ax.set_xticks([*xs, *method_xs], [*names, *methods], rotation=25, ha="right")
    ax.set(ylim=(0, 1.15), ylabel="accuracy (95% Wilson interval)")
    ax.set_title("Accuracy by juror and by verdict method")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def plot_juror_accuracy(accuracy: Accuracy, path: Path) -> None:
    """Save the accuracy chart."""
    _save(juror_accuracy_figure(accuracy), path)
