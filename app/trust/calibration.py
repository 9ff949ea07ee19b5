"""Monotone (isotonic) calibration maps from stated confidence to observed accuracy.

Pool-adjacent-violators is implemented here (about 30 lines) instead of pulling in
scikit-learn, whose IsotonicRegression would add scikit-learn, joblib and threadpoolctl to the
service for one exact, well-known algorithm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from app.deliberation.vote import ALL_CATEGORIES
from app.trust.records import OutcomeRecord
from app.trust.scoring import expected_calibration_error

Pairs = Sequence[tuple[float, bool]]


class CalibrationMap(BaseModel):
    """A monotone map given by breakpoints, applied by clamped linear interpolation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x: tuple[float, ...] = Field(min_length=1)
    y: tuple[float, ...] = Field(min_length=1)

    def apply(self, confidence: float) -> float:
        """Map a stated confidence to a calibrated one in [0, 1]."""
        # np.interp holds the end values outside [x[0], x[-1]].
        value = float(np.interp(confidence, self.x, self.y))
        return min(max(value, 0.0), 1.0)


class CalibrationFit(BaseModel):
    """A fitted map (or None for too little evidence) with ECE before and after."""

    # ece_after is measured on the fitting data itself, so it is optimistic: read it as "how
    # much of the miscalibration is monotone", not as an out-of-sample estimate.

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int
    min_evidence: int
    map: CalibrationMap | None
    ece_before: float | None
    ece_after: float | None


def pool_adjacent_violators(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """Return the weighted least-squares non-decreasing fit of values (already sorted by x)."""
    blocks: list[list[float]] = []  # [weighted mean, total weight, number of points]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([value, weight, 1.0])
        # Merge backwards while the last two blocks violate monotonicity.
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, weight2, count2 = blocks.pop()
            mean1, weight1, count1 = blocks[-1]
            total = weight1 + weight2
            blocks[-1] = [(mean1 * weight1 + mean2 * weight2) / total, total, count1 + count2]
    fitted: list[float] = []
    for mean, _, count in blocks:
        fitted.extend([mean] * int(count))
    return fitted


def fit_isotonic(pairs: Pairs) -> CalibrationMap:
    """Fit a non-decreasing map from confidence to the hit rate of (confidence, hit) pairs."""
    if not pairs:
        raise ValueError("cannot fit a calibration map without data")
    grouped: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])  # hits, count
    for confidence, hit in pairs:
        grouped[confidence][0] += float(hit)
        grouped[confidence][1] += 1.0
    xs = sorted(grouped)
    rates = [grouped[x][0] / grouped[x][1] for x in xs]
    fitted = pool_adjacent_violators(rates, [grouped[x][1] for x in xs])
    return CalibrationMap(x=tuple(xs), y=tuple(fitted))


def fit_calibration(pairs: Pairs, *, min_evidence: int) -> CalibrationFit:
    """Fit a calibration map when there are at least `min_evidence` pairs; report ECE."""
    if not pairs:
        return CalibrationFit(
            n=0, min_evidence=min_evidence, map=None, ece_before=None, ece_after=None
        )
    before = expected_calibration_error(pairs)
    if len(pairs) < min_evidence:
        return CalibrationFit(
            n=len(pairs), min_evidence=min_evidence, map=None, ece_before=before, ece_after=None
        )
    fitted = fit_isotonic(pairs)
    after = expected_calibration_error([(fitted.apply(c), hit) for c, hit in pairs])
    return CalibrationFit(
        n=len(pairs), min_evidence=min_evidence, map=fitted, ece_before=before, ece_after=after
    )


def judge_pairs(records: Sequence[OutcomeRecord]) -> dict[str, list[tuple[float, bool]]]:
    """Collect (judge confidence, judge was right) pairs per category and under "*"."""
    pairs: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for record in records:
        if record.judge_verdict is None or record.judge_confidence is None:
            continue
        pair = (record.judge_confidence, record.judge_verdict == record.correct)
        pairs[record.category].append(pair)
        pairs[ALL_CATEGORIES].append(pair)
    return dict(pairs)


def fit_by_category(
    pairs_by_category: Mapping[str, Pairs], *, min_evidence: int
) -> dict[str, CalibrationFit]:
    """Fit one calibration map per category (include "*" for the global fallback)."""
    return {
        category: fit_calibration(pairs, min_evidence=min_evidence)
        for category, pairs in pairs_by_category.items()
    }


def calibrate(fits: Mapping[str, CalibrationFit], category: str, confidence: float) -> float:
    """Calibrate a confidence with the category map, else the "*" map, else leave it as is."""
    for cell in (category, ALL_CATEGORIES):
        fit = fits.get(cell)
        if fit is not None and fit.map is not None:
            return fit.map.apply(confidence)
    return confidence
