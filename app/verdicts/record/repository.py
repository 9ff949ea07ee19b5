"""The verdict record's reads, and the claims on queued verdicts, in a caller's session.

What the record writer writes (rows, outcomes) is built in ``statements.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Update, and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import as_utc
from app.core.pages import Window
from app.deliberation.schemas import VerdictStatus
from app.verdicts.record.statements import held_by
from app.verdicts.record.tables import ModelCall, Verdict


@dataclass(frozen=True, slots=True)
class VerdictFilter:
    """Which verdicts a listing keeps; ``owner``: only those asked with that API key."""

    owner: int | None = None
    category: str | None = None
    verdict: str | None = None
    status: VerdictStatus | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """Return the WHERE conditions of this filter."""
        conditions: list[ColumnElement[bool]] = []
        if self.owner is not None:
            conditions.append(col(Verdict.api_key_id) == self.owner)
        if self.category is not None:
            conditions.append(col(Verdict.category) == self.category)
        if self.verdict is not None:
            conditions.append(col(Verdict.verdict) == self.verdict)
        if self.status is not None:
            conditions.append(col(Verdict.status) == self.status)
        if self.since is not None:
            conditions.append(col(Verdict.created_at) >= as_utc(self.since))
        if self.until is not None:
            conditions.append(col(Verdict.created_at) < as_utc(self.until))
        return conditions


class VerdictRepository:
    """Reads and writes verdict rows and their model calls within a caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, verdict_id: str) -> Verdict | None:
        """Return the verdict with this id, if any."""
        return await self.session.get(Verdict, verdict_id)

    async def claim(self, verdict_id: str, worker: str, *, now: datetime, until: datetime) -> bool:
        """Take a queued verdict, or one whose last claim lapsed, for ``worker`` until ``until``.

        One conditional UPDATE: of any number of workers claiming at once, one succeeds.
        """
        claimable = or_(
            col(Verdict.status) == "queued",
            and_(
                col(Verdict.status) == "running",
                col(Verdict.claimed_by).is_not(None),
                col(Verdict.lease_until) < as_utc(now),
            ),
        )
        statement = (
            update(Verdict)
            .where(col(Verdict.id) == verdict_id, claimable)
            .values(
                status="running",
                claimed_by=worker,
                lease_until=as_utc(until),
                attempts=col(Verdict.attempts) + 1,
            )
        )
        return await self._changed_one(statement)

    async def renew(self, verdict_id: str, worker: str, *, until: datetime) -> bool:
        """Extend ``worker``'s claim; False when the claim is no longer its own."""
        statement = (
            update(Verdict).where(*held_by(verdict_id, worker)).values(lease_until=as_utc(until))
        )
        return await self._changed_one(statement)

    async def count_queued(self) -> int:
        """Return how many verdicts wait for a worker."""
        statement = select(func.count()).select_from(Verdict).where(Verdict.status == "queued")
        return int((await self.session.exec(statement)).one())

    async def unfinished_async_ids(self, *, limit: int = 1_000) -> Sequence[str]:
        """Return asynchronous verdicts without an outcome: queued or claimed, oldest first."""
        statement = (
            select(Verdict.id)
            .where(
                or_(
                    col(Verdict.status) == "queued",
                    and_(col(Verdict.status) == "running", col(Verdict.claimed_by).is_not(None)),
                )
            )
            .order_by(col(Verdict.created_at))
            .limit(limit)
        )
        return (await self.session.exec(statement)).all()

    async def running_unclaimed(
        self, *, started_before: datetime, limit: int = 500
    ) -> Sequence[Verdict]:
        """Return synchronous verdicts still ``running`` that started before ``started_before``."""
        statement = (
            select(Verdict)
            .where(
                col(Verdict.status) == "running",
                col(Verdict.claimed_by).is_(None),
                col(Verdict.created_at) < as_utc(started_before),
            )
            .order_by(col(Verdict.created_at))
            .limit(limit)
        )
        return (await self.session.exec(statement)).all()

    async def interrupt_abandoned(self, verdict_id: str, *, now: datetime, detail: str) -> bool:
        """Mark a synchronous verdict still ``running`` as ``interrupted``; False if it ended
        meanwhile (or another sweeper got there first)."""
        statement = (
            update(Verdict)
            .where(
                col(Verdict.id) == verdict_id,
                col(Verdict.status) == "running",
                col(Verdict.claimed_by).is_(None),
            )
            .values(
                status="interrupted",
                finished_at=as_utc(now),
                error={"error": "interrupted", "detail": detail},
            )
        )
        return await self._changed_one(statement)

    async def orphaned_async_ids(
        self, *, now: datetime, queued_before: datetime, limit: int = 1_000
    ) -> Sequence[str]:
        """Return asynchronous verdicts no worker may hold: queued since before
        ``queued_before``, or claimed under a lease that lapsed; oldest first."""
        statement = (
            select(Verdict.id)
            .where(
                or_(
                    and_(
                        col(Verdict.status) == "queued",
                        col(Verdict.created_at) < as_utc(queued_before),
                    ),
                    and_(
                        col(Verdict.status) == "running",
                        col(Verdict.claimed_by).is_not(None),
                        col(Verdict.lease_until) < as_utc(now),
                    ),
                )
            )
            .order_by(col(Verdict.created_at))
            .limit(limit)
        )
        return (await self.session.exec(statement)).all()

    async def _changed_one(self, statement: Update) -> bool:
        result = await self.session.exec(statement.execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def calls(self, verdict_id: str) -> Sequence[ModelCall]:
        """Return every model call of a verdict in the order they were stored."""
        statement = (
            select(ModelCall).where(ModelCall.verdict_id == verdict_id).order_by(col(ModelCall.id))
        )
        return (await self.session.exec(statement)).all()

    async def page(self, filters: VerdictFilter, window: Window) -> tuple[Sequence[Verdict], int]:
        """Return one page of the verdicts that match ``filters``, newest first, and the total
        matching."""
        conditions = filters.conditions()
        statement = (
            select(Verdict)
            .where(*conditions)
            .order_by(col(Verdict.created_at).desc(), col(Verdict.id).desc())
            .limit(window.limit)
            .offset(window.offset)
        )
        total_statement = select(func.count()).select_from(Verdict).where(*conditions)
        rows = (await self.session.exec(statement)).all()
        total = (await self.session.exec(total_statement)).one()
        return rows, int(total)
