"""Plain input records for the trust statistics layer (no database types)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.deliberation.vote import ALL_CATEGORIES


class JurorRecord(BaseModel):
    """One juror's first and last positions on a recorded verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    # None means the juror failed in that round (timeout, invalid output, ...).
    round1_position: str | None = None
    final_position: str | None = None
    round1_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    final_confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @property
    def key(self) -> tuple[str, str]:
        """Return the (name, model id) key that trust statistics are kept under."""
        return (self.name, self.model)


class OutcomeRecord(BaseModel):
    """A recorded verdict whose real outcome (the correct option) is known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict_id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    options: tuple[str, ...] = Field(min_length=2)
    correct: str
    jurors: tuple[JurorRecord, ...] = ()
    judge_verdict: str | None = None
    judge_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    round1_majority: str | None = None
    final_majority: str | None = None
    weighted_vote: str | None = None
    # When the verdict was decided; only the rollback check needs it.
    decided_at: datetime | None = None
    # What cross-validation folds keep together: both presentations of one item.
    group: str | None = None

    @model_validator(mode="after")
    def _check_labels(self) -> Self:
        """Reject labels outside the options so that accuracy cannot be silently miscounted."""
        if self.category == ALL_CATEGORIES:
            raise ValueError(f"category {ALL_CATEGORIES!r} is reserved for the all-categories cell")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be unique")
        labels = [self.correct, self.judge_verdict, self.round1_majority, self.final_majority]
        labels.append(self.weighted_vote)
        for juror in self.jurors:
            labels += [juror.round1_position, juror.final_position]
        unknown = {label for label in labels if label is not None} - set(self.options)
        if unknown:
            raise ValueError(f"labels not among the options: {sorted(unknown)}")
        names = [juror.name for juror in self.jurors]
        if len(set(names)) != len(names):
            raise ValueError("juror names must be unique within a verdict")
        return self


class PanelRecord(Protocol):
    """What an agreement-only estimate reads of a verdict: no outcome is needed."""

    @property
    def category(self) -> str:
        """Return the verdict's category."""
        ...

    @property
    def options(self) -> tuple[str, ...]:
        """Return the verdict's options."""
        ...

    @property
    def jurors(self) -> tuple[JurorRecord, ...]:
        """Return the jurors' positions."""
        ...


class VerdictRecord(BaseModel):
    """A recorded verdict's juror positions, with or without a known outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict_id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    options: tuple[str, ...] = Field(min_length=2)
    jurors: tuple[JurorRecord, ...] = ()
