"""The verdict's weighted vote and the replay of a proposal are one and the same function."""

from __future__ import annotations

import itertools

import numpy as np

from app.deliberation.aggregation import Vote, weighted_share, weighted_vote
from app.deliberation.vote import weight_for
from app.trust.replay import decide

from .factories import juror, record

OPTIONS = ("x", "y", "z")
TABLE = {"deploy": {"a": 2.0, "b": 0.0}, "*": {"b": 0.5, "c": 1.2}}


def test_verdict_vote_and_replay_agree_on_every_split() -> None:
    rng = np.random.default_rng(7)
    for positions in itertools.product(OPTIONS, repeat=3):
        confidences = rng.uniform(size=3).round(2).tolist()
        names = ("a", "b", "c")
        votes = [Vote(n, p, c) for n, p, c in zip(names, positions, confidences, strict=True)]
        jurors = [
            juror(n, p, confidence=c) for n, p, c in zip(names, positions, confidences, strict=True)
        ]
        resolved = {name: weight_for(TABLE, "deploy", name) for name in names}
        verdict_vote = weighted_vote(votes, OPTIONS, resolved)
        replayed = decide(record("v", "x", jurors, options=OPTIONS), TABLE)
        assert verdict_vote is not None
        assert (verdict_vote.winner, verdict_vote.share) == (replayed.winner, replayed.share)


def test_all_zero_weights_fall_back_to_one_juror_one_vote() -> None:
    votes = [Vote("a", "x", 0.9), Vote("b", "y", 0.6), Vote("c", "y", 0.5)]
    result = weighted_vote(votes, OPTIONS, {"a": 0.0, "b": 0.0, "c": -1.0})
    assert result is not None
    assert (result.winner, result.unweighted_fallback) == ("y", True)
    assert weighted_share(votes, "y", {"a": 0.0, "b": 0.0, "c": 0.0}, OPTIONS) == 2 / 3
    assert weighted_vote([], OPTIONS, {}) is None
