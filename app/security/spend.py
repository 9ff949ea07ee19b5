"""Spend caps per API key per UTC day: reserve an estimate before a verdict, settle after.

``SpendLedger`` is the storage contract (the database today; Redis can back it later): its
``reserve`` must be atomic, so that however many verdicts start at once, the caps hold.
``SpendGuard`` is the policy on top: which caps apply, what to reserve, what to refuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from app.core.clock import WallClock, utcnow
from app.core.config import Budgets
from app.core.errors import SpendCapError
from app.deliberation.budget import Spend


@dataclass(frozen=True, slots=True)
class Caps:
    """Upper bounds on a day's spend; None: no bound."""

    tokens: int | None = None
    usd: float | None = None

    @property
    def any(self) -> bool:
        """Return whether any bound is set."""
        return self.tokens is not None or self.usd is not None

    def exceeded_by(self, spend: Spend) -> str | None:
        """Return the name of the first cap ``spend`` passes, or None."""
        if self.tokens is not None and spend.tokens > self.tokens:
            return "per_key_daily_tokens"
        if self.usd is not None and spend.usd > self.usd:
            return "per_key_daily_usd"
        return None


class SpendLedger(Protocol):
    """Where each key's spend per day is counted."""

    async def reserve(self, key_id: int, day: date, amount: Spend, caps: Caps) -> bool:
        """Add ``amount`` to the key's day only if the total stays within ``caps`` (atomic)."""
        ...

    async def adjust(self, key_id: int, day: date, delta: Spend) -> None:
        """Add ``delta`` (negative to release) to the key's day, whatever the caps."""
        ...

    async def total(self, key_id: int, day: date) -> Spend:
        """Return what the key's day holds: spent plus reserved."""
        ...


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a verdict holds against its key's day until it settles."""

    key_id: int
    day: date
    amount: Spend


def seconds_to_midnight(now: datetime) -> int:
    """Return the whole seconds until the next UTC midnight, at least 1."""
    tomorrow = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), UTC)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


class SpendGuard:
    """Hold a verdict's estimated spend against its key's daily caps, then settle the actual.

    A verdict is refused (429) when the day's total plus its reserve would pass a cap; once
    it ends, its actual use replaces the reserve. A reserve left by a crash stays counted:
    the cap errs on the side of spending less.
    """

    def __init__(self, ledger: SpendLedger, budgets: Budgets, *, clock: WallClock = utcnow) -> None:
        self._ledger = ledger
        self._caps = Caps(budgets.per_key_daily_tokens, budgets.per_key_daily_usd)
        self._reserve = Spend(budgets.reserve_tokens, budgets.reserve_usd)
        self._clock = clock

    async def reserve(self, key_id: int | None) -> Reservation | None:
        """Hold the reserve for a verdict of ``key_id``; None when no cap applies."""
        if key_id is None or not self._caps.any:
            return None
        now = self._clock()
        day = now.date()
        if await self._ledger.reserve(key_id, day, self._reserve, self._caps):
            return Reservation(key_id=key_id, day=day, amount=self._reserve)
        raise await self._refusal(key_id, now)

    async def _refusal(self, key_id: int, now: datetime) -> SpendCapError:
        total = await self._ledger.total(key_id, now.date())
        # The total may have moved since the refusal: name the cap it passes, else any set one.
        cap = self._caps.exceeded_by(total + self._reserve) or (
            "per_key_daily_tokens" if self._caps.tokens is not None else "per_key_daily_usd"
        )
        return SpendCapError(
            f"the daily spend cap of this API key is reached ({cap}); it resets at 00:00 UTC",
            retry_after_s=seconds_to_midnight(now),
            cap=cap,
            limit=self._caps.tokens if cap == "per_key_daily_tokens" else self._caps.usd,
            spent_tokens=total.tokens,
            spent_usd=round(total.usd, 6),
        )

    async def settle(self, reservation: Reservation | None, actual: Spend) -> None:
        """Replace a reservation by what the verdict actually used."""
        if reservation is None:
            return
        delta = actual - reservation.amount
        if delta != Spend():
            await self._ledger.adjust(reservation.key_id, reservation.day, delta)
