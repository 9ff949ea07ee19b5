"""Simulation: two correlated copies of a weak juror against one strong independent juror.

Independent log-odds weights count the two copies as two votes, so where they agree with each
other and disagree with the strong juror they outvote it, although they are worth one vote.
The rule chosen by cross-validation (app.trust.selection) must not fall for it: on held-out
items, the copies never outvote the strong juror.

    uv run python -m eval.correlated
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.deliberation.rules import Ballot, decide, log_odds_rule
from app.trust.selection import Case, CategorySelection, select_rule

OPTIONS = ("A", "B")
STRONG, COPY_1, COPY_2 = "strong", "weak-1", "weak-2"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the chosen rule and independent log-odds did where the copies opposed the strong."""

    selection: CategorySelection
    disputed: int
    copies_won_chosen: int
    copies_won_log_odds: int


def ballots(n: int, *, seed: int, strong: float = 0.8, weak: float = 0.7) -> list[Ballot]:
    """Draw ``n`` ballots: the strong juror right with p ``strong``, both copies identical."""
    rng = random.Random(seed)
    drawn = []
    for _ in range(n):
        correct = rng.choice(OPTIONS)
        wrong = OPTIONS[1 - OPTIONS.index(correct)]
        weak_vote = correct if rng.random() < weak else wrong
        strong_vote = correct if rng.random() < strong else wrong
        positions = {STRONG: strong_vote, COPY_1: weak_vote, COPY_2: weak_vote}
        drawn.append(Ballot(positions=positions, options=OPTIONS, correct=correct))
    return drawn


def run(*, n_train: int = 400, n_test: int = 400, seed: int = 0) -> Outcome:
    """Choose the rule on a training sample; count where the copies win on a test sample."""
    train = ballots(n_train, seed=seed)
    test = ballots(n_test, seed=seed + 1)
    cases = [Case(ballot=b, group=str(i)) for i, b in enumerate(train)]
    selection = select_rule("simulated", cases)
    independent = log_odds_rule(train)
    disputed = [b for b in test if b.positions[COPY_1] != b.positions[STRONG]]
    return Outcome(
        selection=selection,
        disputed=len(disputed),
        copies_won_chosen=sum(
            decide(b, selection.weights) == b.positions[COPY_1] for b in disputed
        ),
        copies_won_log_odds=sum(decide(b, independent) == b.positions[COPY_1] for b in disputed),
    )


def main() -> None:
    """Print the study for a few seeds."""
    for seed in range(5):
        outcome = run(seed=seed)
        print(
            f"seed {seed}: chosen {outcome.selection.chosen}; of {outcome.disputed} held-out "
            f"items where the copies oppose the strong juror they win {outcome.copies_won_chosen}"
            f" under the chosen rule, {outcome.copies_won_log_odds} under independent log-odds"
        )


if __name__ == "__main__":
    main()
