"""Plain aggregates of juror positions: majorities and the weighted vote."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NEUTRAL_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class Vote:
    """A juror's position with its stated confidence."""

    juror: str
    position: str
    confidence: float


@dataclass(frozen=True, slots=True)
class VoteResult:
    """The outcome of a weighted vote."""

    winner: str
    share: float
    scores: dict[str, float]
    tie: bool


def majority(votes: Sequence[Vote]) -> str | None:
    """Return the plurality position, or None when the top positions tie (or no votes)."""
    counts = Counter(vote.position for vote in votes).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def weighted_vote(
    votes: Sequence[Vote], options: Sequence[str], weights: Mapping[str, float]
) -> VoteResult | None:
    """Return the option with the most weight; ties go to summed confidence, then option order.

    A juror missing from ``weights`` counts with the neutral weight. Negative weights are
    clipped to zero: a juror worse than chance is ignored, not inverted.
    """
    if not votes:
        return None
    scores = dict.fromkeys(options, 0.0)
    confidence = dict.fromkeys(options, 0.0)
    for vote in votes:
        scores[vote.position] += max(weights.get(vote.juror, NEUTRAL_WEIGHT), 0.0)
        confidence[vote.position] += vote.confidence
    ranked = sorted(options, key=lambda o: (-scores[o], -confidence[o], options.index(o)))
    winner = ranked[0]
    total = sum(scores.values())
    share = scores[winner] / total if total > 0 else 0.0
    tie = len(ranked) > 1 and scores[ranked[1]] == scores[winner]
    return VoteResult(winner=winner, share=share, scores=scores, tie=tie)


def weighted_share(votes: Sequence[Vote], position: str, weights: Mapping[str, float]) -> float:
    """Return the share of the panel's weight that stands behind ``position``."""
    total = sum(max(weights.get(v.juror, NEUTRAL_WEIGHT), 0.0) for v in votes)
    behind = sum(
        max(weights.get(v.juror, NEUTRAL_WEIGHT), 0.0) for v in votes if v.position == position
    )
    return behind / total if total > 0 else 0.0
