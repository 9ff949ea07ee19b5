"""Weighted vote: scores, clipping, tie-breaks and weight lookup."""

from __future__ import annotations

import pytest

from app.deliberation.vote import weight_for, weighted_vote

OPTIONS = ("yes", "no")


def test_missing_juror_weighs_neutral_one() -> None:
    # yes: a=1.5.  no: b and c are missing from the map, 1.0 each -> 2.0.
    result = weighted_vote({"a": "yes", "b": "no", "c": "no"}, {"a": 1.5}, OPTIONS)
    assert result.winner == "no"
    assert result.scores == {"yes": 1.5, "no": 2.0}
    assert result.share == pytest.approx(2.0 / 3.5)
    assert not result.tie


def test_tie_is_broken_by_summed_confidence() -> None:
    result = weighted_vote(
        {"a": "yes", "b": "no"}, {"a": 1.0, "b": 1.0}, OPTIONS, {"a": 0.6, "b": 0.9}
    )
    assert (result.winner, result.tie, result.share) == ("no", True, 0.5)


def test_full_tie_is_broken_by_option_order() -> None:
    positions = {"a": "yes", "b": "no"}
    assert weighted_vote(positions, {}, ("yes", "no")).winner == "yes"
    assert weighted_vote(positions, {}, ("no", "yes")).winner == "no"


def test_float_sums_that_are_equal_count_as_a_tie() -> None:
    # 0.1 + 0.2 != 0.3 in binary floating point; the tie must still be seen.
    result = weighted_vote(
        {"a": "yes", "b": "yes", "c": "no"}, {"a": 0.1, "b": 0.2, "c": 0.3}, ("no", "yes")
    )
    assert result.tie
    assert result.winner == "no"


def test_negative_weight_is_ignored_not_inverted() -> None:
    # a at -2 would push "yes" below zero if inverted; clipped, it adds nothing.
    result = weighted_vote({"a": "yes", "b": "no"}, {"a": -2.0, "b": 0.5}, OPTIONS)
    assert result.scores == {"yes": 0.0, "no": 0.5}
    assert (result.winner, result.share) == ("no", 1.0)


def test_all_zero_weights_fall_back_to_plain_majority() -> None:
    result = weighted_vote(
        {"a": "yes", "b": "yes", "c": "no"}, {"a": 0.0, "b": 0.0, "c": -1.0}, OPTIONS
    )
    assert result.unweighted_fallback
    assert result.scores == {"yes": 2.0, "no": 1.0}
    assert result.winner == "yes"


def test_failed_jurors_cast_no_vote() -> None:
    assert weighted_vote({"a": None, "b": "no"}, {"a": 5.0}, OPTIONS).winner == "no"
    nobody = weighted_vote({"a": None}, {}, OPTIONS)
    assert (nobody.winner, nobody.share) == (None, 0.0)


def test_position_outside_options_is_an_error() -> None:
    with pytest.raises(ValueError, match="not among the options"):
        weighted_vote({"a": "maybe"}, {}, OPTIONS)


def test_weight_for_falls_back_category_then_global_then_neutral() -> None:
    table = {"*": {"a": 0.5, "b": 0.7}, "deploy": {"a": 2.0}}
    assert weight_for(table, "deploy", "a") == 2.0
    assert weight_for(table, "deploy", "b") == 0.7
    assert weight_for(table, "finance", "a") == 0.5
    assert weight_for(table, "deploy", "c") == 1.0
    assert weight_for({}, "deploy", "a") == 1.0
