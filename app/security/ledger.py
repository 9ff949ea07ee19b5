"""Implementations of ``SpendLedger``: in the database (any number of processes) and in memory."""

from __future__ import annotations

from datetime import date

from app.core.db import SessionMaker, session_scope
from app.deliberation.budget import Spend
from app.security.repository import MicroCaps, SpendRepository
from app.security.spend import Caps

MICROS = 1_000_000


def to_micros(usd: float) -> int:
    """Return whole micro-dollars."""
    return round(usd * MICROS)


class DatabaseSpendLedger:
    """Counters in the ``key_spend`` table, one row per key per UTC day."""

    def __init__(self, sessionmaker: SessionMaker) -> None:
        self._sessionmaker = sessionmaker

    async def reserve(self, key_id: int, day: date, amount: Spend, caps: Caps) -> bool:
        """Add ``amount`` if the day stays within ``caps``, in one conditional UPDATE."""
        micro_caps = MicroCaps(
            tokens=caps.tokens, usd_micros=None if caps.usd is None else to_micros(caps.usd)
        )
        async with session_scope(self._sessionmaker) as session:
            repository = SpendRepository(session)
            await repository.ensure_day(key_id, day)
            return await repository.add_within(
                key_id, day, tokens=amount.tokens, usd_micros=to_micros(amount.usd), caps=micro_caps
            )

    async def adjust(self, key_id: int, day: date, delta: Spend) -> None:
        """Add ``delta`` to the key's day."""
        async with session_scope(self._sessionmaker) as session:
            repository = SpendRepository(session)
            await repository.ensure_day(key_id, day)
            await repository.add(key_id, day, tokens=delta.tokens, usd_micros=to_micros(delta.usd))

    async def total(self, key_id: int, day: date) -> Spend:
        """Return the key's day: spent plus reserved."""
        async with session_scope(self._sessionmaker) as session:
            row = await SpendRepository(session).get(key_id, day)
        if row is None:
            return Spend()
        return Spend(tokens=row.tokens, usd=row.usd_micros / MICROS)


class MemorySpendLedger:
    """Counters in this process only: for a single process, and the reference for the contract.

    Atomic because nothing awaits between the check and the increment.
    """

    def __init__(self) -> None:
        self._days: dict[tuple[int, date], Spend] = {}

    async def reserve(self, key_id: int, day: date, amount: Spend, caps: Caps) -> bool:
        """Add ``amount`` if the day stays within ``caps``."""
        total = self._days.get((key_id, day), Spend()) + amount
        if caps.exceeded_by(total) is not None:
            return False
        self._days[(key_id, day)] = total
        return True

    async def adjust(self, key_id: int, day: date, delta: Spend) -> None:
        """Add ``delta`` to the key's day."""
        self._days[(key_id, day)] = self._days.get((key_id, day), Spend()) + delta

    async def total(self, key_id: int, day: date) -> Spend:
        """Return the key's day."""
        return self._days.get((key_id, day), Spend())
