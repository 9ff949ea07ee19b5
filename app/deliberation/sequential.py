"""Cost-aware sequential verdicts: convene jurors cheapest first, stop once the rest cannot matter.

In a category with ``sequential: true`` round 1 does not ask the whole panel at once. Jurors
are convened in order of cost, and after each answer the approved aggregation rule's weights
(the weights the verdict's weighted vote uses, ``app.deliberation.vote``) decide whether to
call the next one. Convening stops, once the panel's quorum of valid positions is in, when

- ``settled``: the leading option is ahead of every other by more than the summed weight of
  the jurors not yet convened, so the full panel's weighted vote could not pick another
  option whatever they said (no accuracy is lost against the full panel);
- ``target``: the posterior of the leading option reaches the category's target (its approved
  guaranteed-risk threshold where one exists);

and otherwise when nobody is left (``panel_exhausted``) or the deadline passed (``deadline``).

The posterior reads the weights as log-likelihood ratios: P(option) is proportional to
exp(sum of the weights of the jurors voting for it). That is exact for log-odds weights
(independent jurors of accuracy p weigh log(p/(1-p)) + log(k-1), Nitzan and Paroush 1982) and
is the model the stacking rule fits; for the plain majority (weight 1) it treats each juror as
right with probability e/(e+1), about 0.73 on two options.

A juror whose approved weight is 0 cannot move the posterior, so jurors with a weight go first
(cheapest first) and weightless ones last (cheapest first), convened only to reach the quorum
or when the weighted ones leave the question open. Pure functions: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from app.deliberation.vote import NEUTRAL_WEIGHT, effective_weight

StopConvening = Literal["settled", "target", "panel_exhausted", "deadline"]
TargetSource = Literal["policy", "risk"]


@dataclass(frozen=True, slots=True)
class SequentialPlan:
    """How a sequential verdict convenes: in which order, by which weights, up to what target."""

    order: tuple[str, ...]
    weights: Mapping[str, float]
    target: float
    target_source: TargetSource = "policy"


@dataclass(frozen=True, slots=True)
class Standing:
    """Where the convened jurors' valid positions leave the question."""

    leader: str | None
    posterior: float
    margin: float
    remaining_weight: float


@dataclass(frozen=True, slots=True)
class Convening:
    """Who a sequential verdict convened, in order, and why it stopped convening."""

    order: tuple[str, ...]
    convened: tuple[str, ...]
    stop: StopConvening
    leader: str | None
    posterior: float
    target: float
    target_source: TargetSource


def weight_of(weights: Mapping[str, float], juror: str) -> float:
    """Return a juror's effective weight (neutral when the rule does not name it)."""
    return effective_weight(weights.get(juror, NEUTRAL_WEIGHT))


def convening_order(
    jurors: Sequence[str], costs: Mapping[str, float], weights: Mapping[str, float]
) -> tuple[str, ...]:
    """Return the jurors in convening order: weighted ones before weightless, cheapest first.

    Ties keep the panel's order, so the order is deterministic.
    """
    rank = {name: index for index, name in enumerate(jurors)}
    return tuple(
        sorted(
            jurors,
            key=lambda j: (weight_of(weights, j) == 0.0, costs.get(j, 0.0), rank[j]),
        )
    )


def scores(
    positions: Mapping[str, str], weights: Mapping[str, float], options: Sequence[str]
) -> dict[str, float]:
    """Return the summed effective weight behind each option."""
    totals = dict.fromkeys(options, 0.0)
    for juror, position in positions.items():
        totals[position] += weight_of(weights, juror)
    return totals


def posterior(totals: Mapping[str, float]) -> dict[str, float]:
    """Return P(option) proportional to exp(its summed weight) (uniform without weight)."""
    top = max(totals.values())
    exp = {option: math.exp(score - top) for option, score in totals.items()}
    norm = sum(exp.values())
    return {option: value / norm for option, value in exp.items()}


def standing(
    positions: Mapping[str, str],
    remaining: Sequence[str],
    weights: Mapping[str, float],
    options: Sequence[str],
) -> Standing:
    """Return the leader, its posterior, its lead over the runner-up and the weight still out."""
    totals = scores(positions, weights, options)
    ranked = sorted(options, key=lambda o: (-totals[o], options.index(o)))
    lead = totals[ranked[0]]
    # No weight behind any option yet: nobody leads.
    leader = ranked[0] if lead > 0.0 else None
    runner_up = totals[ranked[1]] if len(ranked) > 1 else 0.0
    return Standing(
        leader=leader,
        posterior=posterior(totals)[ranked[0]],
        margin=lead - runner_up,
        remaining_weight=sum(weight_of(weights, j) for j in remaining),
    )


def stop_convening(
    positions: Mapping[str, str],
    remaining: Sequence[str],
    plan: SequentialPlan,
    options: Sequence[str],
    *,
    quorum: int,
    deadline_passed: bool = False,
) -> tuple[StopConvening | None, Standing]:
    """Decide, from the valid positions so far, whether to stop convening (None: call the next).

    ``positions`` holds only valid answers: a failed juror casts no vote and counts nothing
    towards the quorum. Below the quorum convening goes on while anyone is left.
    """
    now = standing(positions, remaining, plan.weights, options)
    if not remaining:
        return "panel_exhausted", now
    if deadline_passed:
        return "deadline", now
    if len(positions) < quorum:
        return None, now
    # Strictly ahead: a tie could go either way on the tie-break by confidence.
    if now.leader is not None and now.margin > now.remaining_weight:
        return "settled", now
    if now.leader is not None and now.posterior >= plan.target:
        return "target", now
    return None, now
