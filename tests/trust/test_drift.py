"""Rollback trigger: fires on a clear accuracy drop, not on noise or thin evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.trust.drift import RollbackReason, rollback_check, rollback_check_records, split_at
from app.trust.records import OutcomeRecord
from app.trust.statistics import Decider

from .factories import juror, record


def test_fires_on_a_clear_drop() -> None:
    # Before 90/100 -> Beta(91, 11), mean 0.89; after 30/50 -> Beta(31, 21), mean 0.60.
    # The means are ~4 posterior sds apart: P(after < before) is essentially 1.
    decision = rollback_check((90, 100), (30, 50), min_after=30)
    assert decision.rollback
    assert decision.reason is RollbackReason.ACCURACY_DROPPED
    assert decision.probability_worse > 0.999
    assert decision.before.mean == pytest.approx(91 / 102)
    assert decision.after.mean == pytest.approx(31 / 52)


def test_does_not_fire_on_noise() -> None:
    # After 44/50 = 0.88 against 0.90 before: well inside the noise.
    decision = rollback_check((90, 100), (44, 50), min_after=30)
    assert not decision.rollback
    assert decision.reason is RollbackReason.NO_CLEAR_DROP
    assert 0.5 < decision.probability_worse < 0.95


def test_does_not_fire_on_thin_evidence() -> None:
    # 2/10 after is a big drop, but 10 < min_after.
    decision = rollback_check((90, 100), (2, 10), min_after=30)
    assert not decision.rollback
    assert decision.reason is RollbackReason.INSUFFICIENT_EVIDENCE
    assert decision.probability_worse > 0.99


def test_equal_accuracy_is_a_coin_flip_and_reproducible() -> None:
    first = rollback_check((50, 100), (50, 100), min_after=30)
    second = rollback_check((50, 100), (50, 100), min_after=30)
    assert first.probability_worse == pytest.approx(0.5, abs=0.01)
    assert first == second


def test_records_are_split_at_the_approval_time() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    approved = t0 + timedelta(days=10)

    def made(i: int, day: int, right: bool) -> OutcomeRecord:
        return record(
            f"v{i}",
            "yes",
            [juror("a", "yes")],
            weighted="yes" if right else "no",
            decided_at=t0 + timedelta(days=day),
        )

    records = [made(i, 1, i % 10 != 0) for i in range(100)]  # 90/100 before
    records += [made(100 + i, 10 + i % 5, i % 2 == 0) for i in range(40)]  # 20/40 after
    before, after = split_at(records, approved)
    assert (len(before), len(after)) == (100, 40)
    decision = rollback_check_records(
        records,
        approved_at=approved,
        min_after=30,
        decider=Decider.WEIGHTED_VOTE,
    )
    assert (decision.before.successes, decision.after.successes) == (90, 20)
    assert decision.rollback


def test_split_needs_timestamps() -> None:
    with pytest.raises(ValueError, match="decided_at"):
        split_at([record("v1", "yes", [])], datetime(2025, 1, 1, tzinfo=UTC))
