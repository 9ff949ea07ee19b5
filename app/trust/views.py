"""Render stored trust rows as API shapes (times in UTC, enums typed)."""

from __future__ import annotations

from app.core.clock import as_utc
from app.trust.models import Proposal, ProposalKind, ProposalStatus
from app.trust.schemas import (
    ProposalOut,
    ProposalSummary,
    ReplayOut,
    RuleSelectionOut,
    WeightChange,
)


def proposal_out(row: Proposal) -> ProposalOut:
    """Render a stored proposal."""
    assert row.id is not None
    return ProposalOut(
        id=row.id,
        kind=ProposalKind(row.kind),
        status=ProposalStatus(row.status),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        unsupervised=row.unsupervised,
        reason=row.reason,
        base_version=row.base_version,
        target_version=row.target_version,
        weights=row.weights,
        models=row.models,
        calibration=row.calibration,
        calibration_models=row.calibration_models,
        evidence=row.evidence,
        replay=ReplayOut.model_validate(row.replay),
        changes=[WeightChange.model_validate(change) for change in row.changes],
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at) if row.decided_at else None,
        comment=row.comment,
        version=row.version,
        rules=row.rules,
        selection={
            category: RuleSelectionOut.model_validate(table)
            for category, table in row.evidence.get("selection", {}).items()
        },
    )


def proposal_summary(row: Proposal) -> ProposalSummary:
    """Render a proposal for a list."""
    assert row.id is not None
    replay = ReplayOut.model_validate(row.replay)
    return ProposalSummary(
        id=row.id,
        kind=ProposalKind(row.kind),
        status=ProposalStatus(row.status),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        unsupervised=row.unsupervised,
        reason=row.reason,
        base_version=row.base_version,
        target_version=row.target_version,
        accuracy_active=replay.accuracy_active,
        accuracy_proposed=replay.accuracy_proposed,
        flipped=len(replay.flipped),
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at) if row.decided_at else None,
        version=row.version,
    )
