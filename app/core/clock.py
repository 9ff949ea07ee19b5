"""Time, from one place: the UTC wall clock, the monotonic clock, and deadlines.

Every "now" in Jury comes from here. A component that caches or expires something takes a
clock (``clock=``) so that a test hands it one it controls, instead of sleeping. A verdict's
overall time budget is a ``Deadline``, a value, not a float passed around; ``MAX_DEADLINE_S``
is the longest one a request may ask for, ``MIN_DEADLINE_S`` the shortest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

# A source of the current UTC time, and of monotonic seconds (for ages and expiries).
WallClock = Callable[[], datetime]
Monotonic = Callable[[], float]

# The longest overall time budget a verdict may ask for (``deadline_s``), in seconds.
MAX_DEADLINE_S = 3_600
# The shortest one it may ask for: below a second not even one round of hosted model calls
# can answer, and the request would only be recorded as a no_quorum.
MIN_DEADLINE_S = 1.0


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Return monotonic seconds: for measuring ages, never for dates."""
    return time.monotonic()


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, naive ones read as UTC.

    SQLite keeps no time zone: stored times are UTC wall-clock text, so a bound parameter must
    be UTC wall-clock too, or a time with another offset compares wrongly.
    """
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment, on the event loop's clock, by which a verdict must have its answer."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """Return the deadline ``seconds`` from now."""
        return cls(anyio.current_time() + seconds)

    def remaining(self) -> float:
        """Return the seconds left (negative once it has passed)."""
        return self.at - anyio.current_time()

    def passed(self) -> bool:
        """Return whether the deadline has been reached."""
        return self.remaining() <= 0
