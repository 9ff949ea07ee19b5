"""Replay recorded verdicts under the active and the proposed weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.deliberation.vote import VoteResult, WeightsTable, weight_for, weighted_vote
from app.trust.records import OutcomeRecord


class Flip(BaseModel):
    """A verdict whose weighted-vote decision differs between the two tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict_id: str
    category: str
    active: str
    proposed: str
    correct: str
    correct_side: Literal["active", "proposed", "neither"]


class Replay(BaseModel):
    """Accuracy of the weighted vote over final positions under both tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(description="records with at least one valid final position")
    undecidable: int = Field(description="records where no juror gave a final position")
    correct_active: int
    correct_proposed: int
    accuracy_active: float | None
    accuracy_proposed: float | None
    flips: tuple[Flip, ...]


def decide(record: OutcomeRecord, table: WeightsTable) -> VoteResult:
    """Decide one record by the weighted vote of its jurors' final positions under a table."""
    positions = {j.name: j.final_position for j in record.jurors}
    weights = {j.name: weight_for(table, record.category, j.name) for j in record.jurors}
    confidences = {
        j.name: j.final_confidence for j in record.jurors if j.final_confidence is not None
    }
    return weighted_vote(positions, weights, record.options, confidences)


def _flip(record: OutcomeRecord, active: str, proposed: str) -> Flip:
    """Describe a flipped decision and which side of it was right."""
    side: Literal["active", "proposed", "neither"] = "neither"
    if active == record.correct:
        side = "active"
    elif proposed == record.correct:
        side = "proposed"
    return Flip(
        verdict_id=record.verdict_id,
        category=record.category,
        active=active,
        proposed=proposed,
        correct=record.correct,
        correct_side=side,
    )


def replay(
    records: Sequence[OutcomeRecord], *, active: WeightsTable, proposed: WeightsTable
) -> Replay:
    """Re-decide every record under both tables and list the decisions that flip."""
    n = undecidable = correct_active = correct_proposed = 0
    flips: list[Flip] = []
    for record in records:
        before = decide(record, active).winner
        after = decide(record, proposed).winner
        if before is None or after is None:
            undecidable += 1
            continue
        n += 1
        correct_active += before == record.correct
        correct_proposed += after == record.correct
        if before != after:
            flips.append(_flip(record, before, after))
    return Replay(
        n=n,
        undecidable=undecidable,
        correct_active=correct_active,
        correct_proposed=correct_proposed,
        accuracy_active=correct_active / n if n else None,
        accuracy_proposed=correct_proposed / n if n else None,
        flips=tuple(flips),
    )
