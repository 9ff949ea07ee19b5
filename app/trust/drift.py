"""Rollback trigger: did accuracy clearly drop after a weights version was approved?"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.trust.records import OutcomeRecord
from app.trust.scoring import BetaAccuracy, beta_posterior
from app.trust.statistics import Decider, decision_of

DEFAULT_DRAWS = 200_000
DEFAULT_SEED = 20_240_601


class RollbackReason(StrEnum):
    """Why the rollback check decided as it did."""

    ACCURACY_DROPPED = "accuracy_dropped"
    NO_CLEAR_DROP = "no_clear_drop"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class RollbackDecision(BaseModel):
    """The rollback decision with the numbers behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollback: bool
    reason: RollbackReason
    probability_worse: float
    before: BetaAccuracy
    after: BetaAccuracy
    min_after: int
    threshold: float
    draws: int
    seed: int


def probability_lower(after: BetaAccuracy, before: BetaAccuracy, *, draws: int, seed: int) -> float:
    """Estimate P(acc_after < acc_before) for independent Beta posteriors by Monte Carlo."""
    # A fixed seed makes the decision reproducible: the same record always gives the same answer.
    rng = np.random.default_rng(seed)
    sample_after = rng.beta(after.alpha, after.beta, size=draws)
    sample_before = rng.beta(before.alpha, before.beta, size=draws)
    return float(np.mean(sample_after < sample_before))


def rollback_check(
    before: tuple[int, int],
    after: tuple[int, int],
    *,
    min_after: int,
    threshold: float = 0.95,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> RollbackDecision:
    """Decide from (correct, n) counts whether accuracy after approval clearly dropped."""
    post_before = beta_posterior(*before)
    post_after = beta_posterior(*after)
    probability = probability_lower(post_after, post_before, draws=draws, seed=seed)
    if post_after.n < min_after:
        reason = RollbackReason.INSUFFICIENT_EVIDENCE
    elif probability > threshold:
        reason = RollbackReason.ACCURACY_DROPPED
    else:
        reason = RollbackReason.NO_CLEAR_DROP
    return RollbackDecision(
        rollback=reason is RollbackReason.ACCURACY_DROPPED,
        reason=reason,
        probability_worse=probability,
        before=post_before,
        after=post_after,
        min_after=min_after,
        threshold=threshold,
        draws=draws,
        seed=seed,
    )


def decider_counts(records: Sequence[OutcomeRecord], decider: Decider) -> tuple[int, int]:
    """Return (correct, n) of one decider over the records where it gave an answer."""
    answers = [(decision_of(r, decider), r.correct) for r in records]
    given = [(answer, correct) for answer, correct in answers if answer is not None]
    return sum(answer == correct for answer, correct in given), len(given)


def split_at(
    records: Sequence[OutcomeRecord], approved_at: datetime
) -> tuple[list[OutcomeRecord], list[OutcomeRecord]]:
    """Split records into those decided before and at-or-after an approval time."""
    if any(r.decided_at is None for r in records):
        raise ValueError("every record needs decided_at to be split at an approval time")
    before = [r for r in records if r.decided_at is not None and r.decided_at < approved_at]
    after = [r for r in records if r.decided_at is not None and r.decided_at >= approved_at]
    return before, after


def rollback_check_records(
    records: Sequence[OutcomeRecord],
    *,
    approved_at: datetime,
    min_after: int,
    decider: Decider = Decider.WEIGHTED_VOTE,
    threshold: float = 0.95,
) -> RollbackDecision:
    """Run the rollback check on the recorded decisions of one decider around an approval."""
    # The default decider is the trust-weighted vote: the aggregate that the weights change.
    before, after = split_at(records, approved_at)
    return rollback_check(
        decider_counts(before, decider),
        decider_counts(after, decider),
        min_after=min_after,
        threshold=threshold,
    )
