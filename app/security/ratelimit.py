"""Requests per minute per API key: a fixed one-minute window, shared by every replica.

A key's window opens with its first request and lasts a minute; past ``per_minute`` requests in
it, the answer is 429 with ``Retry-After``: the seconds until the window closes. With Redis, the
window is one counter that a Lua script increments and reads the expiry of in one atomic step,
so every replica counts the same requests. Without Redis (or while it is down) each process
counts its own: the limit then holds per process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from app.core import metrics
from app.core.errors import RateLimitedError
from app.core.redis import RedisLink

WINDOW_S = 60

# INCR the window's counter; the first request of a window sets its expiry. Returns the count
# and the milliseconds left in the window.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


@dataclass(frozen=True, slots=True)
class Window:
    """Requests counted so far in the current window, and the seconds it has left."""

    count: int
    resets_in_s: float


class MemoryWindows:
    """Windows in this process; atomic because nothing awaits between read and write."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # subject -> (window start, count)

    async def count(self, subject: str) -> Window:
        """Count one request of ``subject`` in its current window."""
        now = self._clock()
        start, count = self._windows.get(subject, (now, 0))
        if now - start >= WINDOW_S:
            start, count = now, 0
        self._windows[subject] = (start, count + 1)
        if len(self._windows) > 10_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < WINDOW_S}
        return Window(count=count + 1, resets_in_s=start + WINDOW_S - now)


class RateLimiter:
    """Refuse a subject's requests past ``per_minute`` in a window with 429 and Retry-After."""

    def __init__(self, per_minute: int, link: RedisLink | None, *, prefix: str = "jury") -> None:
        self.per_minute = per_minute
        self._link = link
        self._memory = MemoryWindows()
        self._prefix = prefix

    async def check(self, subject: str, *, route: str) -> None:
        """Count one request; raise ``RateLimitedError`` once the window is spent."""
        if self.per_minute <= 0:
            return
        window = await self._count(subject)
        if window.count <= self.per_minute:
            return
        metrics.RATE_LIMITED.labels(route).inc()
        retry_after = max(1, math.ceil(window.resets_in_s))
        raise RateLimitedError(
            f"this API key may make {self.per_minute} verdict requests per minute; "
            f"retry in {retry_after}s",
            retry_after_s=retry_after,
            limit=self.per_minute,
        )

    async def _count(self, subject: str) -> Window:
        if self._link is None:
            return await self._memory.count(subject)
        return await self._link.attempt(
            "rate_limit",
            lambda client: self._count_in_redis(client, subject),
            lambda: self._memory.count(subject),
        )

    async def _count_in_redis(self, client: Redis, subject: str) -> Window:
        key = f"{self._prefix}:ratelimit:{subject}"
        count, ttl_ms = await client.eval(_COUNT, 1, key, str(WINDOW_S * 1000))
        return Window(count=int(count), resets_in_s=int(ttl_ms) / 1000)
