"""The evidence thresholds of the trust workflow, in one place."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.trust.choice import KEEP_OWN_P


class TrustPolicy(BaseModel):
    """How much evidence each trust decision needs.

    The defaults suit a service that sees tens of outcomes per category a week: a weight moves
    after 30 outcomes, a calibration map after 50, and a rollback is proposed only when the
    weighted vote is worse after an approval with 95% posterior probability over 30 outcomes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_evidence: int = Field(
        default=30, ge=1, description="Outcomes before a cell's weight moves."
    )
    shrinkage: float = Field(
        default=10.0, ge=0, description="Pseudo-outcomes pulling a category weight to the global."
    )
    calibration_min_evidence: int = Field(default=50, ge=2)
    own_rule_p: float = Field(
        default=KEEP_OWN_P,
        gt=0,
        le=1,
        description="The sign test's p a category's own rule needs to replace the pooled one "
        "(1 keeps any strict lead).",
    )
    rollback_min_after: int = Field(default=30, ge=1)
    rollback_threshold: float = Field(default=0.95, gt=0.5, lt=1.0)
    rollback_window: int = Field(
        default=1000, ge=1, description="Latest outcomes before an approval to compare against."
    )
