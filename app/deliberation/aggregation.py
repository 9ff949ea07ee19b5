"""Plain aggregates of juror positions: majorities and the weighted vote.

The weighted vote is the trust layer's (``app.deliberation.vote``): the verdict's weighted-vote
baseline and the replay of a weights proposal must be one and the same function.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.deliberation.vote import NEUTRAL_WEIGHT, VoteResult
from app.deliberation.vote import weighted_vote as trust_weighted_vote

__all__ = ["NEUTRAL_WEIGHT", "Vote", "VoteResult", "majority", "weighted_share", "weighted_vote"]


@dataclass(frozen=True, slots=True)
class Vote:
    """A juror's position with its stated confidence."""

    juror: str
    position: str
    confidence: float


def majority(votes: Sequence[Vote]) -> str | None:
    """Return the plurality position, or None when the top positions tie (or no votes)."""
    counts = Counter(vote.position for vote in votes).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def _vote(
    votes: Sequence[Vote], options: Sequence[str], weights: Mapping[str, float]
) -> VoteResult:
    return trust_weighted_vote(
        {vote.juror: vote.position for vote in votes},
        weights,
        options,
        {vote.juror: vote.confidence for vote in votes},
    )


def weighted_vote(
    votes: Sequence[Vote], options: Sequence[str], weights: Mapping[str, float]
) -> VoteResult | None:
    """Return the option with the most weight, or None without votes.

    Ties go to summed confidence, then option order. A juror missing from ``weights`` counts
    with the neutral weight; negative weights are clipped to zero (ignored, not inverted).
    """
    result = _vote(votes, options, weights)
    return result if result.winner is not None else None


def weighted_share(
    votes: Sequence[Vote],
    position: str,
    weights: Mapping[str, float],
    options: Sequence[str] | None = None,
) -> float:
    """Return the share of the panel's weight that stands behind ``position``."""
    labels = options if options is not None else [position, *(vote.position for vote in votes)]
    result = _vote(votes, list(dict.fromkeys(labels)), weights)
    total = sum(result.scores.values())
    return result.scores.get(position, 0.0) / total if total > 0 else 0.0
