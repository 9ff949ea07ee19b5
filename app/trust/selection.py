"""Choose each category's aggregation rule by K-fold cross-validation over recorded outcomes.

Every candidate is a procedure (fit on K-1 folds, decide the held-out fold), so no rule is ever
scored on the ballots it was fitted on. The folds keep both presentations of an item together
(its ``group``). A rule is proposed only when its cross-validated accuracy is at least the best
single juror's: evidence must show that trusting the panel beats trusting its best member.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from app.deliberation.rules import (
    Ballot,
    Weights,
    best_single,
    jurors_of,
    log_odds_rule,
    majority_rule,
    single_rule,
    stacking_rule,
    subset_rule,
    vote,
)
from app.deliberation.schemas import VerdictSource

FOLDS = 5
FOLD_SEED = 0
Z95 = 1.959963984540054

Fitter = Callable[[Sequence[Ballot]], Weights]

# Fitted in every fold; "single:<juror>" candidates need no fitting.
FITTED: dict[str, Fitter] = {
    "best_single": lambda ballots: single_rule(ballots, best_single(ballots)),
    "majority": majority_rule,
    "log_odds": log_odds_rule,
    "best_subset": subset_rule,
    "stacking": stacking_rule,
}
# Of rules that score the same, the first listed is proposed: the judge first (the verdict
# source moves away from it only when the evidence shows it worse), then the simplest rule.
PREFERENCE = ("judge", "single", "best_single", "majority", "log_odds", "best_subset", "stacking")
PROPOSABLE = ("best_single", "log_odds", "best_subset", "stacking", "judge")


@dataclass(frozen=True, slots=True)
class Case:
    """A ballot with the group its folds keep together and what the judge said (if any)."""

    ballot: Ballot
    group: str
    judge: str | None = None
    judge_confidence: float | None = None


Prediction = tuple[str | None, float]
"""A held-out decision and its raw confidence (the vote share, or the judge's)."""


class CandidateScore(BaseModel):
    """One candidate rule's cross-validated accuracy in one category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(description="majority, single:<juror>, best_single, log_odds, …")
    accuracy: float
    low: float = Field(description="95% Wilson interval, lower end")
    high: float = Field(description="95% Wilson interval, upper end")
    n: int
    correct: int


class CategorySelection(BaseModel):
    """The comparison in one category, the rule it proposes and where the verdict comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str
    n: int
    folds: int
    candidates: tuple[CandidateScore, ...]
    best_single: str = Field(description="the single-juror candidate with the best accuracy")
    chosen: str
    verdict_source: VerdictSource
    weights: dict[str, float] = Field(description="the chosen rule refitted on every ballot")
    held_out: tuple[tuple[float, bool], ...] = Field(
        default=(),
        exclude=True,
        description="the chosen rule's held-out (raw confidence, right) pairs, for calibration",
    )
    held_out_groups: tuple[str, ...] = Field(
        default=(), exclude=True, description="each held-out pair's group (item), in order"
    )


def wilson(correct: int, n: int) -> tuple[float, float]:
    """Return the 95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = p + Z95**2 / (2 * n)
    spread = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    denominator = 1 + Z95**2 / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def folds_of(cases: Sequence[Case], k: int, *, seed: int = FOLD_SEED) -> list[list[int]]:
    """Split case indices into ``k`` folds by group, deterministically."""
    groups = sorted({case.group for case in cases})
    random.Random(seed).shuffle(groups)
    fold_of = {group: i % k for i, group in enumerate(groups)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for index, case in enumerate(cases):
        folds[fold_of[case.group]].append(index)
    return [fold for fold in folds if fold]


def score(rule: str, correct: int, n: int) -> CandidateScore:
    """Return a candidate's score with its interval."""
    low, high = wilson(correct, n)
    return CandidateScore(
        rule=rule, accuracy=correct / n if n else 0.0, low=low, high=high, n=n, correct=correct
    )


def cross_validate(
    cases: Sequence[Case], fit: Fitter, folds: Sequence[Sequence[int]]
) -> list[Prediction]:
    """Return each case's decision by the rule fitted on the folds that do not hold it."""
    predictions: list[Prediction] = [(None, 0.0)] * len(cases)
    for held in folds:
        held_set = set(held)
        train = [c.ballot for i, c in enumerate(cases) if i not in held_set]
        weights = fit(train)
        for i in held:
            predictions[i] = vote(cases[i].ballot, weights)
    return predictions


def _right(cases: Sequence[Case], predictions: Sequence[Prediction]) -> int:
    return sum(p[0] == c.ballot.correct for c, p in zip(cases, predictions, strict=True))


def _fixed_predictions(cases: Sequence[Case]) -> dict[str, list[Prediction]]:
    """Decide by the rules that learn nothing: each single juror, and the judge if it spoke."""
    ballots = [case.ballot for case in cases]
    rules = {
        f"single:{juror}": [vote(b, single_rule(ballots, juror)) for b in ballots]
        for juror in jurors_of(ballots)
    }
    if any(case.judge is not None for case in cases):
        rules["judge"] = [(c.judge, c.judge_confidence or 0.0) for c in cases]
    return rules


def _rank(candidate: CandidateScore) -> tuple[int, float]:
    family = candidate.rule.split(":", 1)[0]
    return candidate.correct, -PREFERENCE.index(family)


def select_rule(
    category: str, cases: Sequence[Case], *, k: int = FOLDS, seed: int = FOLD_SEED
) -> CategorySelection:
    """Score every candidate by K-fold CV and propose the best; never below the best single."""
    if len(cases) < 2:
        raise ValueError(f"category {category!r}: need at least 2 outcomes to cross-validate")
    folds = folds_of(cases, min(k, len({c.group for c in cases})), seed=seed)
    predictions = _fixed_predictions(cases)
    predictions |= {name: cross_validate(cases, fit, folds) for name, fit in FITTED.items()}
    n = len(cases)
    scores = [score(rule, _right(cases, made), n) for rule, made in predictions.items()]
    singles = [s for s in scores if s.rule.startswith("single:")]
    top_single = max(singles, key=_rank)
    proposable = [s for s in scores if s.rule in PROPOSABLE or s.rule.startswith("single:")]
    chosen = max(proposable, key=_rank)
    # max() over a set that holds every single juror cannot fall below the best of them; the
    # check states the guarantee where a future candidate list could break it.
    assert chosen.correct >= top_single.correct
    ballots = [case.ballot for case in cases]
    source: VerdictSource = "judge" if chosen.rule == "judge" else "weighted_vote"
    held_out = tuple(
        (confidence, winner == case.ballot.correct)
        for case, (winner, confidence) in zip(cases, predictions[chosen.rule], strict=True)
    )
    return CategorySelection(
        category=category,
        n=n,
        folds=len(folds),
        candidates=tuple(scores),
        best_single=top_single.rule.split(":", 1)[1],
        chosen=chosen.rule,
        verdict_source=source,
        weights=_refit(chosen.rule, ballots),
        held_out=held_out,
        held_out_groups=tuple(case.group for case in cases),
    )


def _refit(rule: str, ballots: Sequence[Ballot]) -> Weights:
    """Return the chosen rule's weights from every ballot (the judge keeps log-odds votes)."""
    if rule.startswith("single:"):
        return single_rule(ballots, rule.split(":", 1)[1])
    if rule == "judge":
        # The judge decides; the weighted vote (its fallback and baseline) stays log-odds.
        return log_odds_rule(ballots)
    return FITTED[rule](ballots)
