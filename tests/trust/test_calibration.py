"""Isotonic calibration: PAV by hand, monotone maps, ECE reduction, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from app.trust.calibration import (
    CalibrationMap,
    calibrate,
    fit_by_category,
    fit_calibration,
    fit_isotonic,
    judge_pairs,
    pool_adjacent_violators,
)

from .factories import juror, record


def _block(confidence: float, hits: int, n: int) -> list[tuple[float, bool]]:
    return [(confidence, i < hits) for i in range(n)]


# Overconfident: stated 0.5 / 0.7 / 0.9, observed 0.4 / 0.5 / 0.6.
OVERCONFIDENT = _block(0.5, 4, 10) + _block(0.7, 5, 10) + _block(0.9, 6, 10)


def test_pav_by_hand() -> None:
    # 3 > 2 violates: pool to (3+2)/2 = 2.5.
    assert pool_adjacent_violators([1, 3, 2, 4], [1, 1, 1, 1]) == [1, 2.5, 2.5, 4]
    # Weighted pool: (3*1 + 1*3) / 4 = 1.5.
    assert pool_adjacent_violators([3, 1], [1, 3]) == [1.5, 1.5]
    # A late low value pools back through several blocks: (3+2+1)/3 = 2 after the first 0.
    assert pool_adjacent_violators([0, 3, 2, 1], [1, 1, 1, 1]) == [0, 2, 2, 2]


def test_fit_on_overconfident_sample_removes_the_gap() -> None:
    fit = fit_calibration(OVERCONFIDENT, min_evidence=20)
    assert fit.map is not None
    assert fit.map.x == (0.5, 0.7, 0.9)
    assert fit.map.y == pytest.approx((0.4, 0.5, 0.6))
    # Before: (|0.4-0.5| + |0.5-0.7| + |0.6-0.9|) / 3 = 0.2.  After: every bin matches: 0.
    assert fit.ece_before == pytest.approx(0.2)
    assert fit.ece_after == pytest.approx(0.0, abs=1e-12)


def test_fit_pools_a_violation_and_stays_monotone() -> None:
    # Stated 0.3 hits 5/10 but stated 0.5 hits 4/10: pooled to 9/20 = 0.45.
    pairs = _block(0.3, 5, 10) + _block(0.5, 4, 10) + _block(0.9, 8, 10)
    fitted = fit_isotonic(pairs)
    assert fitted.y == pytest.approx((0.45, 0.45, 0.8))
    assert all(a <= b for a, b in zip(fitted.y, fitted.y[1:], strict=False))


def test_random_miscalibrated_sample_fit_is_monotone_and_reduces_ece() -> None:
    rng = np.random.default_rng(7)
    confidence = rng.uniform(0.5, 1.0, 500)
    # True accuracy is much lower than stated: 0.3 + 0.4 * (stated - 0.5).
    hits = rng.uniform(size=500) < 0.3 + 0.4 * (confidence - 0.5)
    pairs = [(float(c), bool(h)) for c, h in zip(confidence, hits, strict=True)]
    fit = fit_calibration(pairs, min_evidence=100)
    assert fit.map is not None
    assert list(fit.map.y) == sorted(fit.map.y)
    assert fit.ece_before is not None
    assert fit.ece_after is not None
    assert fit.ece_before > 0.3
    assert fit.ece_after < fit.ece_before / 5


def test_apply_interpolates_and_clamps() -> None:
    mapping = CalibrationMap(x=(0.5, 0.7), y=(0.4, 0.5))
    # Halfway between the breakpoints: (0.4 + 0.5) / 2.
    assert mapping.apply(0.6) == pytest.approx(0.45)
    assert mapping.apply(0.0) == 0.4
    assert mapping.apply(1.0) == 0.5
    assert CalibrationMap(x=(0.0,), y=(1.5,)).apply(0.3) == 1.0


def test_map_round_trips_through_json() -> None:
    fit = fit_calibration(OVERCONFIDENT, min_evidence=1)
    assert fit.map is not None
    restored = CalibrationMap.model_validate_json(fit.map.model_dump_json())
    assert restored == fit.map
    assert restored.apply(0.8) == fit.map.apply(0.8)


def test_min_evidence_leaves_no_map() -> None:
    fit = fit_calibration(OVERCONFIDENT, min_evidence=31)
    assert fit.map is None
    assert fit.ece_before == pytest.approx(0.2)
    assert fit.ece_after is None


def test_per_category_fits_fall_back_to_global_then_identity() -> None:
    records = [
        record(
            f"d{i}",
            "yes",
            [juror("a", "yes")],
            judge="yes" if i < 2 else "no",
            judge_confidence=0.9,
        )
        for i in range(4)
    ] + [record("f1", "yes", [], category="finance", judge="yes", judge_confidence=0.8)]
    pairs = judge_pairs(records)
    assert len(pairs["*"]) == 5
    fits = fit_by_category(pairs, min_evidence=4)
    # deploy (n=4) has a map: 2 of 4 right at 0.9 -> 0.5.
    assert calibrate(fits, "deploy", 0.9) == pytest.approx(0.5)
    # finance (n=1) has none; "*" answers instead: 0.8 hits 1/1 and 0.9 hits 2/4 violate
    # monotonicity, so they pool to (1 + 2) / 5 = 0.6.
    assert fits["finance"].map is None
    assert calibrate(fits, "finance", 0.8) == pytest.approx(0.6)
    assert calibrate({}, "finance", 0.8) == 0.8
