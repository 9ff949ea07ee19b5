"""The candidate aggregation rules on small hand-made ballots."""

from __future__ import annotations

import math

import pytest

from app.deliberation.rules import (
    Ballot,
    accuracy,
    best_single,
    decide,
    juror_accuracy,
    log_odds_rule,
    majority_rule,
    single_rule,
    stacking_rule,
    subset_rule,
)

OPTIONS = ("A", "B")


def ballot(correct: str, **positions: str | None) -> Ballot:
    """Return a ballot over A/B."""
    return Ballot(positions=positions, options=OPTIONS, correct=correct)


# x is right 3 of 4, y 2 of 4 and z 1 of 4; y and z always vote together against x.
BALLOTS = [
    ballot("A", x="A", y="B", z="B"),
    ballot("A", x="A", y="B", z="B"),
    ballot("B", x="B", y="B", z="B"),
    ballot("B", x="A", y="B", z="A"),
]


def test_majority_weighs_everyone_the_same() -> None:
    assert majority_rule(BALLOTS) == {"x": 1.0, "y": 1.0, "z": 1.0}
    # y and z outvote x on the first two (wrong), all agree on the third, x and z win the last.
    assert accuracy(BALLOTS, majority_rule(BALLOTS)) == 1 / 4


def test_single_lets_one_juror_decide_and_best_single_finds_it() -> None:
    assert single_rule(BALLOTS, "x") == {"x": 1.0, "y": 0.0, "z": 0.0}
    assert best_single(BALLOTS) == "x"
    assert accuracy(BALLOTS, single_rule(BALLOTS, "x")) == 3 / 4


def test_log_odds_uses_laplace_smoothed_accuracy_clipped_at_zero() -> None:
    weights = log_odds_rule(BALLOTS)

    assert juror_accuracy(BALLOTS, "x") == pytest.approx(4 / 6)
    assert weights["x"] == pytest.approx(math.log(2.0))
    assert weights["y"] == 0.0  # (2+1)/(4+2) = 0.5: chance, no vote
    assert weights["z"] == 0.0  # below chance: ignored, never inverted
    assert log_odds_rule(BALLOTS, ["y"])["x"] == 0.0


def test_best_subset_prefers_the_smaller_subset_on_a_tie() -> None:
    weights = subset_rule(BALLOTS)

    # Only x carries weight in any subset here, so every subset with x scores 3/4; the
    # smallest (size 2, first in order) wins.
    assert accuracy(BALLOTS, weights) == 3 / 4
    assert sum(1 for w in weights.values() if w > 0) == 1


def test_stacking_does_not_count_a_copy_twice() -> None:
    # c1 and c2 are copies (right 60%); s is independent and right 80%.
    rows = []
    for i in range(50):
        copies_right = i % 5 < 3
        strong_right = i % 5 != 4 if i % 2 else i % 5 != 0
        correct = "A"
        copy = "A" if copies_right else "B"
        strong = "A" if strong_right else "B"
        rows.append(ballot(correct, s=strong, c1=copy, c2=copy))

    weights = stacking_rule(rows)

    assert all(w >= 0 for w in weights.values())
    assert weights["c1"] == pytest.approx(weights["c2"], abs=1e-9)
    assert weights["s"] > weights["c1"] + weights["c2"]


def test_a_failed_juror_casts_no_vote() -> None:
    assert decide(ballot("A", x=None, y="B"), {"x": 5.0, "y": 1.0}) == "B"
    assert decide(ballot("A", x=None), {"x": 1.0}) is None
