"""The per-verdict budget: skip a rebuttal round that would take the verdict past its cap."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.deliberation.calls import CallOutcome


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens and dollars, spent or held."""

    tokens: int = 0
    usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.tokens + other.tokens, self.usd + other.usd)

    def __sub__(self, other: Spend) -> Spend:
        return Spend(self.tokens - other.tokens, self.usd - other.usd)


def spend_of(outcomes: Iterable[CallOutcome[Any]]) -> Spend:
    """Return the tokens and dollars of some calls."""
    tokens = 0
    usd = 0.0
    for outcome in outcomes:
        tokens += outcome.prompt_tokens + outcome.completion_tokens
        usd += outcome.cost_usd
    return Spend(tokens=tokens, usd=usd)


@dataclass(frozen=True, slots=True)
class RoundBudget:
    """A verdict's caps; None: no cap of that kind."""

    tokens: int | None = None
    usd: float | None = None

    def allows_next(self, spent: Spend, last_round: Spend) -> bool:
        """Return whether a round costing what the last one did keeps the verdict in budget.

        Rebuttal prompts carry the other jurors' arguments, so the estimate errs low rather
        than high; the judge's call is not budgeted here, as a verdict needs its decider.
        """
        projected = spent + last_round
        if self.tokens is not None and projected.tokens > self.tokens:
            return False
        return not (self.usd is not None and projected.usd > self.usd)
