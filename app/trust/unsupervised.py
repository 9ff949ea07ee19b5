"""Juror accuracies from agreement alone: a one-coin Dawid-Skene EM (no outcomes needed).

One-coin means one accuracy per juror with errors spread evenly over the other options. It is
the variant whose parameter is exactly what log-odds weights need, and it copes with verdicts
whose option sets differ. It is written here in numpy rather than taken from crowd-kit, which
would add pandas, scikit-learn, transformers and pyarrow (45 packages) for one small EM.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from app.deliberation.vote import ALL_CATEGORIES, effective_weight
from app.trust.records import PanelRecord
from app.trust.weights import log_odds_weight

Item = tuple[tuple[str, ...], dict[str, str]]  # (options, juror name -> final position)
FloatArray: TypeAlias = npt.NDArray[np.float64]


class UnsupervisedCell(BaseModel):
    """An agreement-based accuracy estimate of one juror in one category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    juror: str
    model: str
    category: str
    n: int
    accuracy: float
    weight: float
    iterations: int
    converged: bool


class UnsupervisedWeights(BaseModel):
    """Weights estimated without outcomes; never to be confused with outcome-based ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unsupervised: Literal[True] = True
    method: Literal["dawid_skene_one_coin"] = "dawid_skene_one_coin"
    table: dict[str, dict[str, float]]
    cells: tuple[UnsupervisedCell, ...]


class _Encoded(NamedTuple):
    """Items as arrays: votes[i, j, o] one-hot labels, allowed[i, o] the item's options."""

    jurors: list[str]
    votes: FloatArray
    allowed: npt.NDArray[np.bool_]
    wrong_share: FloatArray  # log(k_i - 1) per item, to spread a juror's errors evenly


def _encode(items: Sequence[Item]) -> _Encoded:
    """Encode items over the union of their options and jurors."""
    jurors = sorted({juror for _, labels in items for juror in labels})
    options = sorted({option for item_options, _ in items for option in item_options})
    j_index = {name: j for j, name in enumerate(jurors)}
    o_index = {option: o for o, option in enumerate(options)}
    votes = np.zeros((len(items), len(jurors), len(options)))
    allowed = np.zeros((len(items), len(options)), dtype=bool)
    for i, (item_options, labels) in enumerate(items):
        allowed[i, [o_index[option] for option in item_options]] = True
        for name, label in labels.items():
            votes[i, j_index[name], o_index[label]] = 1.0
    wrong_share = np.log(allowed.sum(axis=1) - 1.0)
    return _Encoded(jurors, votes, allowed, wrong_share)


def _posteriors(data: _Encoded, accuracy: FloatArray, prior: FloatArray) -> FloatArray:
    """E-step: posterior over each item's options given juror accuracies and class prior."""
    voted = data.votes.sum(axis=2)  # [i, j] 1 where juror j answered item i
    log_wrong = np.log1p(-accuracy)[None, :] - data.wrong_share[:, None]  # [i, j]
    # Every answering juror contributes log p if it chose the option, else log((1-p)/(k-1)).
    logp = np.log(prior)[None, :] + (voted * log_wrong).sum(axis=1)[:, None]
    logp += np.einsum("ijo,j->io", data.votes, np.log(accuracy))
    logp -= np.einsum("ijo,ij->io", data.votes, log_wrong)
    logp = np.where(data.allowed, logp, -np.inf)
    logp -= logp.max(axis=1, keepdims=True)
    weights = np.exp(logp)
    return np.asarray(weights / weights.sum(axis=1, keepdims=True), dtype=np.float64)


def _maximise(data: _Encoded, posteriors: FloatArray) -> tuple[FloatArray, FloatArray]:
    """M-step: Laplace-smoothed juror accuracies and class prior from item posteriors."""
    hits = np.einsum("ijo,io->j", data.votes, posteriors)
    counts = data.votes.sum(axis=(0, 2))
    # Laplace smoothing keeps every accuracy strictly inside (0, 1), so log-odds stay finite.
    accuracy = (hits + 1.0) / (counts + 2.0)
    mass = posteriors.sum(axis=0) + 1.0
    return accuracy, mass / mass.sum()


def _majority_start(data: _Encoded) -> FloatArray:
    """Start EM from soft majority vote, which anchors labels against a swapped solution."""
    votes = data.votes.sum(axis=1) + np.where(data.allowed, 1e-3, 0.0)
    return np.asarray(votes / votes.sum(axis=1, keepdims=True), dtype=np.float64)


def dawid_skene(
    items: Sequence[Item], *, max_iterations: int = 200, tolerance: float = 1e-6
) -> tuple[dict[str, float], int, bool]:
    """Return (juror accuracies, iterations, converged) for labelled items by one-coin EM."""
    data = _encode(items)
    accuracy, prior = _maximise(data, _majority_start(data))
    iteration, converged = 0, False
    while iteration < max_iterations and not converged:
        iteration += 1
        new_accuracy, prior = _maximise(data, _posteriors(data, accuracy, prior))
        converged = float(np.max(np.abs(new_accuracy - accuracy))) < tolerance
        accuracy = new_accuracy
    return dict(zip(data.jurors, accuracy.tolist(), strict=True)), iteration, converged


def _items_by_category(records: Sequence[PanelRecord]) -> dict[str, list[Item]]:
    """Turn records into per-category items of valid final positions (and "*" for all)."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for record in records:
        labels = {j.name: j.final_position for j in record.jurors if j.final_position is not None}
        if labels:
            groups[record.category].append((record.options, labels))
            groups[ALL_CATEGORIES].append((record.options, labels))
    return dict(groups)


def _models(records: Sequence[PanelRecord]) -> dict[str, str]:
    """Map juror names to their single model id; refuse records that mix model ids."""
    seen: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for juror in record.jurors:
            seen[juror.name].add(juror.model)
    mixed = sorted(name for name, ids in seen.items() if len(ids) > 1)
    if mixed:
        raise ValueError(f"jurors with several model ids, filter the records first: {mixed}")
    return {name: next(iter(ids)) for name, ids in seen.items()}


def estimate_unsupervised_weights(
    records: Sequence[PanelRecord], *, min_evidence: int
) -> UnsupervisedWeights:
    """Estimate per-category log-odds weights from juror agreement, ignoring outcomes."""
    models = _models(records)
    cells: list[UnsupervisedCell] = []
    table: dict[str, dict[str, float]] = {}
    for category, items in sorted(_items_by_category(records).items()):
        accuracy, iterations, converged = dawid_skene(items)
        k = Counter(len(options) for options, _ in items).most_common(1)[0][0]
        counts = Counter(juror for _, labels in items for juror in labels)
        for juror, p in sorted(accuracy.items()):
            weight = log_odds_weight(p, k)
            cells.append(
                UnsupervisedCell(
                    juror=juror,
                    model=models[juror],
                    category=category,
                    n=counts[juror],
                    accuracy=p,
                    weight=weight,
                    iterations=iterations,
                    converged=converged,
                )
            )
            if counts[juror] >= min_evidence:
                table.setdefault(category, {})[juror] = effective_weight(weight)
    return UnsupervisedWeights(table=table, cells=tuple(cells))
