"""The trust workflow: statistics, proposals, review, versions, rollback, audit.

``TrustService`` works inside the caller's unit of work (one session per request or command):
it flushes, never commits. Only an approval or a rollback changes the weights in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import as_utc
from app.core.config import JuryConfig
from app.core.errors import ConflictError, ForbiddenError, NotFoundError
from app.core.pages import Window
from app.deliberation.schemas import VerdictOut
from app.trust.active import Effective, effective, juror_models
from app.trust.drift import decider_counts, rollback_check
from app.trust.extract import outcome_record, parse, verdict_record
from app.trust.models import (
    ActivationAction,
    AuditEntry,
    Proposal,
    ProposalKind,
    ProposalStatus,
    WeightsActivation,
    WeightsVersion,
)
from app.trust.policy import TrustPolicy
from app.trust.proposals import (
    Draft,
    calibration_draft,
    rollback_draft,
    unsupervised_draft,
    weights_draft,
)
from app.trust.records import OutcomeRecord
from app.trust.repository import ActiveState, StoredVerdict, TrustRepository
from app.trust.schemas import (
    AuditOut,
    AuditPage,
    JurorCellOut,
    ProposalCreate,
    ProposalOut,
    ProposalPage,
    StatsOut,
    VersionOut,
    WeightsOut,
)
from app.trust.statistics import Decider, compute_stats
from app.trust.views import proposal_out, proposal_summary

SYSTEM_ACTOR = "system"

Recorded = list[tuple[StoredVerdict, VerdictOut]]


class TrustService:
    """Statistics, proposals and their review, weights versions and the audit log."""

    def __init__(
        self, session: AsyncSession, *, config: JuryConfig, policy: TrustPolicy | None = None
    ) -> None:
        self._repo = TrustRepository(session)
        self._config = config
        self.policy = policy or TrustPolicy()

    @property
    def repository(self) -> TrustRepository:
        """Return the repository, for the other trust services of the same unit of work."""
        return self._repo

    # --- reading ---------------------------------------------------------------------------

    async def _current(self) -> tuple[ActiveState, Effective]:
        state = await self._repo.active()
        return state, effective(state, self._config)

    async def _recorded(self, *, category: str | None = None) -> Recorded:
        """Return completed verdicts with a known outcome, parsed, oldest first."""
        rows = await self._repo.verdicts_with_outcomes(category=category)
        return [(row, parse(row)) for row in rows]

    @staticmethod
    def _records(recorded: Recorded) -> list[OutcomeRecord]:
        return [outcome_record(row, verdict) for row, verdict in recorded]

    async def stats(self, *, category: str | None = None) -> StatsOut:
        """Return trust statistics from every verdict with an outcome."""
        _, current = await self._current()
        stats = compute_stats(self._records(await self._recorded(category=category)))
        configured = juror_models(self._config)
        jurors = [
            JurorCellOut.model_validate(
                {**cell.model_dump(), "current_model": configured.get(cell.juror) == cell.model}
            )
            for cell in stats.jurors
        ]
        return StatsOut(
            weights_version=current.version,
            n_records=stats.n_records,
            categories=list(stats.categories),
            jurors=jurors,
            deciders=list(stats.deciders),
            configured_models=configured,
            drift=list(current.dropped),
        )

    async def weights(self) -> WeightsOut:
        """Return the weights in force after the drift guard."""
        state, current = await self._current()
        activation = state.activation
        return WeightsOut(
            version=current.version,
            weights=current.weights,
            models=current.models,
            calibration=current.calibration,
            calibration_models=current.calibration_models,
            activated_at=as_utc(activation.activated_at) if activation else None,
            activated_by=activation.activated_by if activation else None,
            action=activation.action if activation else None,
            drift=list(current.dropped),
        )

    async def versions(self) -> list[VersionOut]:
        """Return every approved version, newest first."""
        state = await self._repo.active()
        active = state.version.version if state.version else None
        return [
            VersionOut(
                version=row.version,
                created_at=as_utc(row.created_at),
                created_by=row.created_by,
                proposal_id=row.proposal_id,
                weights=row.weights,
                models=row.models,
                calibration_categories=sorted(row.calibration),
                active=row.version == active,
            )
            for row in await self._repo.versions()
        ]

    async def proposal(self, proposal_id: int) -> ProposalOut:
        """Return one proposal with its evidence and replay."""
        return proposal_out(await self._get(proposal_id))

    async def proposals(
        self,
        window: Window | None = None,
        *,
        status: str | None = None,
        kind: str | None = None,
    ) -> ProposalPage:
        """Return one page of proposals, newest first."""
        window = window or Window()
        rows, total = await self._repo.proposals(window, status=status, kind=kind)
        items = [proposal_summary(row) for row in rows]
        return ProposalPage.of(items, total=total, window=window)

    async def audit(self, window: Window | None = None, *, subject: str | None = None) -> AuditPage:
        """Return the audit log, newest first."""
        window = window or Window(limit=100)
        rows, total = await self._repo.audit_page(window, subject=subject)
        items = [
            AuditOut.model_validate(row).model_copy(update={"at": as_utc(row.at)}) for row in rows
        ]
        return AuditPage.of(items, total=total, window=window)

    async def _get(self, proposal_id: int) -> Proposal:
        row = await self._repo.proposal(proposal_id)
        if row is None:
            raise NotFoundError(f"proposal {proposal_id} not found", id=proposal_id)
        return row

    # --- proposing -------------------------------------------------------------------------

    async def propose(self, body: ProposalCreate, *, actor: str) -> ProposalOut:
        """Compute a proposal from the record and store it; nothing is applied."""
        state, current = await self._current()
        if body.kind is ProposalKind.CALIBRATION:
            min_evidence = body.min_evidence or self.policy.calibration_min_evidence
            draft = await self._calibration_draft(current, min_evidence=min_evidence)
        else:
            draft = await self._weights_draft(body, current)
        if body.reason:
            draft = _with_reason(draft, body.reason)
        return proposal_out(await self._store(draft, state, actor=actor))

    async def _weights_draft(self, body: ProposalCreate, current: Effective) -> Draft:
        records = self._records(await self._recorded())
        min_evidence = body.min_evidence or self.policy.min_evidence
        unsupervised = body.unsupervised if body.unsupervised is not None else not records
        if not unsupervised:
            if not records:
                raise ConflictError("no outcome is recorded yet: nothing to learn weights from")
            shrinkage = body.shrinkage if body.shrinkage is not None else self.policy.shrinkage
            return weights_draft(
                records,
                current,
                self._config,
                min_evidence=min_evidence,
                shrinkage=shrinkage,
                calibration_min_evidence=self.policy.calibration_min_evidence,
                own_rule_p=body.own_rule_p or self.policy.own_rule_p,
            )
        rows = await self._repo.completed_verdicts()
        if not rows:
            raise ConflictError("no completed verdict is recorded yet: nothing to learn from")
        panels = [verdict_record(row, parse(row)) for row in rows]
        return unsupervised_draft(panels, current, self._config, min_evidence=min_evidence)

    async def _calibration_draft(self, current: Effective, *, min_evidence: int) -> Draft:
        recorded = await self._recorded()
        if not recorded:
            raise ConflictError("no outcome is recorded yet: nothing to calibrate against")
        return calibration_draft(recorded, current, self._config, min_evidence=min_evidence)

    async def _store(self, draft: Draft, state: ActiveState, *, actor: str) -> Proposal:
        """Store a draft; it supersedes older pending proposals of its kind."""
        await self._supersede(
            await self._repo.pending_ids(kind=draft.kind.value),
            actor=actor,
            reason=f"a newer {draft.kind.value} proposal was made",
        )
        row = await self._repo.add_proposal(
            Proposal(
                kind=draft.kind.value,
                status=ProposalStatus.PROPOSED.value,
                created_by=actor,
                unsupervised=draft.unsupervised,
                reason=draft.reason,
                activation_id=state.activation.id if state.activation else None,
                base_version=state.version.version if state.version else None,
                target_version=draft.target_version,
                weights=draft.weights,
                models=draft.models,
                calibration=draft.calibration,
                calibration_models=draft.calibration_models,
                rules=draft.rules,
                evidence=draft.evidence,
                replay=draft.replay.model_dump(mode="json"),
                changes=[change.model_dump(mode="json") for change in draft.changes],
            )
        )
        await self._audit(
            actor,
            "proposal.created",
            f"proposal:{row.id}",
            reason=draft.reason,
            kind=draft.kind.value,
            unsupervised=draft.unsupervised,
            base_version=row.base_version,
            accuracy_active=draft.replay.accuracy_active,
            accuracy_proposed=draft.replay.accuracy_proposed,
            flipped=len(draft.replay.flipped),
        )
        return row

    # --- deciding --------------------------------------------------------------------------

    async def approve(self, proposal_id: int, *, reviewer: str, comment: str) -> ProposalOut:
        """Approve a pending proposal: create its version (or restore one) and activate it.

        Four eyes: whoever created a proposal may not approve it.
        """
        proposal = await self._get(proposal_id)
        if proposal.created_by.casefold() == reviewer.casefold():
            raise ForbiddenError(
                f"'{reviewer}' created proposal {proposal_id} and may not approve it; "
                "another reviewer must",
                id=proposal_id,
            )
        row = await self._claim(proposal_id, ProposalStatus.APPROVED, reviewer, comment)
        state = await self._repo.active()
        if row.kind == ProposalKind.ROLLBACK.value:
            version = None if not row.target_version else row.target_version
            action = ActivationAction.ROLLBACK
        else:
            version = (await self._new_version(row, state, reviewer)).version
            action = ActivationAction.APPROVE
        await self._activate(version, action, reviewer, comment, proposal_id=row.id)
        # 0 names the neutral weights a rollback may restore.
        await self._repo.set_proposal_version(proposal_id, version if version is not None else 0)
        await self._audit(
            reviewer,
            "proposal.approved",
            f"proposal:{proposal_id}",
            reason=comment,
            kind=row.kind,
            version=version,
            previous_version=state.version.version if state.version else None,
        )
        await self._supersede_all(reviewer, keep=proposal_id)
        return proposal_out(await self._repo.refresh(row))

    async def reject(self, proposal_id: int, *, reviewer: str, comment: str) -> ProposalOut:
        """Reject a pending proposal; the weights in force do not change."""
        row = await self._claim(proposal_id, ProposalStatus.REJECTED, reviewer, comment)
        await self._audit(
            reviewer, "proposal.rejected", f"proposal:{proposal_id}", reason=comment, kind=row.kind
        )
        return proposal_out(await self._repo.refresh(row))

    async def rollback(self, version: int, *, reviewer: str, comment: str) -> WeightsOut:
        """Make an earlier version (0: neutral) active again; history is kept."""
        target = None if version == 0 else version
        if target is not None and await self._repo.version(target) is None:
            raise NotFoundError(f"weights version {version} not found", version=version)
        state = await self._repo.active()
        active = state.version.version if state.version else None
        if active == target:
            raise ConflictError(f"weights version {version} is already active", version=version)
        await self._activate(target, ActivationAction.ROLLBACK, reviewer, comment)
        await self._audit(
            reviewer,
            "weights.rolled_back",
            f"weights:{version}",
            reason=comment,
            from_version=active,
            to_version=target,
        )
        await self._supersede_all(reviewer)
        return await self.weights()

    async def _claim(
        self, proposal_id: int, status: ProposalStatus, reviewer: str, comment: str
    ) -> Proposal:
        """Move a proposal out of ``proposed`` or raise 409 saying where it stands."""
        row = await self._get(proposal_id)
        if not await self._repo.decide(proposal_id, status=status, by=reviewer, comment=comment):
            row = await self._repo.refresh(row)
            raise ConflictError(
                f"proposal {proposal_id} is {row.status}, not proposed",
                id=proposal_id,
                status=row.status,
            )
        return row

    async def _new_version(
        self, row: Proposal, state: ActiveState, reviewer: str
    ) -> WeightsVersion:
        """Create the version an approval makes: the proposal's part over the active rest."""
        active = state.version
        calibration = row.kind == ProposalKind.CALIBRATION.value
        keep_weights = calibration and active is not None
        keep_maps = not calibration and active is not None
        version = await self._repo.add_version(
            WeightsVersion(
                version=0,  # numbered by the repository
                created_by=reviewer,
                proposal_id=row.id,
                weights=active.weights if keep_weights and active else row.weights,
                models=active.models if keep_weights and active else row.models,
                # A weights proposal brings fresh maps only where its rule changed the
                # vote-share confidence; every other active map stays.
                calibration=(
                    {**active.calibration, **row.calibration}
                    if keep_maps and active
                    else row.calibration
                ),
                calibration_models=(
                    {**active.calibration_models, **row.calibration_models}
                    if keep_maps and active
                    else row.calibration_models
                ),
                rules=active.rules if keep_weights and active else row.rules,
            )
        )
        await self._audit(
            reviewer,
            "weights.version_created",
            f"weights:{version.version}",
            proposal_id=row.id,
            kind=row.kind,
        )
        return version

    async def _activate(
        self,
        version: int | None,
        action: ActivationAction,
        actor: str,
        comment: str,
        *,
        proposal_id: int | None = None,
    ) -> None:
        await self._repo.activate(
            WeightsActivation(
                version=version,
                activated_by=actor,
                action=action.value,
                proposal_id=proposal_id,
                comment=comment,
            )
        )
        await self._audit(
            actor,
            "weights.activated",
            f"weights:{version if version is not None else 0}",
            reason=comment,
            version=version,
            how=action.value,
            proposal_id=proposal_id,
        )

    async def _supersede_all(self, actor: str, *, keep: int | None = None) -> None:
        """Retire every other pending proposal: it compared against settings no longer active."""
        pending = [pid for pid in await self._repo.pending_ids() if pid != keep]
        await self._supersede(pending, actor=actor, reason="the active weights changed")

    async def _supersede(self, ids: Sequence[int], *, actor: str, reason: str) -> None:
        for pid in ids:
            if await self._repo.decide(
                pid, status=ProposalStatus.SUPERSEDED, by=actor, comment=reason
            ):
                await self._audit(actor, "proposal.superseded", f"proposal:{pid}", reason=reason)

    # --- rollback trigger ------------------------------------------------------------------

    async def check_rollback(self) -> ProposalOut | None:
        """Propose a rollback when the weighted vote got clearly worse since an approval."""
        state, current = await self._current()
        activation = state.activation
        if (
            activation is None
            or activation.id is None
            or activation.version is None
            or activation.action != ActivationAction.APPROVE.value
        ):
            return None
        approved_at = as_utc(activation.activated_at)
        after_n = await self._repo.count_outcomes_under(activation.version, approved_at)
        if after_n < self.policy.rollback_min_after or await self._repo.has_proposal_for(
            kind=ProposalKind.ROLLBACK.value, activation_id=activation.id
        ):
            return None
        recorded = await self._recorded()
        before = [outcome_record(r, v) for r, v in recorded if r.created_at < approved_at]
        after = [
            outcome_record(r, v)
            for r, v in recorded
            if r.created_at >= approved_at and r.weights_version == activation.version
        ]
        decision = rollback_check(
            decider_counts(before[-self.policy.rollback_window :], Decider.WEIGHTED_VOTE),
            decider_counts(after, Decider.WEIGHTED_VOTE),
            min_after=self.policy.rollback_min_after,
            threshold=self.policy.rollback_threshold,
        )
        if not decision.rollback:
            return None
        target = await self._previous(activation.id)
        draft = rollback_draft(self._records(recorded), current, target, decision)
        return proposal_out(await self._store(draft, state, actor=SYSTEM_ACTOR))

    async def _previous(self, activation_id: int) -> Effective:
        """Return the settings that were in force before an activation."""
        activations = await self._repo.activations(limit=2)
        earlier = [a for a in activations if a.id is not None and a.id < activation_id]
        if not earlier or earlier[0].version is None:
            return effective(ActiveState(None, None), self._config)
        row = await self._repo.version(earlier[0].version)
        return effective(ActiveState(None, row), self._config)

    # --- audit -----------------------------------------------------------------------------

    async def _audit(
        self, actor: str, action: str, subject: str, *, reason: str | None = None, **detail: Any
    ) -> None:
        await self._repo.audit(
            AuditEntry(actor=actor, action=action, subject=subject, reason=reason, detail=detail)
        )

    async def record_audit(
        self, actor: str, action: str, subject: str, *, reason: str | None, **detail: Any
    ) -> None:
        """Append an audit entry on behalf of another trust service (outcomes)."""
        await self._audit(actor, action, subject, reason=reason, **detail)


def _with_reason(draft: Draft, reason: str) -> Draft:
    return replace(draft, reason=reason)
