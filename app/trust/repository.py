"""Every SQL statement of the trust record; proposal status transitions live here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import as_utc, utcnow
from app.core.errors import ConflictError
from app.core.pages import Window
from app.trust.models import (
    AuditEntry,
    Outcome,
    Proposal,
    ProposalStatus,
    WeightsActivation,
    WeightsVersion,
)
from app.verdicts.record.tables import Verdict


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """A completed verdict's stored response, with its current outcome if one is recorded."""

    verdict_id: str
    created_at: datetime
    category: str
    response: dict[str, Any]
    weights_version: int | None
    correct: str | None


@dataclass(frozen=True, slots=True)
class VerdictHead:
    """A verdict's status, decision and options."""

    id: str
    status: str
    verdict: str | None
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActiveState:
    """The activation in force and the version it activated (both None: neutral, never set)."""

    activation: WeightsActivation | None
    version: WeightsVersion | None


class TrustRepository:
    """Reads and writes the trust tables within a caller's session; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _add(self, row: Any, *, conflict: str) -> None:
        """Insert a row; a unique-key race becomes a ``ConflictError``."""
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc

    # --- verdicts and outcomes -------------------------------------------------------------

    async def verdict(self, verdict_id: str) -> VerdictHead | None:
        """Return what an outcome needs of a verdict (not its transcript)."""
        statement = select(col(Verdict.status), col(Verdict.verdict), col(Verdict.options)).where(
            col(Verdict.id) == verdict_id
        )
        row = (await self.session.exec(statement)).first()
        if row is None:
            return None
        status, verdict, options = row
        return VerdictHead(id=verdict_id, status=status, verdict=verdict, options=tuple(options))

    async def outcomes(self, verdict_id: str) -> Sequence[Outcome]:
        """Return a verdict's outcomes, oldest revision first."""
        statement = (
            select(Outcome).where(Outcome.verdict_id == verdict_id).order_by(col(Outcome.revision))
        )
        return (await self.session.exec(statement)).all()

    async def add_outcome(self, outcome: Outcome) -> Outcome:
        """Insert an outcome; a concurrent outcome of the same revision is a conflict."""
        await self._add(
            outcome,
            conflict=f"verdict '{outcome.verdict_id}' got another outcome at the same time",
        )
        return outcome

    def _current_outcomes(self) -> Any:
        """Subquery of (verdict id, latest revision): the outcome that wins."""
        return (
            select(col(Outcome.verdict_id), func.max(Outcome.revision).label("revision"))
            .group_by(col(Outcome.verdict_id))
            .subquery()
        )

    async def verdicts_with_outcomes(
        self, *, category: str | None = None, since: datetime | None = None
    ) -> list[StoredVerdict]:
        """Return completed verdicts that have an outcome, each with its current one."""
        latest = self._current_outcomes()
        statement = (
            select(Verdict, Outcome.correct_option)
            .join(latest, latest.c.verdict_id == Verdict.id)
            .join(
                Outcome,
                and_(
                    col(Outcome.verdict_id) == latest.c.verdict_id,
                    col(Outcome.revision) == latest.c.revision,
                ),
            )
            .where(*self._completed(category, since))
            .order_by(col(Verdict.created_at), col(Verdict.id))
        )
        rows = (await self.session.exec(statement)).all()
        return [_stored(verdict, correct) for verdict, correct in rows]

    async def completed_verdicts(self, *, category: str | None = None) -> list[StoredVerdict]:
        """Return every completed verdict, with or without an outcome (for agreement)."""
        statement = (
            select(Verdict)
            .where(*self._completed(category, None))
            .order_by(col(Verdict.created_at), col(Verdict.id))
        )
        return [_stored(row, None) for row in (await self.session.exec(statement)).all()]

    async def count_outcomes_under(self, version: int, since: datetime) -> int:
        """Count verdicts decided under ``version`` since ``since`` that have an outcome."""
        latest = self._current_outcomes()
        statement = (
            select(func.count())
            .select_from(Verdict)
            .join(latest, latest.c.verdict_id == Verdict.id)
            .where(col(Verdict.weights_version) == version, col(Verdict.created_at) >= since)
        )
        return int((await self.session.exec(statement)).one())

    @staticmethod
    def _completed(category: str | None, since: datetime | None) -> list[Any]:
        conditions: list[Any] = [
            col(Verdict.status) == "completed",
            col(Verdict.response).is_not(None),
        ]
        if category is not None:
            conditions.append(col(Verdict.category) == category)
        if since is not None:
            conditions.append(col(Verdict.created_at) >= since)
        return conditions

    # --- versions and activations ----------------------------------------------------------

    async def active(self) -> ActiveState:
        """Return the activation in force (the latest) and its version."""
        statement = select(WeightsActivation).order_by(col(WeightsActivation.id).desc()).limit(1)
        activation = (await self.session.exec(statement)).first()
        if activation is None or activation.version is None:
            return ActiveState(activation=activation, version=None)
        return ActiveState(activation=activation, version=await self.version(activation.version))

    async def activations(self, *, limit: int = 2) -> Sequence[WeightsActivation]:
        """Return the latest activations, newest first."""
        statement = select(WeightsActivation).order_by(col(WeightsActivation.id).desc())
        return (await self.session.exec(statement.limit(limit))).all()

    async def version(self, number: int) -> WeightsVersion | None:
        """Return one weights version."""
        return await self.session.get(WeightsVersion, number)

    async def versions(self) -> Sequence[WeightsVersion]:
        """Return every weights version, newest first."""
        statement = select(WeightsVersion).order_by(col(WeightsVersion.version).desc())
        return (await self.session.exec(statement)).all()

    async def add_version(self, row: WeightsVersion) -> WeightsVersion:
        """Insert the next version; two approvals racing for a number is a conflict."""
        statement = select(func.max(WeightsVersion.version))
        row.version = int((await self.session.exec(statement)).one() or 0) + 1
        await self._add(row, conflict="another approval created a weights version; try again")
        return row

    async def activate(self, row: WeightsActivation) -> WeightsActivation:
        """Insert an activation: from now on its version is in force."""
        await self._add(row, conflict="another activation happened at the same time")
        return row

    # --- proposals -------------------------------------------------------------------------

    async def add_proposal(self, row: Proposal) -> Proposal:
        """Insert a proposal."""
        await self._add(row, conflict="could not store the proposal")
        return row

    async def proposal(self, proposal_id: int) -> Proposal | None:
        """Return one proposal."""
        return await self.session.get(Proposal, proposal_id)

    async def proposals(
        self, window: Window, *, status: str | None, kind: str | None
    ) -> tuple[Sequence[Proposal], int]:
        """Return one page of proposals, newest first, and the total matching."""
        conditions = []
        if status is not None:
            conditions.append(col(Proposal.status) == status)
        if kind is not None:
            conditions.append(col(Proposal.kind) == kind)
        statement = (
            select(Proposal)
            .where(*conditions)
            .order_by(col(Proposal.id).desc())
            .limit(window.limit)
            .offset(window.offset)
        )
        total = select(func.count()).select_from(Proposal).where(*conditions)
        rows = (await self.session.exec(statement)).all()
        return rows, int((await self.session.exec(total)).one())

    async def pending_ids(self, *, kind: str | None = None) -> list[int]:
        """Return the ids of proposals still awaiting a decision."""
        statement = select(Proposal.id).where(Proposal.status == ProposalStatus.PROPOSED.value)
        if kind is not None:
            statement = statement.where(Proposal.kind == kind)
        return [pid for pid in (await self.session.exec(statement)).all() if pid is not None]

    async def has_proposal_for(self, *, kind: str, activation_id: int) -> bool:
        """Return whether a proposal of ``kind`` was ever made against an activation."""
        statement = (
            select(func.count())
            .select_from(Proposal)
            .where(Proposal.kind == kind, Proposal.activation_id == activation_id)
        )
        return int((await self.session.exec(statement)).one()) > 0

    async def decide(
        self,
        proposal_id: int,
        *,
        status: ProposalStatus,
        by: str,
        comment: str | None,
    ) -> bool:
        """Move a proposal out of ``proposed``; False when it was not ``proposed`` any more.

        The status check is in the UPDATE itself, so of two concurrent decisions on the same
        proposal exactly one matches a row: the database, not the caller, picks the winner.
        """
        statement = (
            update(Proposal)
            .where(
                col(Proposal.id) == proposal_id,
                col(Proposal.status) == ProposalStatus.PROPOSED.value,
            )
            .values(
                status=status.value,
                decided_by=by,
                decided_at=utcnow(),
                comment=comment,
            )
            .execution_options(synchronize_session=False)
        )
        result = await self.session.exec(statement)
        return result.rowcount == 1

    async def set_proposal_version(self, proposal_id: int, version: int | None) -> None:
        """Record which version an approval created or restored."""
        statement = (
            update(Proposal)
            .where(col(Proposal.id) == proposal_id)
            .values(version=version)
            .execution_options(synchronize_session=False)
        )
        await self.session.exec(statement)

    async def refresh(self, row: Proposal) -> Proposal:
        """Reload a proposal after a bulk UPDATE."""
        await self.session.refresh(row)
        return row

    # --- audit -----------------------------------------------------------------------------

    async def audit(self, entry: AuditEntry) -> AuditEntry:
        """Append one audit entry (written with the unit of work's next flush)."""
        self.session.add(entry)
        return entry

    async def audit_page(
        self, window: Window, *, subject: str | None
    ) -> tuple[Sequence[AuditEntry], int]:
        """Return audit entries newest first (by insertion order), and the total."""
        conditions = [] if subject is None else [col(AuditEntry.subject) == subject]
        statement = (
            select(AuditEntry)
            .where(*conditions)
            .order_by(col(AuditEntry.id).desc())
            .limit(window.limit)
            .offset(window.offset)
        )
        total = select(func.count()).select_from(AuditEntry).where(*conditions)
        rows = (await self.session.exec(statement)).all()
        return rows, int((await self.session.exec(total)).one())


def _stored(row: Verdict, correct: str | None) -> StoredVerdict:
    assert row.response is not None  # the query only selects verdicts with a response
    return StoredVerdict(
        verdict_id=row.id,
        created_at=as_utc(row.created_at),
        category=row.category,
        response=row.response,
        weights_version=row.weights_version,
        correct=correct,
    )
