"""Database tables of the trust record: outcomes, weights versions, proposals, audit log.

History is never rewritten: a corrected outcome is a new row that supersedes the old one, a
rollback is a new activation of an older version, and every step is an audit row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.clock import utcnow
from app.verdicts.record.tables import JsonType


class OutcomeSource(StrEnum):
    """Who says which option turned out to be right."""

    AGENT = "agent"
    REVIEWER = "reviewer"
    DATASET = "dataset"


class ProposalKind(StrEnum):
    """What a proposal would change once approved."""

    WEIGHTS = "weights"
    CALIBRATION = "calibration"
    ROLLBACK = "rollback"


class ProposalStatus(StrEnum):
    """Where a proposal stands; only ``proposed`` can move, and only once."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class ActivationAction(StrEnum):
    """How a weights version became active."""

    APPROVE = "approve"
    ROLLBACK = "rollback"


def _when(*, index: bool = False) -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=index),
    )


class Outcome(SQLModel, table=True):
    """The correct option of a verdict; a correction is a new row with the next revision."""

    __tablename__ = "outcomes"
    # One row per (verdict, revision): two concurrent first outcomes (or two corrections of
    # the same one) cannot both be stored; the loser gets a 409.
    __table_args__ = (UniqueConstraint("verdict_id", "revision", name="uq_outcomes_revision"),)

    id: int | None = Field(default=None, primary_key=True)
    verdict_id: str = Field(
        sa_column=Column(String(36), ForeignKey("verdicts.id"), index=True, nullable=False)
    )
    revision: int = Field(ge=1)
    correct_option: str = Field(max_length=200)
    source: str = Field(max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_by: str = Field(max_length=128)
    recorded_at: datetime = _when()
    supersedes_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("outcomes.id"), nullable=True)
    )


class WeightsVersion(SQLModel, table=True):
    """An approved, immutable set of juror weights and confidence calibration maps."""

    __tablename__ = "weights_versions"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    created_at: datetime = _when()
    created_by: str = Field(max_length=128)
    proposal_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("trust_proposals.id"), nullable=True),
    )
    # {category: {juror name: weight}}; "*" holds each juror's global weight.
    weights: dict[str, dict[str, float]] = Field(sa_column=Column(JsonType, nullable=False))
    # {juror name: model id} the weights were learned for (the drift guard compares it).
    models: dict[str, str] = Field(sa_column=Column(JsonType, nullable=False))
    # {category: {"x": [...], "y": [...]}} isotonic maps of the verdict confidence.
    calibration: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JsonType, nullable=False)
    )
    # {judge name: model id} the calibration was fitted for.
    calibration_models: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JsonType, nullable=False)
    )
    # {category: {"rule", "verdict_source", "risk": {...}}}: the rule chosen by evidence.
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))


class WeightsActivation(SQLModel, table=True):
    """A version becoming the active one; the latest row is in force (NULL = neutral)."""

    __tablename__ = "weights_activations"

    id: int | None = Field(default=None, primary_key=True)
    version: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("weights_versions.version"), nullable=True),
    )
    activated_at: datetime = _when()
    activated_by: str = Field(max_length=128)
    action: str = Field(max_length=16)
    proposal_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("trust_proposals.id"), nullable=True),
    )
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Proposal(SQLModel, table=True):
    """A proposed change to the trust settings, with its evidence and replay, and its fate."""

    __tablename__ = "trust_proposals"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    created_at: datetime = _when()
    created_by: str = Field(max_length=128)
    unsupervised: bool = False
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The activation in force when the proposal was made: its evidence compares against it.
    activation_id: int | None = None
    base_version: int | None = None
    # For a rollback proposal: the version it would restore (None = neutral).
    target_version: int | None = None
    weights: dict[str, dict[str, float]] = Field(sa_column=Column(JsonType, nullable=False))
    models: dict[str, str] = Field(sa_column=Column(JsonType, nullable=False))
    calibration: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JsonType, nullable=False)
    )
    calibration_models: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JsonType, nullable=False)
    )
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
    evidence: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    replay: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JsonType, nullable=False)
    )
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The version that approving this proposal created (or, for a rollback, restored).
    version: int | None = None


class AuditEntry(SQLModel, table=True):
    """One step of the trust workflow: who, when, what, why."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=40)
    subject: str = Field(max_length=128)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonType, nullable=False))
