"""Trust-weighted vote over juror positions, and weight lookup with fallbacks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

from pydantic import BaseModel, ConfigDict

ALL_CATEGORIES: Final = "*"
"""Category key of the all-categories cell and of the global fallback weights."""

NEUTRAL_WEIGHT = 1.0

WeightsTable: TypeAlias = Mapping[str, Mapping[str, float]]
"""`{category: {juror_name: weight}}`; category "*" holds the global fallback weights."""


class VoteResult(BaseModel):
    """Outcome of a weighted vote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None only when no juror gave a position.
    winner: str | None
    scores: dict[str, float]
    share: float
    tie: bool
    # True when every voting juror had weight 0 and the vote fell back to one-juror-one-vote.
    unweighted_fallback: bool = False


def weight_for(table: WeightsTable, category: str, juror: str) -> float:
    """Return a juror's weight in a category, falling back to "*" and then to neutral 1.0."""
    for cell in (category, ALL_CATEGORIES):
        weights = table.get(cell)
        if weights is not None and juror in weights:
            return weights[juror]
    return NEUTRAL_WEIGHT


def effective_weight(weight: float) -> float:
    """Clip a weight at 0 so that a juror at or below chance is ignored, never inverted."""
    # A log-odds weight is negative for a juror below chance; a negative vote would mean
    # voting *against* its answer, which is only sound for binary questions and amplifies
    # noise in a poisoned or stale estimate. Ignoring the juror is the conservative choice.
    if math.isnan(weight):
        raise ValueError("weight must be a number")
    return max(weight, 0.0)


def _tally(
    votes: Sequence[tuple[str, float, float]], options: Sequence[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Sum weights and confidences per option from (position, weight, confidence) votes."""
    scores = dict.fromkeys(options, 0.0)
    confidence = dict.fromkeys(options, 0.0)
    for position, weight, conf in votes:
        scores[position] += weight
        confidence[position] += conf
    return scores, confidence


def _pick(
    scores: Mapping[str, float], confidence: Mapping[str, float], options: Sequence[str]
) -> tuple[str, bool]:
    """Pick the top option; break ties by summed confidence, then by option order."""
    top = max(scores.values())
    tied = [o for o in options if math.isclose(scores[o], top, rel_tol=1e-9, abs_tol=1e-12)]
    best_conf = max(confidence[o] for o in tied)
    # Options are scanned in the caller's order, so the first option wins a full tie.
    for option in tied:
        if math.isclose(confidence[option], best_conf, rel_tol=1e-9, abs_tol=1e-12):
            return option, len(tied) > 1
    raise AssertionError("unreachable: some tied option holds the best confidence")


def weighted_vote(
    positions: Mapping[str, str | None],
    weights: Mapping[str, float],
    options: Sequence[str],
    confidences: Mapping[str, float] | None = None,
) -> VoteResult:
    """Decide among options by the summed (clipped) weights of the jurors' positions."""
    if len(set(options)) != len(options) or not options:
        raise ValueError("options must be non-empty and unique")
    confidences = confidences or {}
    votes: list[tuple[str, float, float]] = []
    for juror, position in positions.items():
        if position is None:
            continue  # a failed juror casts no vote
        if position not in options:
            raise ValueError(f"juror {juror!r} voted {position!r}, not among the options")
        weight = effective_weight(weights.get(juror, NEUTRAL_WEIGHT))
        votes.append((position, weight, confidences.get(juror, 0.0)))
    if not votes:
        return VoteResult(winner=None, scores=dict.fromkeys(options, 0.0), share=0.0, tie=False)
    fallback = all(weight == 0.0 for _, weight, _ in votes)
    if fallback:
        votes = [(position, 1.0, conf) for position, _, conf in votes]
    scores, confidence = _tally(votes, options)
    winner, tie = _pick(scores, confidence, options)
    share = scores[winner] / sum(scores.values())
    return VoteResult(
        winner=winner, scores=scores, share=share, tie=tie, unweighted_fallback=fallback
    )
