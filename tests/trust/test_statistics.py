"""Trust statistics per juror and category, and for the judge and baselines."""

from __future__ import annotations

import pytest

from app.trust.statistics import Decider, ShiftRecord, compute_stats

from .factories import juror, record

RECORDS = [
    # a: round 1 wrong -> final right.  b: right -> wrong.
    record(
        "v1",
        "yes",
        [juror("a", "yes", round1="no", confidence=0.9), juror("b", "no", round1="yes")],
        judge="yes",
        judge_confidence=0.8,
        weighted="yes",
    ),
    # a held right; b failed in the final round.
    record(
        "v2",
        "no",
        [juror("a", "no", confidence=0.7), juror("b", None, round1="no")],
        judge="yes",
        judge_confidence=0.6,
        weighted="no",
    ),
    # finance: a held wrong; b answered only in the final round.
    record(
        "v3",
        "no",
        [juror("a", "yes", confidence=0.6), juror("b", "no")],
        category="finance",
        judge="no",
        judge_confidence=0.9,
    ),
]


def test_juror_cell_counts_accuracy_failures_and_shifts() -> None:
    stats = compute_stats(RECORDS)
    a_deploy = stats.juror_cell("a", "a-model", "deploy")
    assert a_deploy is not None
    # Round 1: no, no vs correct yes, no -> 1 of 2.  Final: yes, no -> 2 of 2 = Beta(3,1).
    assert (a_deploy.round1.successes, a_deploy.round1.n) == (1, 2)
    assert (a_deploy.final.successes, a_deploy.final.n) == (2, 2)
    assert a_deploy.final.mean == pytest.approx(3 / 4)
    assert a_deploy.shifts == ShiftRecord(wrong_to_right=1, held=1)
    b_deploy = stats.juror_cell("b", "b-model", "deploy")
    assert b_deploy is not None
    # The failed final round is a failure, not a wrong answer: final n is 1, not 2.
    assert (b_deploy.n, b_deploy.final.n, b_deploy.final_failures) == (2, 1, 1)
    assert b_deploy.shifts == ShiftRecord(right_to_wrong=1)


def test_all_categories_cell_pools_every_record() -> None:
    stats = compute_stats(RECORDS)
    a_all = stats.juror_cell("a", "a-model", "*")
    assert a_all is not None
    assert (a_all.final.successes, a_all.final.n) == (2, 3)
    # Calibration of final confidence: 0.9 right, 0.7 right, 0.6 wrong.
    # Brier = (0.01 + 0.09 + 0.36) / 3 = 0.46 / 3.
    assert a_all.calibration.brier == pytest.approx(0.46 / 3)
    # One per bin: |1-0.9| + |1-0.7| + |0-0.6| = 1.0, over 3 -> ECE 1/3.
    assert a_all.calibration.ece == pytest.approx(1 / 3)
    assert stats.categories == ("deploy", "finance")
    assert stats.n_records == 3


def test_judge_and_baselines_have_their_own_accuracy() -> None:
    stats = compute_stats(RECORDS)
    judge = stats.decider_cell(Decider.JUDGE, "*")
    assert judge is not None
    # Judge: yes(right), yes(wrong), no(right) -> 2 of 3; Brier (0.04+0.36+0.01)/3.
    assert (judge.accuracy.successes, judge.n) == (2, 3)
    assert judge.calibration is not None
    assert judge.calibration.brier == pytest.approx(0.41 / 3)
    weighted = stats.decider_cell(Decider.WEIGHTED_VOTE, "*")
    assert weighted is not None
    # Weighted vote recorded on v1 and v2 only, both right.
    assert (weighted.accuracy.successes, weighted.n, weighted.missing) == (2, 2, 1)
    assert weighted.calibration is None
    majority = stats.decider_cell(Decider.FINAL_MAJORITY, "finance")
    assert majority is not None
    assert (majority.n, majority.missing) == (0, 1)


def test_models_are_kept_apart() -> None:
    records = [
        record("v1", "yes", [juror("a", "yes", model="old")]),
        record("v2", "yes", [juror("a", "no", model="new")]),
    ]
    stats = compute_stats(records)
    old, new = stats.juror_cell("a", "old", "*"), stats.juror_cell("a", "new", "*")
    assert old is not None
    assert new is not None
    assert (old.final.successes, new.final.successes) == (1, 0)
