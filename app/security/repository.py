"""Every SQL statement about API keys and their daily spend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.security.models import ApiKey, AuthState, KeySpend


@dataclass(frozen=True, slots=True)
class MicroCaps:
    """Daily caps in the counters' units: tokens and micro-dollars; None: no cap."""

    tokens: int | None
    usd_micros: int | None


class KeyRepository:
    """Reads and writes API keys within a caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        """Insert a key."""
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        return key

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """Return the key with this hash, revoked or not."""
        statement = select(ApiKey).where(ApiKey.key_hash == key_hash)
        return (await self.session.exec(statement)).first()

    async def by_name(self, name: str) -> ApiKey | None:
        """Return the key with this name, revoked or not."""
        return (await self.session.exec(select(ApiKey).where(ApiKey.name == name))).first()

    async def all(self) -> Sequence[ApiKey]:
        """Return every key, oldest first."""
        return (await self.session.exec(select(ApiKey).order_by(col(ApiKey.id)))).all()

    async def any_active(self) -> bool:
        """Return whether at least one key is not revoked."""
        statement = select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)
        return (await self.session.exec(statement)).first() is not None

    async def note_keys_exist(self, at: datetime) -> None:
        """Record, once and for good, that keys exist from ``at`` (race-free; later calls no-op)."""
        connection = await self.session.connection()
        insert = sqlite_insert if connection.dialect.name == "sqlite" else postgres_insert
        statement = insert(AuthState).values(id=1, keys_since=at).on_conflict_do_nothing()
        await self.session.exec(statement)

    async def keys_ever_existed(self) -> bool:
        """Return whether a key was ever created here (revoked or removed since, or not)."""
        return await self.session.get(AuthState, 1) is not None

    async def revoke(self, key_id: int, at: datetime) -> bool:
        """Mark a key revoked; return False when it was already revoked."""
        statement = (
            update(ApiKey)
            .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.exec(statement)
        return result.rowcount == 1


class SpendRepository:
    """The per-key daily spend counters, changed only by single atomic statements."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure_day(self, key_id: int, day: date) -> None:
        """Create the key's counter row for ``day`` unless it exists (race-free)."""
        connection = await self.session.connection()
        insert = sqlite_insert if connection.dialect.name == "sqlite" else postgres_insert
        statement = (
            insert(KeySpend)
            .values(key_id=key_id, day=day, tokens=0, usd_micros=0)
            .on_conflict_do_nothing()
        )
        await self.session.exec(statement)

    async def add_within(
        self, key_id: int, day: date, *, tokens: int, usd_micros: int, caps: MicroCaps
    ) -> bool:
        """Add to the day's counters only where the totals stay within ``caps``.

        The bound is checked by the UPDATE itself, so concurrent reservations on one row are
        serialised by the database and each sees the others' increments.
        """
        conditions = [col(KeySpend.key_id) == key_id, col(KeySpend.day) == day]
        if caps.tokens is not None:
            conditions.append(col(KeySpend.tokens) + tokens <= caps.tokens)
        if caps.usd_micros is not None:
            conditions.append(col(KeySpend.usd_micros) + usd_micros <= caps.usd_micros)
        return await self._add(conditions, tokens=tokens, usd_micros=usd_micros) == 1

    async def add(self, key_id: int, day: date, *, tokens: int, usd_micros: int) -> None:
        """Add to (or, negative, take from) the day's counters."""
        conditions = [col(KeySpend.key_id) == key_id, col(KeySpend.day) == day]
        await self._add(conditions, tokens=tokens, usd_micros=usd_micros)

    async def get(self, key_id: int, day: date) -> KeySpend | None:
        """Return the key's counters for ``day``, if any."""
        return await self.session.get(KeySpend, (key_id, day))

    async def _add(self, conditions: list[Any], *, tokens: int, usd_micros: int) -> int:
        statement = (
            update(KeySpend)
            .where(*conditions)
            .values(
                tokens=col(KeySpend.tokens) + tokens,
                usd_micros=col(KeySpend.usd_micros) + usd_micros,
            )
            .execution_options(synchronize_session=False)
        )
        result = await self.session.exec(statement)
        return result.rowcount
