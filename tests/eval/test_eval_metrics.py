"""Hand-computed checks of the pure metrics in eval.metrics."""

from __future__ import annotations

import math

import pytest

from eval import metrics as m


def test_wilson_interval_eight_of_ten() -> None:
    # p = 0.8, z^2 = 3.8415, denom = 1 + 3.8415/10 = 1.38415
    # centre = (0.8 + 3.8415/20) / 1.38415 = 0.992074 / 1.38415 = 0.716738
    # half = 1.96 * sqrt(0.8*0.2/10 + 3.8415/400) / 1.38415
    #      = 1.96 * sqrt(0.0256037) / 1.38415 = 0.226581
    low, high = m.wilson_interval(8, 10)
    assert low == pytest.approx(0.716738 - 0.226581, abs=1e-5)
    assert high == pytest.approx(0.716738 + 0.226581, abs=1e-5)


def test_wilson_interval_edges() -> None:
    # 0 of 4: centre = half = (z^2/8) / (1 + z^2/4) = 0.480187 / 1.960375, so low is 0 exactly.
    low, high = m.wilson_interval(0, 4)
    assert low == 0.0
    assert high == pytest.approx(2 * 0.480187 / 1.960375, abs=1e-5)
    with pytest.raises(ValueError, match="n > 0"):
        m.wilson_interval(0, 0)


def test_accuracy_and_empty_proportion() -> None:
    acc = m.accuracy([True, True, False, True])
    assert (acc.successes, acc.n, acc.value) == (3, 4, 0.75)
    assert acc.low is not None
    assert acc.high is not None
    assert acc.low < 0.75 < acc.high
    empty = m.accuracy([])
    assert (empty.n, empty.value, empty.low, empty.high) == (0, None, None, None)


def test_cohen_kappa_binary() -> None:
    # p_o = 4/5 = 0.8; pred A3 B2, gold A2 B3: p_e = (3*2 + 2*3) / 25 = 0.48
    # kappa = (0.8 - 0.48) / (1 - 0.48) = 0.32 / 0.52 = 8/13
    kappa = m.cohen_kappa(["A", "A", "B", "B", "A"], ["A", "B", "B", "B", "A"])
    assert kappa == pytest.approx(8 / 13)


def test_cohen_kappa_multiclass_with_missing_prediction() -> None:
    # Matches on items 1-3: p_o = 3/6. pred A2 B1 C2 None1, gold A2 B2 C2:
    # p_e = (2*2 + 1*2 + 2*2) / 36 = 10/36; kappa = (1/2 - 5/18) / (13/18) = 4/13
    pred = ["A", "B", "C", "C", None, "A"]
    kappa = m.cohen_kappa(pred, ["A", "B", "C", "A", "B", "C"])
    assert kappa == pytest.approx(4 / 13)


def test_cohen_kappa_degenerate_and_empty() -> None:
    # One label throughout on both sides: p_e = 1 = p_o, reported as perfect agreement.
    assert m.cohen_kappa(["A", "A", "A"], ["A", "A", "A"]) == 1.0
    # Chance-level: pred always A, gold half A: p_o = 0.5 = p_e, kappa 0.
    assert m.cohen_kappa(["A", "A"], ["A", "B"]) == pytest.approx(0.0)
    assert m.cohen_kappa([], []) is None


def test_agreement_and_error_correlation() -> None:
    gold = ["A"] * 6
    a = ["A", "A", "B", "B", "A", None]
    b = ["A", "B", "B", "A", "A", "B"]
    # Item 6 is dropped (a failed). Same choice on items 1, 3, 5 of 5: 3/5.
    assert m.agreement(a, b) == pytest.approx(0.6)
    # Errors a: 0 0 1 1 0, b: 0 1 1 0 0 -> n11=1 n10=1 n01=1 n00=2
    # phi = (1*2 - 1*1) / sqrt(2*3*2*3) = 1/6
    assert m.error_correlation(a, b, gold) == pytest.approx(1 / 6)


def test_phi_is_none_when_an_indicator_is_constant() -> None:
    assert m.phi_coefficient([True, True, True], [True, False, True]) is None
    assert m.phi_coefficient([True, False], [True, False]) == pytest.approx(1.0)
    assert m.phi_coefficient([True, False], [False, True]) == pytest.approx(-1.0)


def test_pairwise_matrix_and_mean_offdiagonal() -> None:
    labels = {"x": ["A", "A", "B"], "y": ["A", "B", "B"], "z": ["A", "A", "B"]}
    matrix = m.pairwise_matrix(labels, m.agreement)
    # x-y agree on 2/3, x-z on 3/3, y-z on 2/3; mean = (2/3 + 1 + 2/3) / 3 = 7/9
    assert matrix["x"]["y"] == pytest.approx(2 / 3)
    assert matrix["x"]["z"] == 1.0
    assert matrix["y"]["y"] == 1.0
    assert m.mean_offdiagonal(matrix) == pytest.approx(7 / 9)
    assert m.mean_offdiagonal({"x": {"x": 1.0}}) is None


@pytest.mark.parametrize(
    ("n", "rho", "expected"),
    [
        (5, 0.25, 2.5),  # 5 / (1 + 4*0.25) = 5/2
        (5, 0.0, 5.0),  # independent: all n votes
        (5, 1.0, 1.0),  # perfectly correlated: one vote
        (5, -0.1, 5.0),  # 5 / 0.6 = 8.33, clipped to n
        (5, -0.5, 5.0),  # design effect 1 - 2 = -1 <= 0, clipped to n
        (3, 0.5, 1.5),  # 3 / (1 + 2*0.5) = 3/2
    ],
)
def test_effective_votes(n: int, rho: float, expected: float) -> None:
    assert m.effective_votes(n, rho) == pytest.approx(expected)


CONF = [0.95, 0.85, 0.85, 0.55, 0.25]
CORRECT = [True, True, False, True, False]


def test_ece() -> None:
    # Bins (width 0.1): 9 {0.95 right}, 8 {0.85 right, 0.85 wrong}, 5 {0.55 right}, 2 {0.25 wrong}
    # ECE = (1*|1 - 0.95| + 2*|0.5 - 0.85| + 1*|1 - 0.55| + 1*|0 - 0.25|) / 5
    #     = (0.05 + 0.70 + 0.45 + 0.25) / 5 = 1.45 / 5 = 0.29
    assert m.expected_calibration_error(CONF, CORRECT) == pytest.approx(0.29)
    # Two bins: [0, 0.5) {0.25 wrong}, [0.5, 1] {4 items, 3 right, mean conf 0.8}
    # ECE = (1*0.25 + 4*|0.75 - 0.8|) / 5 = 0.45 / 5 = 0.09
    assert m.expected_calibration_error(CONF, CORRECT, bins=2) == pytest.approx(0.09)
    assert m.expected_calibration_error([], []) is None


def test_brier() -> None:
    # (0.05^2 + 0.15^2 + 0.85^2 + 0.45^2 + 0.25^2) / 5
    # = (0.0025 + 0.0225 + 0.7225 + 0.2025 + 0.0625) / 5 = 1.0125 / 5 = 0.2025
    assert m.brier_score(CONF, CORRECT) == pytest.approx(0.2025)
    assert m.brier_score([], []) is None


def test_reliability_bins() -> None:
    bins = m.reliability_bins([*CONF, 1.0], [*CORRECT, True])
    assert len(bins) == 10
    assert [b.count for b in bins] == [0, 0, 1, 0, 0, 1, 0, 0, 2, 2]  # 1.0 joins the last bin
    assert bins[8].mean_confidence == pytest.approx(0.85)
    assert bins[8].accuracy == pytest.approx(0.5)
    assert bins[9].mean_confidence == pytest.approx(0.975)  # (0.95 + 1.0) / 2
    assert bins[0].accuracy is None
    assert bins[0].mean_confidence is None
    assert (bins[3].lower, bins[3].upper) == pytest.approx((0.3, 0.4))


def test_juror_shifts() -> None:
    # Answered rounds B A A C B (the failed round is skipped), gold A:
    # B->A wrong_to_right, A->A unchanged, A->C right_to_wrong, C->B other_change
    shifts = m.juror_shifts(["B", "A", "A", "C", None, "B"], "A")
    assert shifts == m.ShiftCounts(wrong_to_right=1, right_to_wrong=1, other_change=1, unchanged=1)
    assert m.juror_shifts([None], "A") == m.ShiftCounts()
    total = m.sum_shifts([shifts, m.ShiftCounts(unchanged=2, wrong_to_right=1)])
    assert (total.wrong_to_right, total.unchanged, total.right_to_wrong) == (2, 3, 1)


def test_oracle_gap() -> None:
    # 1: a juror right, verdict wrong -> gap; 2: no juror right -> no gap;
    # 3: verdict right -> no gap; 4: a juror right, no verdict (failed) -> gap. 2/4.
    gap = m.oracle_gap(
        [["A", "B"], ["B", "B"], ["A", "A"], ["A", None]],
        ["B", "B", "A", None],
        ["A", "A", "A", "A"],
    )
    assert (gap.successes, gap.n, gap.value) == (2, 4, 0.5)


def test_to_original() -> None:
    assert m.to_original("A", ["A", "B"], "ba") == "B"
    assert m.to_original("B", ["A", "B"], "ba") == "A"
    assert m.to_original("B", ["A", "B"], "ab") == "B"
    assert m.to_original(None, ["A", "B"], "ba") is None
    assert m.to_original("Z", ["A", "B"], "ba") == "Z"


def test_position_bias() -> None:
    # Complete pairs: (a,a) consistent, (a,b) flips, (b,b) consistent -> 1/3.
    # Incomplete: one pair without a verdict, one pair missing an order.
    bias = m.position_bias([("a", "a"), ("a", "b"), ("b", "b"), (None, "a")], missing=1)
    assert (bias.pairs, bias.incomplete) == (5, 2)
    assert (bias.inconsistent.successes, bias.inconsistent.n) == (1, 3)
    assert bias.inconsistent.value == pytest.approx(1 / 3)
    assert m.position_bias([]).inconsistent.value is None


def test_percentiles_and_summary() -> None:
    values = [10.0, 1.0, 4.0, 2.0, 3.0]
    # Sorted 1 2 3 4 10. p50: rank 4*0.5 = 2 -> 3. p95: rank 4*0.95 = 3.8 -> 4 + 0.8*(10-4) = 8.8
    assert m.percentile(values, 50) == 3.0
    assert m.percentile(values, 95) == pytest.approx(8.8)
    assert m.percentile([7.0], 95) == 7.0
    summary = m.summarize(values)
    assert (summary.mean, summary.total) == (4.0, 20.0)
    assert m.summarize([]).p50 is None
    with pytest.raises(ValueError, match="empty"):
        m.percentile([], 50)


def test_metrics_never_return_nan() -> None:
    # Undefined metrics are None, so report.json never holds NaN.
    results = [m.cohen_kappa([], []), m.brier_score([], []), m.agreement([None], ["A"])]
    assert all(r is None for r in results)
    assert not math.isnan(m.effective_votes(4, 0.2))
