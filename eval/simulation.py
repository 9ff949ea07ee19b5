"""Simulation: learned juror weights versus majority vote, as labelled data grows.

Model. Each juror j has a known accuracy p[j, c] on category c. On every item a latent
common-error factor z ~ N(0, 1) is shared by all jurors: juror j is right iff
sqrt(rho)·z + sqrt(1 - rho)·e_j < Phi^-1(p[j, c]), with independent e_j ~ N(0, 1). So each
juror keeps its marginal accuracy while errors correlate (rho is the latent, tetrachoric
correlation). On k-option items a wrong juror picks the item's common distractor with
probability rho and otherwise a uniformly random wrong option, so wrong votes cluster too.

Weights. From N labelled items per category each juror's accuracy is estimated by the
Beta(1, 1) posterior mean (s + 1) / (N + 2) and turned into the log-odds weight
log(p / (1 - p)) + log(k - 1): the optimal weighted vote for independent jurors with
symmetric errors (Nitzan & Paroush 1982). With correlated errors it is no longer optimal,
which is the point of comparing it with the true-weight ("oracle") vote.

Run: ``python -m eval.simulation --out DIR`` writes simulation.md, simulation.json and one
PNG per scenario (k, rho). Everything is drawn from one seeded generator, so runs are reproducible.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

CATEGORIES = ("factual", "pairwise", "safety")
# Rows: jurors; columns: CATEGORIES. Specialists with different strengths, plus a weak juror.
DEFAULT_ACCURACIES = (
    (0.85, 0.60, 0.70),
    (0.60, 0.82, 0.65),
    (0.70, 0.62, 0.86),
    (0.56, 0.55, 0.60),
    (0.66, 0.70, 0.58),
)
DEFAULT_SIZES = (5, 10, 20, 50, 100, 200, 500)
METHODS = ("majority", "weighted_estimated", "weighted_true", "best_single_estimated")
LABELS = {
    "majority": "majority vote",
    "weighted_estimated": "weighted vote (estimated weights)",
    "weighted_true": "log-odds weighted vote (true weights)",
    "best_single_estimated": "best single juror (by estimate)",
}


@dataclass(frozen=True)
class Scenario:
    """Jurors' true accuracies ([juror][category]), option count and error correlation."""

    accuracies: tuple[tuple[float, ...], ...] = DEFAULT_ACCURACIES
    k: int = 2
    rho: float = 0.3


@dataclass(frozen=True)
class StudyConfig:
    """How many labelled sizes, repetitions and test items to simulate, and the seed."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    reps: int = 200
    test_items: int = 1000
    seed: int = 20240611


@dataclass(frozen=True)
class StudyResult:
    """Mean test accuracy per method and labelled size N, averaged over repetitions."""

    scenario: Scenario
    config: StudyConfig
    accuracy: dict[str, list[float]]  # method -> one mean per size
    std_error: dict[str, list[float]]  # standard error of that mean over repetitions
    best_single_true: float  # the truly best juror per category, for reference


def simulate_votes(
    rng: np.random.Generator, acc: FloatArray, categories: IntArray, *, k: int, rho: float
) -> IntArray:
    """Votes (items x jurors) as option indices; option 0 is always the correct one."""
    thresholds = np.vectorize(NormalDist().inv_cdf)(acc)[:, categories].T  # items x jurors
    common = rng.standard_normal((len(categories), 1))
    own = rng.standard_normal(thresholds.shape)
    correct = np.sqrt(rho) * common + np.sqrt(1.0 - rho) * own < thresholds
    if k == 2:
        return np.where(correct, 0, 1).astype(np.int64)
    distractor = rng.integers(1, k, size=(len(categories), 1))
    uniform = rng.integers(1, k, size=thresholds.shape)
    wrong = np.where(rng.random(thresholds.shape) < rho, distractor, uniform)
    return np.where(correct, 0, wrong).astype(np.int64)


def posterior_mean_accuracy(successes: FloatArray, n: int) -> FloatArray:
    """Beta(1, 1) posterior mean (s + 1) / (n + 2) of an accuracy from s of n right."""
    return (successes + 1.0) / (n + 2.0)


def log_odds_weights(p: FloatArray, k: int) -> FloatArray:
    """Optimal vote weights log(p / (1 - p)) + log(k - 1) for independent, symmetric errors."""
    return np.asarray(np.log(p / (1.0 - p)) + np.log(k - 1.0), dtype=np.float64)


def weighted_vote(
    rng: np.random.Generator, votes: IntArray, weights: FloatArray, *, k: int
) -> IntArray:
    """Per item the option with the largest summed weight; ties broken at random."""
    scores = np.stack([((votes == o) * weights).sum(axis=1) for o in range(k)], axis=1)
    # Jitter far below any weight difference: it only decides exact ties, uniformly.
    scores = scores + rng.uniform(0.0, 1e-9, size=scores.shape)
    return np.asarray(scores.argmax(axis=1), dtype=np.int64)


def _calibration_weights(
    rng: np.random.Generator, acc: FloatArray, n: int, *, k: int, rho: float
) -> tuple[FloatArray, IntArray]:
    # N labelled items in each category, answered by every juror.
    cats = np.repeat(np.arange(acc.shape[1]), n)
    right = simulate_votes(rng, acc, cats, k=k, rho=rho) == 0
    successes = np.stack([right[cats == c].sum(axis=0) for c in range(acc.shape[1])], axis=1)
    p_hat = posterior_mean_accuracy(successes.astype(np.float64), n)  # jurors x categories
    return log_odds_weights(p_hat, k), np.asarray(p_hat.argmax(axis=0), dtype=np.int64)


def _one_repetition(
    rng: np.random.Generator, scenario: Scenario, config: StudyConfig
) -> dict[str, list[float]]:
    # One test set per repetition, shared by all sizes N: common random numbers make the
    # comparison across N and methods far less noisy than fresh test sets would.
    acc, k, rho = np.asarray(scenario.accuracies, dtype=np.float64), scenario.k, scenario.rho
    cats = rng.integers(0, acc.shape[1], size=config.test_items)
    votes = simulate_votes(rng, acc, cats, k=k, rho=rho)
    items = np.arange(config.test_items)

    def score(pred: IntArray) -> float:
        return float(np.mean(pred == 0))

    majority = score(weighted_vote(rng, votes, np.ones(votes.shape), k=k))
    true_w = log_odds_weights(acc, k)[:, cats].T
    oracle = score(weighted_vote(rng, votes, true_w, k=k))
    out: dict[str, list[float]] = {m: [] for m in METHODS}
    for n in config.sizes:
        weights, best = _calibration_weights(rng, acc, n, k=k, rho=rho)
        out["majority"].append(majority)
        out["weighted_true"].append(oracle)
        out["weighted_estimated"].append(score(weighted_vote(rng, votes, weights[:, cats].T, k=k)))
        out["best_single_estimated"].append(score(votes[items, best[cats]]))
    return out


def run_study(scenario: Scenario, config: StudyConfig) -> StudyResult:
    """Average each method's test accuracy over repetitions, for every labelled size N."""
    # One stream per scenario, so adding a scenario leaves the others' numbers unchanged.
    rng = np.random.default_rng([config.seed, scenario.k, round(scenario.rho * 1000)])
    runs = [_one_repetition(rng, scenario, config) for _ in range(config.reps)]
    acc = np.asarray(scenario.accuracies, dtype=np.float64)
    mean: dict[str, list[float]] = {}
    sem: dict[str, list[float]] = {}
    for m in METHODS:
        values = np.asarray([r[m] for r in runs])  # reps x sizes
        mean[m] = [float(v) for v in values.mean(axis=0)]
        sem[m] = [float(v) for v in values.std(axis=0, ddof=1) / np.sqrt(config.reps)]
    return StudyResult(scenario, config, mean, sem, best_single_true=float(acc.max(axis=0).mean()))


def render_table(result: StudyResult) -> str:
    """Markdown table: one row per labelled size N, one column per method."""
    head = "| N per category | " + " | ".join(LABELS[m] for m in METHODS) + " |"
    lines = [head, "|" + "---|" * (len(METHODS) + 1)]
    for i, n in enumerate(result.config.sizes):
        cells = [f"{result.accuracy[m][i]:.4f}" for m in METHODS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    worst = max(max(v) for v in result.std_error.values())
    note = (
        f"k = {result.scenario.k} options, error correlation rho = {result.scenario.rho}, "
        f"{result.config.reps} repetitions x {result.config.test_items} test items; "
        f"largest standard error {worst:.4f}. Best single juror with true accuracies: "
        f"{result.best_single_true:.4f}."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot_study(result: StudyResult, path: Path) -> None:
    """Accuracy against N (log scale), one line per method."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for m in METHODS:
        ax.plot(result.config.sizes, result.accuracy[m], marker="o", label=LABELS[m])
    ax.axhline(result.best_single_true, color="grey", linestyle=":", label="best single (true)")
    ax.set_xscale("log")
    ax.set(xlabel="labelled items per category (N)", ylabel="test accuracy")
    ax.set_title(f"k = {result.scenario.k}, rho = {result.scenario.rho}")
    ax.legend(fontsize="small")
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def write_study(results: Sequence[StudyResult], out_dir: Path) -> list[Path]:
    """Write simulation.md, simulation.json and one PNG per scenario into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = ["# Simulation: estimated juror weights vs majority vote", ""]
    paths = []
    for r in results:
        name = f"k = {r.scenario.k}, rho = {r.scenario.rho}"
        png = out_dir / f"simulation_k{r.scenario.k}_rho{r.scenario.rho:g}.png"
        plot_study(r, png)
        md += [f"## {name}", "", render_table(r), f"![{name}]({png.name})", ""]
        paths.append(png)
    (out_dir / "simulation.md").write_text("\n".join(md), encoding="utf-8")
    data = [asdict(r) for r in results]
    (out_dir / "simulation.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return [out_dir / "simulation.md", out_dir / "simulation.json", *paths]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: run the study for each k and write the outputs."""
    parser = argparse.ArgumentParser(prog="python -m eval.simulation", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--k", type=int, nargs="+", default=[2, 4], help="options per item")
    parser.add_argument(
        "--rho", type=float, nargs="+", default=[0.0, 0.3], help="latent error correlations"
    )
    parser.add_argument("--reps", type=int, default=StudyConfig.reps)
    parser.add_argument("--test-items", type=int, default=StudyConfig.test_items)
    parser.add_argument("--seed", type=int, default=StudyConfig.seed)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    args = parser.parse_args(argv)
    config = StudyConfig(tuple(args.sizes), args.reps, args.test_items, args.seed)
    results = [run_study(Scenario(k=k, rho=rho), config) for rho in args.rho for k in args.k]
    write_study(results, args.out)
    print((args.out / "simulation.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
