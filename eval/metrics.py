"""Pure evaluation metrics over plain labels, booleans and numbers.

Conventions: a missing label (``None``) is a failure and never equals gold, so it counts as
wrong; a metric that is undefined on its input (empty input, zero variance) returns ``None``
rather than NaN, so it serialises as JSON ``null``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import combinations, pairwise

from pydantic import BaseModel, ConfigDict

# One Wilson interval for the service and the harness; re-exported for the reports.
from app.trust.scoring import wilson_interval as wilson_interval
from eval.records import Order

Label = str | None
Labels = Sequence[Label]
Matrix = dict[str, dict[str, float | None]]


class _Frozen(BaseModel):
    # Unknown keys are ignored so that older code can still load newer report.json files.
    model_config = ConfigDict(frozen=True)


class Proportion(_Frozen):
    """A share with its Wilson 95% interval; value/low/high are None when n == 0."""

    successes: int
    n: int
    value: float | None
    low: float | None
    high: float | None


class ReliabilityBin(_Frozen):
    """One equal-width confidence bin of a reliability diagram."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


class ShiftCounts(_Frozen):
    """Position changes between consecutive answered rounds, by correctness."""

    wrong_to_right: int = 0
    right_to_wrong: int = 0
    other_change: int = 0  # wrong to a different wrong option
    unchanged: int = 0


class PositionBias(_Frozen):
    """Order-swap consistency of pairwise verdicts."""

    pairs: int  # distinct pair ids seen
    incomplete: int  # pairs missing an order, or a verdict in either order; not in the rate
    inconsistent: Proportion  # over complete pairs


class Summary(_Frozen):
    """Distribution summary of a usage quantity (latency, tokens, cost)."""

    p50: float | None
    p95: float | None
    mean: float | None
    total: float


def proportion(successes: int, n: int) -> Proportion:
    """Share successes/n with its Wilson 95% interval (all None when n == 0)."""
    if n == 0:
        return Proportion(successes=0, n=0, value=None, low=None, high=None)
    low, high = wilson_interval(successes, n)
    return Proportion(successes=successes, n=n, value=successes / n, low=low, high=high)


def accuracy(correct: Sequence[bool]) -> Proportion:
    """Accuracy of a sequence of per-item correctness flags, with Wilson 95% interval."""
    return proportion(sum(correct), len(correct))


def cohen_kappa(predictions: Labels, gold: Sequence[str]) -> float | None:
    """Cohen's kappa (p_o - p_e) / (1 - p_e); 1.0 when p_e = 1 (then p_o = 1 too)."""
    if len(predictions) != len(gold):
        raise ValueError("predictions and gold differ in length")
    n = len(gold)
    if n == 0:
        return None
    p_o = sum(p == g for p, g in zip(predictions, gold, strict=True)) / n
    pred_counts = Counter(predictions)  # None is its own category: it never matches gold
    p_e = sum(pred_counts[label] * count for label, count in Counter(gold).items()) / (n * n)
    if p_e >= 1.0 - 1e-12:
        # Both raters used one and the same label throughout: agreement is perfect, and
        # the chance-corrected ratio is 0/0. Report the limit of perfect agreement.
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def agreement(a: Labels, b: Labels) -> float | None:
    """Share of items, among those both jurors answered, where they chose the same option."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not both:
        return None
    return sum(x == y for x, y in both) / len(both)


def phi_coefficient(x: Sequence[bool], y: Sequence[bool]) -> float | None:
    """Phi coefficient of two binary indicators; None when either one is constant."""
    n11 = sum(a and b for a, b in zip(x, y, strict=True))
    n10 = sum(a and not b for a, b in zip(x, y, strict=True))
    n01 = sum(b and not a for a, b in zip(x, y, strict=True))
    n00 = len(x) - n11 - n10 - n01
    denom = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    if denom == 0:
        return None
    return (n11 * n00 - n10 * n01) / math.sqrt(denom)


def error_correlation(a: Labels, b: Labels, gold: Sequence[str]) -> float | None:
    """Phi of two jurors' error indicators over the items both answered."""
    # Failed answers are left out: a shared outage is not a shared judgement error.
    rows = [
        (x != g, y != g)
        for x, y, g in zip(a, b, gold, strict=True)
        if x is not None and y is not None
    ]
    return phi_coefficient([r[0] for r in rows], [r[1] for r in rows])


def pairwise_matrix(
    labels: Mapping[str, Labels], stat: Callable[[Labels, Labels], float | None]
) -> Matrix:
    """Symmetric juror-by-juror matrix of a pairwise statistic (diagonal included)."""
    names = sorted(labels)
    return {a: {b: stat(labels[a], labels[b]) for b in names} for a in names}


def mean_offdiagonal(matrix: Matrix) -> float | None:
    """Mean of the defined entries above the diagonal (each unordered pair once)."""
    values = [matrix[a][b] for a, b in combinations(sorted(matrix), 2)]
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def effective_votes(n: int, mean_correlation: float) -> float:
    """Effective independent votes n_eff = n / (1 + (n - 1) * rho), clipped to [1, n].

    rho is the mean pairwise correlation of the jurors' error indicators. The denominator is
    Kish's design effect for a cluster of n equally correlated units (Kish 1965, *Survey
    Sampling*): n votes whose errors correlate at rho carry as much information as n_eff
    independent votes. rho = 0 gives n; rho = 1 gives 1.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    design_effect = 1.0 + (n - 1) * mean_correlation
    if design_effect <= 0.0:
        return float(n)  # strongly anti-correlated errors: the formula leaves [1, n] upwards
    return min(float(n), max(1.0, n / design_effect))


def bin_index(confidence: float, bins: int) -> int:
    """Equal-width bin of a confidence in [0, 1]; bins are [i/B, (i+1)/B), the last closed."""
    return min(bins - 1, max(0, math.floor(confidence * bins)))


def reliability_bins(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> list[ReliabilityBin]:
    """Per equal-width bin: count, mean confidence and accuracy (None for empty bins)."""
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for c, ok in zip(confidences, correct, strict=True):
        members[bin_index(c, bins)].append((c, ok))
    return [
        ReliabilityBin(
            lower=i / bins,
            upper=(i + 1) / bins,
            count=len(m),
            mean_confidence=sum(c for c, _ in m) / len(m) if m else None,
            accuracy=sum(ok for _, ok in m) / len(m) if m else None,
        )
        for i, m in enumerate(members)
    ]


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> float | None:
    """ECE = Σ_b (n_b / N)·|accuracy_b - mean confidence_b| over equal-width bins."""
    if not confidences:
        return None
    total = 0.0
    for b in reliability_bins(confidences, correct, bins=bins):
        if b.accuracy is not None and b.mean_confidence is not None:
            total += b.count * abs(b.accuracy - b.mean_confidence)
    return total / len(confidences)


def brier_score(confidences: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Brier score: mean of (confidence - correct)² with correct as 0/1."""
    if not confidences:
        return None
    pairs = zip(confidences, correct, strict=True)
    return sum((c - float(ok)) ** 2 for c, ok in pairs) / len(confidences)


def juror_shifts(positions: Labels, gold: str) -> ShiftCounts:
    """Classify each step between consecutive answered rounds (failed rounds skipped)."""
    answered = [p for p in positions if p is not None]
    counts: Counter[str] = Counter()
    for before, after in pairwise(answered):
        if before == after:
            counts["unchanged"] += 1
        elif after == gold:
            counts["wrong_to_right"] += 1
        elif before == gold:
            counts["right_to_wrong"] += 1
        else:
            counts["other_change"] += 1
    return ShiftCounts(**counts)


def sum_shifts(counts: Iterable[ShiftCounts]) -> ShiftCounts:
    """Field-wise sum of shift counts."""
    items = list(counts)
    return ShiftCounts(
        wrong_to_right=sum(c.wrong_to_right for c in items),
        right_to_wrong=sum(c.right_to_wrong for c in items),
        other_change=sum(c.other_change for c in items),
        unchanged=sum(c.unchanged for c in items),
    )


def oracle_gap(round1: Sequence[Labels], verdicts: Labels, gold: Sequence[str]) -> Proportion:
    """Share of items where some juror was right in round 1 but the verdict is wrong."""
    gaps = [
        any(p == g for p in positions) and v != g
        for positions, v, g in zip(round1, verdicts, gold, strict=True)
    ]
    return accuracy(gaps)


def to_original(label: Label, options: Sequence[str], order: Order | None) -> Label:
    """Map a presented label of a two-option item back to the original ("ab") frame."""
    if label is None or order != "ba" or len(options) != 2 or label not in options:
        return label  # nothing to swap; an off-list label stays as is (and never matches)
    return options[1 - options.index(label)]


def position_bias(pairs: Sequence[tuple[Label, Label]], *, missing: int = 0) -> PositionBias:
    """Share of pairs whose original-frame verdicts (ab, ba) disagree; None verdicts excluded.

    ``missing`` counts pairs lacking one of the two orders; they are reported as incomplete.
    """
    complete = [(ab, ba) for ab, ba in pairs if ab is not None and ba is not None]
    inconsistent = sum(ab != ba for ab, ba in complete)
    return PositionBias(
        pairs=len(pairs) + missing,
        incomplete=len(pairs) - len(complete) + missing,
        inconsistent=proportion(inconsistent, len(complete)),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Percentile q in [0, 100] by linear interpolation (NumPy's default method)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarize(values: Sequence[float]) -> Summary:
    """p50, p95, mean and total of a usage quantity (None statistics when empty)."""
    if not values:
        return Summary(p50=None, p95=None, mean=None, total=0.0)
    return Summary(
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        mean=sum(values) / len(values),
        total=float(sum(values)),
    )
