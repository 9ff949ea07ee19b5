"""Every SQL statement of the verdict record."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, String, Table, Update, and_, bindparam, func, or_, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.verdicts.record.tables import ModelCall, Verdict

# The tables the verdict record's group commit (``RecordWriter``) inserts into.
VERDICTS: Table = SQLModel.metadata.tables[Verdict.__tablename__]
MODEL_CALLS: Table = SQLModel.metadata.tables[ModelCall.__tablename__]


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
        return await self._set_where(
            [col(Verdict.id) == verdict_id, claimable],
            status="running",
            claimed_by=worker,
            lease_until=as_utc(until),
            attempts=col(Verdict.attempts) + 1,
        )

    async def renew(self, verdict_id: str, worker: str, *, until: datetime) -> bool:
        """Extend ``worker``'s claim; False when the claim is no longer its own."""
        return await self._set_where(held_by(verdict_id, worker), lease_until=as_utc(until))

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

    async def _set_where(self, conditions: list[Any], **values: Any) -> bool:
        statement = (
            update(Verdict)
            .where(*conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.exec(statement)
        return result.rowcount == 1

    async def calls(self, verdict_id: str) -> Sequence[ModelCall]:
        """Return every model call of a verdict in the order they were stored."""
        statement = (
            select(ModelCall).where(ModelCall.verdict_id == verdict_id).order_by(col(ModelCall.id))
        )
        return (await self.session.exec(statement)).all()

    async def page(
        self,
        *,
        category: str | None,
        verdict: str | None,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
        owner: int | None = None,
    ) -> tuple[Sequence[Verdict], int]:
        """Return one page of verdicts, newest first, and the total matching.

        ``owner`` keeps only the verdicts asked with that API key.
        """
        conditions = []
        if owner is not None:
            conditions.append(col(Verdict.api_key_id) == owner)
        if category is not None:
            conditions.append(col(Verdict.category) == category)
        if verdict is not None:
            conditions.append(col(Verdict.verdict) == verdict)
        if status is not None:
            conditions.append(col(Verdict.status) == status)
        if since is not None:
            conditions.append(col(Verdict.created_at) >= as_utc(since))
        if until is not None:
            conditions.append(col(Verdict.created_at) < as_utc(until))
        statement = (
            select(Verdict)
            .where(*conditions)
            .order_by(col(Verdict.created_at).desc(), col(Verdict.id).desc())
            .limit(limit)
            .offset(offset)
        )
        total_statement = select(func.count()).select_from(Verdict).where(*conditions)
        rows = (await self.session.exec(statement)).all()
        total = (await self.session.exec(total_statement)).one()
        return rows, int(total)


def held_by(verdict_id: str | BindParameter[str], worker: str | BindParameter[str]) -> list[Any]:
    """Return the conditions under which ``worker``'s claim still holds a verdict (values, or
    bind parameters for a statement built once)."""
    return [
        col(Verdict.id) == verdict_id,
        col(Verdict.status) == "running",
        col(Verdict.claimed_by) == worker,
    ]


@dataclass(frozen=True, slots=True)
class Change:
    """An UPDATE of one verdict row, and the values it binds this time.

    The statement is built once per set of columns (``_update_statement``): building and
    hashing an UPDATE with its values inline cost about a millisecond per verdict.
    """

    statement: Update
    params: dict[str, Any]


def claimed_statement(verdict_id: str, worker: str, **values: Any) -> Change:
    """Return the change that sets ``values`` only while ``worker``'s claim holds the verdict.

    The claim's lease ends with it.
    """
    values = {"lease_until": None, **values}
    statement = _update_statement(frozenset(values), claimed=True)
    return Change(statement, _params(values, b_id=verdict_id, b_worker=worker))


def finish_statement(verdict_id: str, claim: str | None, **values: Any) -> Change:
    """Return the change that records a verdict's end; under a claim, only while it holds.

    A claimed verdict's lease ends with it.
    """
    if claim is not None:
        return claimed_statement(verdict_id, claim, **values)
    statement = _update_statement(frozenset(values), claimed=False)
    return Change(statement, _params(values, b_id=verdict_id))


def _params(values: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {**{f"v_{name}": value for name, value in values.items()}, **keys}


@functools.cache
def _update_statement(columns: frozenset[str], *, claimed: bool) -> Update:
    verdict_id = bindparam("b_id", type_=String)
    conditions = (
        held_by(verdict_id, bindparam("b_worker", type_=String))
        if claimed
        else [col(Verdict.id) == verdict_id]
    )
    # Untyped bind parameters take their column's type (JSON, timezone-aware datetimes).
    return (
        update(VERDICTS)
        .where(*conditions)
        .values({VERDICTS.c[name]: bindparam(f"v_{name}") for name in sorted(columns)})
    )


def new_verdict_row(**values: Any) -> dict[str, Any]:
    """Return the column values that insert a new verdict: ``values`` over the defaults.

    Every column is named, so that rows batched into one executemany have the same keys; keys
    are column names (``metadata`` holds the caller's metadata).
    """
    unknown = values.keys() - _NEW_VERDICT.keys()
    if unknown:
        raise ValueError(f"not columns of verdicts: {sorted(unknown)}")
    return {**_NEW_VERDICT, **values}


# A new verdict's columns: those the caller must give are None here, as are the outcome's.
_NEW_VERDICT: dict[str, Any] = {
    **{column.name: None for column in VERDICTS.columns},
    "metadata": {},
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost_usd": 0.0,
    "attempts": 0,
}


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, naive ones read as UTC.

    SQLite keeps no time zone: stored times are UTC wall-clock text, so a bound parameter must
    be UTC wall-clock too, or a time with another offset compares wrongly.
    """
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
