"""Request and response shapes of the trust API: outcomes, statistics, weights, proposals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.core.bounds import Count, RequestModel, RowId
from app.core.pages import Page
from app.trust.calibration import CalibrationMap
from app.trust.models import OutcomeSource, ProposalKind, ProposalStatus
from app.trust.replay import Flip
from app.trust.risk import RiskThreshold
from app.trust.selection import CandidateScore
from app.trust.statistics import DeciderCellStats, JurorCellStats
from app.trust.weights import DroppedWeights

Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
WeightsTable = dict[str, dict[str, float]]


class Request(RequestModel):
    """Base of request bodies: unknown fields are a mistake, not something to ignore."""


# --- outcomes ------------------------------------------------------------------------------


class OutcomeCreate(Request):
    """What turned out to be right for a verdict, and who says so."""

    correct_option: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    source: OutcomeSource
    note: str | None = Field(default=None, max_length=4000)
    corrects: bool | RowId | None = Field(
        default=None,
        description="true (or the id of the outcome corrected) to replace the recorded outcome.",
    )
    reported_by: Actor | None = Field(default=None, description="Who reports it (audit log).")

    @field_validator("corrects")
    @classmethod
    def _corrects_is_true_or_an_id(cls, value: bool | int | None) -> bool | int | None:
        if value is False:
            return None
        if not isinstance(value, bool) and isinstance(value, int) and value < 1:
            raise ValueError("corrects must be true or the id of the outcome corrected")
        return value


class OutcomeOut(BaseModel):
    """A recorded outcome; corrections are new rows that supersede the old one."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    verdict_id: str
    correct_option: str
    source: OutcomeSource
    note: str | None
    recorded_by: str
    recorded_at: datetime
    revision: int
    supersedes_id: int | None
    corrected: bool = Field(default=False, description="A later outcome replaced this one.")
    rollback_proposal_id: int | None = Field(
        default=None, description="A rollback proposal this outcome triggered, if any."
    )


class OutcomeHistory(BaseModel):
    """Every outcome of a verdict, newest (the one in force) first."""

    verdict_id: str
    current: OutcomeOut | None
    items: list[OutcomeOut]


# --- statistics and weights ----------------------------------------------------------------


class JurorCellOut(JurorCellStats):
    """A juror cell, marked when its model is no longer the configured one."""

    current_model: bool = Field(description="The record's model id is the configured one.")


class StatsOut(BaseModel):
    """Trust statistics per juror (name and model id), judge and baseline, per category."""

    weights_version: int | None
    n_records: int
    categories: list[str]
    jurors: list[JurorCellOut]
    deciders: list[DeciderCellStats]
    configured_models: dict[str, str]
    drift: list[DroppedWeights] = Field(
        description="Active weights that do not apply: their juror's model id changed."
    )


class WeightsOut(BaseModel):
    """The weights in force: neutral (version null) until a version is approved."""

    version: int | None
    weights: WeightsTable = Field(description="{category: {juror: weight}} after the drift guard")
    models: dict[str, str]
    calibration: dict[str, CalibrationMap]
    calibration_models: dict[str, str]
    activated_at: datetime | None
    activated_by: str | None
    action: str | None
    drift: list[DroppedWeights]


class VersionOut(BaseModel):
    """One approved weights version."""

    version: int
    created_at: datetime
    created_by: str
    proposal_id: int | None
    weights: WeightsTable
    models: dict[str, str]
    calibration_categories: list[str]
    active: bool


# --- proposals -----------------------------------------------------------------------------


class ProposalCreate(Request):
    """Ask for a proposal computed from the record; nothing is applied by proposing."""

    kind: ProposalKind = ProposalKind.WEIGHTS
    created_by: Actor = "api"
    reason: str | None = Field(default=None, max_length=4000)
    min_evidence: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Outcomes a cell (weights) or a category's map (calibration) needs.",
    )
    shrinkage: float | None = Field(default=None, ge=0, le=100_000)
    own_rule_p: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="The one-sided sign test's p at which a category's own rule replaces the "
        "pooled one on its items (default 0.05; 1 keeps any strict lead).",
    )
    unsupervised: bool | None = Field(
        default=None,
        description="Estimate weights from agreement alone (Dawid-Skene). Default: only when "
        "no outcome is recorded.",
    )

    @field_validator("kind")
    @classmethod
    def _not_rollback(cls, value: ProposalKind) -> ProposalKind:
        if value is ProposalKind.ROLLBACK:
            raise ValueError(
                "rollback proposals come from the rollback check; to roll back now "
                "use POST /trust/weights/rollback"
            )
        return value


class Decision(Request):
    """A reviewer's approval or rejection."""

    reviewer: Actor
    comment: Comment


class RollbackRequest(Request):
    """Restore an earlier weights version (0: the neutral weights)."""

    version: Count
    reviewer: Actor
    comment: Comment


class ReplayOut(BaseModel):
    """Recorded verdicts with known outcomes re-decided under the active and proposed sets."""

    n: int = 0
    undecidable: int = 0
    correct_active: int = 0
    correct_proposed: int = 0
    accuracy_active: float | None = None
    accuracy_proposed: float | None = None
    flipped: list[str] = Field(default_factory=list, description="Verdict ids that would flip.")
    flips: list[Flip] = Field(default_factory=list)
    # Calibration proposals change confidences, not decisions.
    ece_active: float | None = None
    ece_proposed: float | None = None
    brier_active: float | None = None
    brier_proposed: float | None = None


class WeightChange(BaseModel):
    """A juror's effective weight in a category, active against proposed."""

    category: str
    juror: str
    active: float
    proposed: float
    change: float


class RuleSelectionOut(BaseModel):
    """One category's comparison of candidate rules by K-fold cross-validation, and its choice.

    ``candidates`` lists every rule scored: ``single:<juror>`` (each juror alone), ``judge``
    (where there is one), ``best_single``, ``majority``, ``log_odds``, ``best_subset`` and
    ``stacking``, each with its CV accuracy, 95% Wilson interval and n. ``chosen`` is never
    below the best single juror. ``risk`` is the guaranteed-risk threshold fixed-sequence
    testing picked on the chosen rule's calibrated held-out confidence; ``ece`` that
    confidence's calibration error before and after the map.
    """

    category: str
    n: int
    folds: int
    best_single: str
    chosen: str
    verdict_source: str
    weights: dict[str, float]
    candidates: list[CandidateScore]
    risk: RiskThreshold
    ece: dict[str, float | None] = Field(default_factory=dict)


class ProposalOut(BaseModel):
    """A proposal with its evidence, replay and fate."""

    id: int
    kind: ProposalKind
    status: ProposalStatus
    created_at: datetime
    created_by: str
    unsupervised: bool
    reason: str | None
    base_version: int | None
    target_version: int | None
    weights: WeightsTable
    models: dict[str, str]
    calibration: dict[str, Any]
    calibration_models: dict[str, str]
    evidence: dict[str, Any]
    replay: ReplayOut
    changes: list[WeightChange]
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    version: int | None = Field(description="The version its approval created or restored.")
    rules: dict[str, Any] = Field(
        default_factory=dict,
        description="{category: {rule, verdict_source, risk}} that approval puts in force.",
    )
    selection: dict[str, RuleSelectionOut] = Field(
        default_factory=dict, description="Per category: the cross-validated comparison table."
    )


class ProposalSummary(BaseModel):
    """A proposal as listed: its fate and the replay's headline numbers."""

    id: int
    kind: ProposalKind
    status: ProposalStatus
    created_at: datetime
    created_by: str
    unsupervised: bool
    reason: str | None
    base_version: int | None
    target_version: int | None
    accuracy_active: float | None
    accuracy_proposed: float | None
    flipped: int
    decided_by: str | None
    decided_at: datetime | None
    version: int | None


class ProposalPage(Page[ProposalSummary]):
    """One page of proposals, newest first."""


# --- audit ---------------------------------------------------------------------------------


class AuditOut(BaseModel):
    """One step of the trust workflow."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    detail: dict[str, Any]


class AuditPage(Page[AuditOut]):
    """Audit entries, newest first."""
