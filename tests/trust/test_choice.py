"""The proposal's rule choice: the sign test toward the pooled rule, the calibration split."""

from __future__ import annotations

import pytest

from app.core.config import JuryConfig
from app.trust.choice import RuleChoice, _halves, beats, choose_rules, fits_the_map
from app.trust.records import JurorRecord, OutcomeRecord
from app.trust.selection import CategorySelection

OPTIONS = ("A", "B")


def paired(wins: int, losses: int, both: int = 3) -> tuple[list[bool], list[bool]]:
    """Return (own, pooled) hits: ``wins`` only own right, ``losses`` only pooled, ``both``."""
    own = [True] * wins + [False] * losses + [True] * both
    pooled = [False] * wins + [True] * losses + [True] * both
    return own, pooled


@pytest.mark.parametrize(
    ("wins", "losses", "kept"),
    [
        (5, 0, True),  # P(X <= 0 | 5) = 1/32 = 0.031
        (4, 0, False),  # 1/16 = 0.0625
        (9, 2, True),  # (1 + 11 + 55) / 2048 = 0.0327
        (8, 2, False),  # (1 + 10 + 45) / 1024 = 0.0547
        (1, 0, False),  # one ballot ahead is noise
        (3, 3, False),  # a tie goes to the pooled rule
        (0, 6, False),
    ],
)
def test_a_category_rule_must_beat_the_pooled_one_by_a_sign_test(
    wins: int, losses: int, kept: bool
) -> None:
    own, pooled = paired(wins, losses)
    assert beats(own, pooled) is kept


def record(i: int, category: str, x_right: bool, y_right: bool, group: str) -> OutcomeRecord:
    return OutcomeRecord(
        verdict_id=f"{category}-{i}",
        category=category,
        options=OPTIONS,
        correct="A",
        jurors=(
            JurorRecord(name="x", model="m", final_position="A" if x_right else "B"),
            JurorRecord(name="y", model="m", final_position="A" if y_right else "B"),
        ),
        group=group,
    )


CONFIG = JuryConfig.model_validate(
    {
        "jurors": [
            {"name": "x", "model": "scripted", "family": "f1", "script": {"rounds": [{}]}},
            {"name": "y", "model": "scripted", "family": "f2", "script": {"rounds": [{}]}},
        ],
        "panels": {"default": {"jurors": ["x", "y"], "judge": "none"}},
    }
)


def choose(records: list[OutcomeRecord]) -> RuleChoice:
    """Choose rules over the x/y panel as a proposal would (30 outcomes, maps from 50)."""
    return choose_rules(
        records,
        CONFIG,
        jurors={"x": "m", "y": "m"},
        min_evidence=30,
        calibration_min_evidence=50,
        active_maps={},
    )


def test_a_category_one_ballot_ahead_defers_to_the_pooled_rule() -> None:
    # Pooled, x is right on 98 of 100 ballots. In "small" (40 ballots) x is wrong on 0 and 1,
    # y only on 2: y leads by one ballot (2 wins, 1 loss), which a sign test calls noise.
    records = [record(i, "big", True, i % 3 == 0, f"b{i}") for i in range(60)]
    records += [record(i, "small", i not in (0, 1), i != 2, f"s{i}") for i in range(40)]

    selections = choose(records).selections

    assert selections["*"].chosen == "single:x"
    assert selections["small"].chosen == "global:single:x"


def test_the_threshold_is_tested_on_items_the_map_was_not_fitted_on() -> None:
    # Two presentations per item (one group): 120 items, 240 ballots; x right on 80%.
    records = [
        record(2 * i + order, "c", i % 5 != 0, i % 2 == 0, f"item-{i}")
        for i in range(120)
        for order in (0, 1)
    ]
    choice = choose(records)
    selection = choice.selections["*"]

    fit_on, test_on = _halves(selection)

    assert len(fit_on) + len(test_on) == len(selection.held_out) == 240
    assert 60 <= len(fit_on) <= 180  # about half the items, both orders together
    assert "*" in choice.calibration  # a fresh map, fitted on fit_on only
    assert choice.risks["*"].n == len(test_on)
    assert _halves(selection) == (fit_on, test_on)  # fixed, not random per call


def test_halves_keep_both_presentations_of_an_item_together() -> None:
    # Each item's two pairs share a confidence unique to the item, so a pair names its item.
    groups = tuple(f"item-{i // 2}" for i in range(40))
    held = tuple(((i // 2) / 100, i % 3 != 0) for i in range(40))
    selection = CategorySelection(
        category="c",
        n=40,
        folds=5,
        candidates=(),
        best_single="x",
        chosen="single:x",
        verdict_source="weighted_vote",
        weights={"x": 1.0},
        held_out=held,
        held_out_groups=groups,
    )

    fit_on, test_on = _halves(selection)

    fit_items = [confidence for confidence, _ in fit_on]
    test_items = [confidence for confidence, _ in test_on]
    assert len(fit_on) + len(test_on) == 40
    assert fit_on
    assert test_on
    assert set(fit_items).isdisjoint(test_items)
    assert all(fit_items.count(c) == 2 for c in fit_items)
    assert all(test_items.count(c) == 2 for c in test_items)
    # An item's half depends on the item alone: the same in every category and in "*".
    assert [fits_the_map(f"item-{i}") for i in range(20)] == [
        (i / 100) in fit_items for i in range(20)
    ]


def test_a_category_without_a_map_of_its_own_tests_with_the_pooled_map() -> None:
    # "big": 120 items (enough for a map per half); "small": 20 items (too few for its own).
    records = [
        record(2 * i + order, "big", i % 5 != 0, i % 2 == 0, f"big-{i}")
        for i in range(120)
        for order in (0, 1)
    ]
    records += [
        record(2 * i + order, "small", i % 4 != 0, True, f"small-{i}")
        for i in range(20)
        for order in (0, 1)
    ]
    choice = choose(records)

    small = choice.selections["small"]
    _, test_on = _halves(small)
    assert "small" not in choice.calibration  # served with the "*" map
    assert "*" in choice.calibration
    # Its threshold was tested with that map, on its own items the map never saw.
    assert choice.risks["small"].n == len(test_on) < len(small.held_out)
