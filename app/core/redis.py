"""The Redis client, opened in the lifespan, and the one boundary where Redis failures stop.

Redis is a soft dependency: every feature that uses it (idempotency keys, rate limits, progress
events, the queue) has an in-process fallback, and ``RedisLink.attempt`` is the only place that
decides between them. A command that fails or times out (``redis_timeout_s``, 0.5 s by default)
is logged, counted and answered by the fallback; for the next ``redis_retry_after_s`` Jury does
not try Redis at all, so a frozen Redis costs one request one timeout, not every request one
timeout per command.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.core import metrics
from app.core.settings import Settings

logger = logging.getLogger("jury.redis")

T = TypeVar("T")

# What a broken, unreachable or frozen Redis raises through redis-py.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def client_options(settings: Settings, *, read_timeout_s: float | None = None) -> dict[str, Any]:
    """Return the connection options of every Jury client: short timeouts, no retries.

    redis-py retries a failed command three times with backoff by default: that would turn one
    timeout into several seconds, so Jury's own fallback replaces it.
    """
    return {
        "socket_timeout": read_timeout_s or settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


class RedisLink:
    """A Redis client with a breaker: after a failure, Redis is skipped for a while."""

    def __init__(
        self,
        client: Redis,
        *,
        url: str,
        blocking: Redis,
        retry_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.url = url
        # Long blocking reads (XREAD BLOCK for the event stream) on a client of their own,
        # whose read timeout covers the block: the short timeout would cut them off.
        self.blocking = blocking
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        """Return whether Redis is worth trying now (no failure in the last while)."""
        return self._clock() >= self._down_until

    async def attempt(
        self,
        operation: str,
        primary: Callable[[Redis], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
        *,
        client: Redis | None = None,
    ) -> T:
        """Return ``primary``'s answer from Redis, or ``fallback``'s when Redis fails."""
        if not self.available:
            return await fallback()
        try:
            return await primary(client or self.client)
        except REDIS_FAILURES as exc:
            self.trip(operation, exc)
        return await fallback()

    def trip(self, operation: str, exc: BaseException) -> None:
        """Record a failure and skip Redis for the next ``retry_after_s``."""
        metrics.REDIS_FAILURES.labels(operation).inc()
        if self.available:
            logger.warning(
                "redis %s failed (%s: %s): using in-process fallbacks for %.1fs",
                operation,
                type(exc).__name__,
                exc,
                self._retry_after_s,
            )
        self._down_until = self._clock() + self._retry_after_s

    async def probe(self) -> str | None:
        """Ping Redis whatever the breaker says; return None when it answers, else why not."""
        try:
            await self.client.ping()
        except REDIS_FAILURES as exc:
            self.trip("ping", exc)
            return type(exc).__name__
        self._down_until = 0.0
        return None

    async def aclose(self) -> None:
        """Close both clients' connections."""
        await self.client.aclose()
        await self.blocking.aclose()


def link_for(settings: Settings, url: str, *, block_s: float) -> RedisLink:
    """Return a link to ``url``; nothing connects until the first command."""
    return RedisLink(
        Redis.from_url(url, **client_options(settings)),
        url=url,
        blocking=Redis.from_url(
            url, **client_options(settings, read_timeout_s=block_s + settings.redis_timeout_s)
        ),
        retry_after_s=settings.redis_retry_after_s,
    )


# How long one blocking read of the event stream waits before the stream says it is alive.
EVENTS_BLOCK_S = 5.0


@asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[RedisLink | None]:
    """Yield a link to ``JURY_REDIS_URL``, or None when it is not set.

    Start-up never waits for Redis: a Redis that is down at start-up is only a degraded one.
    """
    if not settings.redis_url:
        yield None
        return
    link = link_for(settings, settings.redis_url, block_s=EVENTS_BLOCK_S)
    try:
        yield link
    finally:
        await link.aclose()
