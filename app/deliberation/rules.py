"""Candidate aggregation rules: ways to learn juror weights from ballots with known outcomes.

Every rule ends as a weights map ``{juror: weight}`` applied by the one weighted vote
(``app.deliberation.vote``), so what a proposal scored is exactly what verdicts will do:

- ``majority``: every juror weighs 1;
- ``single``: one juror weighs 1, the others 0 (the best single juror);
- ``log_odds``: independent log-odds weights, log(p/(1-p)) + log(k-1) (Nitzan and Paroush
  1982), optimal only when jurors err independently;
- ``subset``: log-odds weights inside the best subset of jurors, 0 outside (panel selection:
  a decorrelated pair can beat a correlated five);
- ``stacking``: non-negative L2-regularised logistic stacking of the jurors' votes (stacked
  generalisation, Wolpert 1992, "Stacked generalization", Neural Networks 5(2):241-259; with
  non-negative combination weights as in Breiman 1996, "Stacked regressions", Machine Learning
  24:49-64). The weights are fitted jointly on the votes, so two jurors that always vote
  together share the weight one of them would get: correlation is priced in.

Pure functions: no database, no trust records; the trust layer feeds them ``Ballot`` rows.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.deliberation.vote import weighted_vote

Weights = dict[str, float]

STACKING_L2 = 1.0
STACKING_STEPS = 200
PRIOR = 1.0  # Beta(1, 1) pseudo-counts for a juror's accuracy (Laplace's rule)


@dataclass(frozen=True, slots=True)
class Ballot:
    """One recorded verdict: each juror's final position (None: failed), and the outcome."""

    positions: Mapping[str, str | None]
    options: tuple[str, ...]
    correct: str


def vote(ballot: Ballot, weights: Mapping[str, float]) -> tuple[str | None, float]:
    """Return the weighted vote's winner on a ballot (None: nobody voted) and its share."""
    full = {juror: weights.get(juror, 0.0) for juror in ballot.positions}
    result = weighted_vote(ballot.positions, full, ballot.options)
    return result.winner, result.share


def decide(ballot: Ballot, weights: Mapping[str, float]) -> str | None:
    """Return the weighted vote's winner on a ballot (None when no juror voted)."""
    return vote(ballot, weights)[0]


def _distinct(ballots: Sequence[Ballot]) -> Counter[Ballot]:
    """Count identical ballots: a panel's votes take few distinct patterns."""
    return Counter(
        Ballot(positions=_Frozen(b.positions), options=b.options, correct=b.correct)
        for b in ballots
    )


class _Frozen(dict[str, str | None]):
    """A hashable mapping of positions, so identical ballots can be counted together."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda item: item[0])))


def accuracy(ballots: Sequence[Ballot], weights: Mapping[str, float]) -> float:
    """Return the share of ballots the weights decide correctly (undecided counts wrong)."""
    return _accuracy(_distinct(ballots), weights)


def _accuracy(distinct: Counter[Ballot], weights: Mapping[str, float]) -> float:
    total = sum(distinct.values())
    right = sum(count * (decide(b, weights) == b.correct) for b, count in distinct.items())
    return right / total if total else 0.0


def jurors_of(ballots: Sequence[Ballot]) -> list[str]:
    """Return every juror seen on the ballots, sorted."""
    return sorted({juror for ballot in ballots for juror in ballot.positions})


def log_odds_weight(accuracy: float, options_count: int) -> float:
    """Return log(p/(1-p)) + log(k-1): the optimal vote weight of an independent juror."""
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"accuracy must lie strictly in (0, 1), got {accuracy}")
    if options_count < 2:
        raise ValueError(f"need at least 2 options, got {options_count}")
    return math.log(accuracy / (1.0 - accuracy)) + math.log(options_count - 1)


def juror_accuracy(ballots: Sequence[Ballot], juror: str) -> float:
    """Return a juror's posterior-mean accuracy on the ballots it voted on (Beta(1, 1) prior)."""
    voted = [b for b in ballots if b.positions.get(juror) is not None]
    right = sum(b.positions[juror] == b.correct for b in voted)
    return (right + PRIOR) / (len(voted) + 2 * PRIOR)


def _options_count(ballots: Sequence[Ballot]) -> int:
    counts = Counter(len(b.options) for b in ballots)
    return counts.most_common(1)[0][0] if counts else 2


def majority_rule(ballots: Sequence[Ballot]) -> Weights:
    """Return equal weights: the plain majority."""
    return dict.fromkeys(jurors_of(ballots), 1.0)


def single_rule(ballots: Sequence[Ballot], juror: str) -> Weights:
    """Return the weights that let ``juror`` alone decide."""
    return {name: 1.0 if name == juror else 0.0 for name in jurors_of(ballots)}


def best_single(ballots: Sequence[Ballot]) -> str:
    """Return the juror with the most right answers on the ballots (ties: by name)."""
    jurors = jurors_of(ballots)
    return max(jurors, key=lambda j: (accuracy(ballots, single_rule(ballots, j)), -jurors.index(j)))


def log_odds_rule(ballots: Sequence[Ballot], jurors: Sequence[str] | None = None) -> Weights:
    """Return independent log-odds weights (clipped at 0) for ``jurors``, 0 for the others."""
    k = _options_count(ballots)
    chosen = set(jurors if jurors is not None else jurors_of(ballots))
    return {
        name: max(log_odds_weight(juror_accuracy(ballots, name), k), 0.0) if name in chosen else 0.0
        for name in jurors_of(ballots)
    }


def subset_rule(ballots: Sequence[Ballot], *, min_size: int = 2) -> Weights:
    """Return log-odds weights inside the subset of jurors that decides the ballots best."""
    jurors = jurors_of(ballots)
    distinct = _distinct(ballots)
    full = log_odds_rule(ballots)
    best: tuple[float, int, Weights] | None = None
    for size in range(min(min_size, len(jurors)), len(jurors) + 1):
        for subset in itertools.combinations(jurors, size):
            weights = {name: full[name] if name in subset else 0.0 for name in jurors}
            # Ties go to the smaller subset: fewer jurors, less to go wrong.
            score = (_accuracy(distinct, weights), -size)
            if best is None or score > best[:2]:
                best = (score[0], score[1], weights)
    return best[2] if best is not None else majority_rule(ballots)


def stacking_rule(
    ballots: Sequence[Ballot], *, l2: float = STACKING_L2, steps: int = STACKING_STEPS
) -> Weights:
    """Fit non-negative weights w maximising the conditional-logit likelihood of the outcome.

    P(option o) is proportional to exp(sum of w_j over the jurors voting o), the weighted vote
    made probabilistic; the penalty is l2/2 * |w|^2. Projected gradient descent, from zero.
    """
    jurors = jurors_of(ballots)
    patterns = Counter(
        (tuple(b.positions.get(j) for j in jurors), b.options, b.correct) for b in ballots
    )
    weights = [0.0] * len(jurors)
    n = max(len(ballots), 1)
    rate = 1.0
    for _ in range(steps):
        gradient = [l2 * w / n for w in weights]
        for (votes, options, correct), count in patterns.items():
            scores = dict.fromkeys(options, 0.0)
            for w, vote in zip(weights, votes, strict=True):
                if vote is not None:
                    scores[vote] += w
            top = max(scores.values())
            exp = {o: math.exp(s - top) for o, s in scores.items()}
            total = sum(exp.values())
            for index, vote in enumerate(votes):
                if vote is not None:
                    gradient[index] += count * (exp[vote] / total - (vote == correct)) / n
        weights = [max(w - rate * g, 0.0) for w, g in zip(weights, gradient, strict=True)]
    return dict(zip(jurors, weights, strict=True))
