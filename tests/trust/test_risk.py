"""Fixed-sequence testing of the guaranteed-risk threshold, on hand-computed cases."""

from __future__ import annotations

import pytest

from app.deliberation.assembly import RiskBound
from app.trust.risk import binomial_cdf, fixed_sequence_threshold


def test_the_binomial_tail_is_exact() -> None:
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(4 / 8)
    assert binomial_cdf(0, 30, 0.1) == pytest.approx(0.9**30)
    assert binomial_cdf(3, 3, 0.2) == 1.0
    assert binomial_cdf(-1, 3, 0.2) == 0.0


def test_the_threshold_stops_at_the_first_level_it_cannot_accept() -> None:
    # 30 right at 0.9; 5 right and 5 wrong at 0.6.
    pairs = [(0.9, True)] * 30 + [(0.6, True)] * 5 + [(0.6, False)] * 5

    result = fixed_sequence_threshold(pairs, alpha=0.1, delta=0.1)

    # Down to 0.61 the covered set is the 30 right ones: P(Bin(30, 0.1) <= 0) = 0.9^30 = 0.042
    # <= 0.1, accepted. At 0.60 it is 40 with 5 errors: P(Bin(40, 0.1) <= 5) = 0.79, stop.
    assert result.threshold == 0.61
    assert (result.covered, result.errors, result.n) == (30, 0, 40)
    assert result.p_value == pytest.approx(0.9**30)
    assert binomial_cdf(5, 40, 0.1) > 0.1


def test_with_too_little_evidence_no_guarantee_holds() -> None:
    # Ten right answers: P(Bin(10, 0.1) <= 0) = 0.9^10 = 0.35 > delta.
    result = fixed_sequence_threshold([(0.95, True)] * 10, alpha=0.1, delta=0.1)

    assert result.threshold is None
    assert result.covered == 0
    bound = RiskBound(alpha=0.1, delta=0.1, threshold=result.threshold, n=result.n)
    out = bound.out(0.99)
    assert (out.guaranteed, out.covered, out.threshold) == (False, False, None)


def test_a_looser_alpha_covers_more() -> None:
    # 20 right at 0.9, then 18 right and 2 wrong at 0.7.
    pairs = [(0.9, True)] * 20 + [(0.7, True)] * 18 + [(0.7, False)] * 2

    tight = fixed_sequence_threshold(pairs, alpha=0.05, delta=0.1)
    loose = fixed_sequence_threshold(pairs, alpha=0.2, delta=0.1)

    # alpha 0.05: 0.95^20 = 0.358 > 0.1, nothing passes. alpha 0.2: 0.8^20 = 0.012 passes,
    # and at 0.70 P(Bin(40, 0.2) <= 2) = 0.0079 passes too, so every level down to 0 does.
    assert tight.threshold is None
    assert binomial_cdf(2, 40, 0.2) < 0.1
    assert (loose.threshold, loose.covered, loose.errors) == (0.0, 40, 2)
    assert RiskBound(alpha=0.2, delta=0.1, threshold=0.7).out(0.69).covered is False
    assert RiskBound(alpha=0.2, delta=0.1, threshold=0.7).out(0.7).covered is True
