"""Replay of recorded verdicts under the active and proposed weights."""

from __future__ import annotations

import pytest

from app.trust.replay import replay

from .factories import juror, record

XYZ = ("x", "y", "z")
RECORDS = [
    # Neutral: no 2-1.  a at 3.0: yes 3-2.  Correct yes -> proposed fixes it.
    record("r1", "yes", [juror("a", "yes"), juror("b", "no"), juror("c", "no")]),
    # Neutral: yes 2-1.  a at 3.0: no 3-2.  Correct yes -> proposed breaks it.
    record("r2", "yes", [juror("a", "no"), juror("b", "yes"), juror("c", "yes")]),
    # Both say yes (a agrees with b).
    record("r3", "yes", [juror("a", "yes"), juror("b", "yes"), juror("c", "no")]),
    # a failed: b and c decide "no" under both tables.
    record("r4", "no", [juror("a", None), juror("b", "no"), juror("c", "no")]),
    # Nobody answered: undecidable.
    record("r5", "no", [juror("a", None), juror("b", None)]),
    # Neutral y (2-1), proposed x (3-2), correct z: a flip where neither side is right.
    record("r6", "z", [juror("a", "x"), juror("b", "y"), juror("c", "y")], options=XYZ),
]


def test_replay_counts_and_flips() -> None:
    result = replay(RECORDS, active={}, proposed={"*": {"a": 3.0}})
    assert (result.n, result.undecidable) == (5, 1)
    # Active right on r2, r3, r4; proposed right on r1, r3, r4 -> 3/5 both.
    assert (result.correct_active, result.correct_proposed) == (3, 3)
    assert result.accuracy_active == pytest.approx(0.6)
    assert result.accuracy_proposed == pytest.approx(0.6)
    flips = {f.verdict_id: f for f in result.flips}
    assert set(flips) == {"r1", "r2", "r6"}
    assert (flips["r1"].active, flips["r1"].proposed, flips["r1"].correct_side) == (
        "no",
        "yes",
        "proposed",
    )
    assert flips["r2"].correct_side == "active"
    assert (flips["r6"].active, flips["r6"].proposed, flips["r6"].correct_side) == (
        "y",
        "x",
        "neither",
    )


def test_replay_uses_category_weights() -> None:
    # The deploy-only weight does not touch a finance record.
    finance = record(
        "f1", "yes", [juror("a", "yes"), juror("b", "no"), juror("c", "no")], category="finance"
    )
    result = replay([finance], active={}, proposed={"deploy": {"a": 3.0}})
    assert result.flips == ()


def test_replay_of_nothing() -> None:
    result = replay([], active={}, proposed={})
    assert (result.n, result.accuracy_active, result.accuracy_proposed) == (0, None, None)
