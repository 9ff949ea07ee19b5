"""Guaranteed-risk thresholds by fixed-sequence testing (Trust or Escalate, arXiv 2407.18370).

For a category, Jung et al.'s procedure picks the lowest confidence threshold t such that,
among verdicts whose calibrated confidence is at least t (the *covered* ones), the error rate
is at most alpha with probability at least 1 - delta. Thresholds are tested from the highest
down, in a sequence fixed before looking at the outcomes; each test rejects "risk(t) > alpha"
when the exact binomial p-value P(Bin(n_t, alpha) <= errors_t) is at most delta, and testing
stops at the first threshold it cannot reject. Fixed-sequence testing needs no multiplicity
correction, so the whole chain keeps the 1 - delta guarantee. A threshold that covers no
verdict is skipped (it makes no error to control). None rejected: no guarantee holds yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

GRID_STEP = 0.01
GRID: tuple[float, ...] = tuple(
    round(1.0 - i * GRID_STEP, 2) for i in range(int(1 / GRID_STEP) + 1)
)
"""The fixed sequence: 1.00, 0.99, …, 0.00."""

Pairs = Sequence[tuple[float, bool]]


class RiskThreshold(BaseModel):
    """The chosen threshold of one category and the evidence it rests on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(gt=0, lt=1)
    delta: float = Field(gt=0, lt=1)
    threshold: float | None = Field(description="None: no threshold passed, no guarantee yet")
    n: int = Field(description="outcomes the test ran on")
    covered: int = Field(description="outcomes at or above the threshold")
    errors: int = Field(description="wrong verdicts among the covered ones")
    p_value: float | None = Field(description="p-value of the last threshold accepted")


def binomial_cdf(k: int, n: int, p: float) -> float:
    """Return P(X <= k) for X ~ Binomial(n, p), summed exactly in log space."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        total += math.exp(log_term)
    return min(total, 1.0)


def fixed_sequence_threshold(
    pairs: Pairs, *, alpha: float, delta: float, grid: Sequence[float] = GRID
) -> RiskThreshold:
    """Return the lowest threshold of ``grid`` (tested high to low) whose risk is <= alpha."""
    accepted: float | None = None
    accepted_p: float | None = None
    covered = errors = 0
    for level in grid:
        inside = [hit for confidence, hit in pairs if confidence >= level]
        if not inside:
            continue
        wrong = sum(not hit for hit in inside)
        p_value = binomial_cdf(wrong, len(inside), alpha)
        if p_value > delta:
            break
        accepted, accepted_p, covered, errors = level, p_value, len(inside), wrong
    return RiskThreshold(
        alpha=alpha,
        delta=delta,
        threshold=accepted,
        n=len(pairs),
        covered=covered,
        errors=errors,
        p_value=accepted_p,
    )
