"""Cross-validated rule choice: held-out scoring, grouped folds, the best-single floor."""

from __future__ import annotations

import pytest

from app.deliberation.rules import Ballot
from app.trust.selection import Case, folds_of, select_rule, wilson

OPTIONS = ("A", "B")


def case(group: str, correct: str, judge: str | None = None, **positions: str) -> Case:
    """Return one CV case over A/B."""
    return Case(
        ballot=Ballot(positions=positions, options=OPTIONS, correct=correct),
        group=group,
        judge=judge,
        judge_confidence=0.8 if judge else None,
    )


def test_the_wilson_interval_matches_the_formula() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_folds_keep_a_group_together_and_are_deterministic() -> None:
    cases = [case(f"item-{i // 2}", "A", x="A") for i in range(20)]

    folds = folds_of(cases, 5, seed=3)

    assert folds == folds_of(cases, 5, seed=3)
    assert sorted(i for fold in folds for i in fold) == list(range(20))
    for fold in folds:
        assert {cases[i].group for i in fold}.isdisjoint(
            {cases[i].group for f in folds if f is not fold for i in f}
        )


def test_a_rule_is_scored_only_on_ballots_it_was_not_fitted_on() -> None:
    # x is right on every ballot but one per group of ten; y always right on the held-out-only
    # pattern would need fitting to look good. A memorising rule cannot gain in CV.
    cases = [case(str(i), "A" if i % 2 else "B", x="A" if i % 2 else "B", y="A") for i in range(40)]

    selection = select_rule("c", cases)

    scores = {s.rule: s for s in selection.candidates}
    assert scores["single:x"].correct == 40
    assert scores["single:y"].correct == 20
    assert selection.chosen == "single:x"
    assert selection.best_single == "x"
    assert selection.weights == {"x": 1.0, "y": 0.0}
    assert {s.n for s in selection.candidates} == {40}
    assert all(s.low <= s.accuracy <= s.high for s in selection.candidates)
    # Every held-out pair of the chosen rule: confidence 1.0 (x alone carries the weight).
    assert selection.held_out == ((1.0, True),) * 40


def test_the_judge_keeps_the_verdict_unless_the_evidence_shows_it_worse() -> None:
    tied = [case(str(i), "A", judge="A", x="A", y="B") for i in range(10)]
    worse = [case(str(i), "A", judge="B" if i < 3 else "A", x="A", y="B") for i in range(10)]

    assert select_rule("tied", tied).chosen == "judge"
    assert select_rule("tied", tied).verdict_source == "judge"
    chosen = select_rule("worse", worse)
    assert (chosen.chosen, chosen.verdict_source) == ("single:x", "weighted_vote")


def test_never_below_the_best_single_juror() -> None:
    # The majority of three (x right 70%, y and z right 40% together) is worse than x alone.
    cases = []
    for i in range(50):
        correct = "A"
        x = "A" if i % 10 < 7 else "B"
        yz = "A" if i % 10 < 4 else "B"
        cases.append(case(str(i), correct, x=x, y=yz, z=yz))

    selection = select_rule("c", cases)

    scores = {s.rule: s.correct for s in selection.candidates}
    chosen = scores[selection.chosen]
    assert chosen >= max(v for r, v in scores.items() if r.startswith("single:"))
    assert scores["majority"] < scores["single:x"]


def test_a_category_keeps_its_own_rule_only_if_it_beats_the_pooled_one() -> None:
    from app.core.config import JuryConfig
    from app.trust.choice import choose_rules
    from app.trust.records import JurorRecord, OutcomeRecord

    def record(i: int, category: str, x_right: bool, y_right: bool) -> OutcomeRecord:
        correct = "A"
        return OutcomeRecord(
            verdict_id=f"{category}-{i}",
            category=category,
            options=OPTIONS,
            correct=correct,
            jurors=(
                JurorRecord(name="x", model="m", final_position="A" if x_right else "B"),
                JurorRecord(name="y", model="m", final_position="A" if y_right else "B"),
            ),
        )

    # "big": x right always, y right half the time. "odd": y right always, x never.
    records = [record(i, "big", True, i % 2 == 0) for i in range(60)]
    records += [record(i, "odd", False, True) for i in range(40)]
    config = JuryConfig.model_validate(
        {
            "jurors": [
                {"name": "x", "model": "scripted", "family": "f1", "script": {"rounds": [{}]}},
                {"name": "y", "model": "scripted", "family": "f2", "script": {"rounds": [{}]}},
            ],
            "panels": {"default": {"jurors": ["x", "y"], "judge": "none"}},
        }
    )

    choice = choose_rules(
        records,
        config,
        jurors={"x": "m", "y": "m"},
        min_evidence=30,
        calibration_min_evidence=50,
        active_maps={},
    )

    # Pooled, y is right 70 of 100 and x 60: "*" trusts y. On "odd" that ties y's own
    # record (40 of 40), so "odd" defers to "*"; on "big" x (60 of 60) beats it (30 of 60).
    assert choice.selections["*"].chosen == "single:y"
    assert choice.selections["odd"].chosen == "global:single:y"
    assert choice.selections["big"].chosen == "single:x"
    rows = {c.rule: c.correct for c in choice.selections["big"].candidates}
    assert (rows["global:single:y"], rows["single:x"]) == (30, 60)
    assert choice.rules["big"]["rule"] == "single:x"
