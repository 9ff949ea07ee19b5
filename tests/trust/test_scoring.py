"""Beta posterior, ECE and Brier score against hand-computed values."""

from __future__ import annotations

import math

import pytest

from app.trust.scoring import (
    beta_posterior,
    brier_score,
    calibration_of,
    expected_calibration_error,
)


def test_beta_posterior_without_data_is_the_uniform_prior() -> None:
    # Beta(1,1) is uniform: mean 1/2, quantiles equal to the probabilities 0.025 and 0.975.
    post = beta_posterior(0, 0)
    assert (post.alpha, post.beta) == (1.0, 1.0)
    assert post.mean == pytest.approx(0.5)
    assert post.lower == pytest.approx(0.025)
    assert post.upper == pytest.approx(0.975)
    assert post.observed is None


def test_beta_posterior_after_one_success() -> None:
    # Beta(2,1) has CDF x^2, so its quantile q is sqrt(q): sqrt(0.025)=0.158114,
    # sqrt(0.975)=0.987421; mean 2/3.
    post = beta_posterior(1, 1)
    assert (post.alpha, post.beta) == (2.0, 1.0)
    assert post.mean == pytest.approx(2 / 3)
    assert post.lower == pytest.approx(math.sqrt(0.025))
    assert post.upper == pytest.approx(math.sqrt(0.975))


def test_beta_posterior_seven_of_ten() -> None:
    # Beta(1+7, 1+3) = Beta(8, 4): mean 8/12. Beta(4, 8) is its mirror image, so the
    # interval of 3/10 is (1 - upper, 1 - lower) of 7/10.
    post = beta_posterior(7, 10)
    mirror = beta_posterior(3, 10)
    assert post.mean == pytest.approx(8 / 12)
    assert post.lower < post.mean < post.upper
    assert mirror.lower == pytest.approx(1 - post.upper)
    assert mirror.upper == pytest.approx(1 - post.lower)
    assert post.observed == pytest.approx(0.7)


def test_beta_posterior_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes"):
        beta_posterior(3, 2)


def test_ece_and_brier_by_hand() -> None:
    pairs = [(0.95, True), (0.95, False), (0.15, False), (0.15, False)]
    # Bin [0.9,1.0]: confidence 0.95, accuracy 0.5, gap 0.45, weight 2/4.
    # Bin [0.1,0.2): confidence 0.15, accuracy 0.0, gap 0.15, weight 2/4.
    # ECE = 0.5*0.45 + 0.5*0.15 = 0.30.
    assert expected_calibration_error(pairs) == pytest.approx(0.30)
    # Brier = (0.05^2 + 0.95^2 + 0.15^2 + 0.15^2) / 4 = 0.95 / 4 = 0.2375.
    assert brier_score(pairs) == pytest.approx(0.2375)


def test_confidence_one_falls_in_the_last_bin() -> None:
    # 1.0 and 0.9 share bin 10: mean confidence 0.95, accuracy 1, ECE 0.05.
    assert expected_calibration_error([(1.0, True), (0.9, True)]) == pytest.approx(0.05)


def test_calibration_of_empty_sample_is_all_none() -> None:
    empty = calibration_of([])
    assert (empty.n, empty.ece, empty.brier) == (0, None, None)
