"""The taskiq broker of the jobs stream, with the reclaim of a dead worker's jobs fixed.

taskiq-redis 1.2.4's ``RedisStreamBroker.listen`` runs its XAUTOCLAIM pass only after a read
that brought new messages (``if not fetched: continue``): on a quiet queue, a job whose worker
was killed is never delivered again. This broker reclaims on every pass. XAUTOCLAIM is atomic
and resets the idle time of what it claims, so two workers never take the same job at once
(and the verdict row's claim guards against a second run anyway).

A worker also outlives Redis: a read that fails (Redis stopped, restarted or frozen past the
socket timeout) is logged and tried again after a backoff that doubles up to
``MAX_BACKOFF_S``, never ending the worker; the connection pool reconnects on the next try.

Imported on use only: importing taskiq takes a second at every CLI start-up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import anyio
from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

from app.core.redis import REDIS_FAILURES

logger = logging.getLogger("jury.worker")

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


class ReclaimingStreamBroker(RedisStreamBroker):
    """A Redis Streams broker whose workers take over idle unacknowledged jobs on every pass."""

    async def startup(self) -> None:
        """Create the consumer group, waiting for Redis as long as it takes."""
        backoff = Backoff()
        while True:
            try:
                await super().startup()
                return
            except REDIS_FAILURES as exc:
                await backoff.wait(exc)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield new jobs, then jobs left unacknowledged past ``idle_timeout``, forever."""
        backoff = Backoff()
        async with Redis(connection_pool=self.connection_pool) as connection:
            while True:
                try:
                    fresh = await self._read_new(connection)
                    reclaimed = await self._reclaim(connection)
                except REDIS_FAILURES as exc:
                    await backoff.wait(exc)
                    if "NOGROUP" in str(exc):
                        # A Redis restarted without persistence lost the stream and its group.
                        await self._redeclare()
                    continue
                backoff.reset()
                for message in (*fresh, *reclaimed):
                    yield message

    async def _redeclare(self) -> None:
        try:
            await self._declare_consumer_group()
        except REDIS_FAILURES as exc:
            logger.warning("consumer group not declared yet: %s", exc)

    async def _read_new(self, connection: Redis) -> list[AckableMessage]:
        fetched: Any = await connection.xreadgroup(
            self.consumer_group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            block=self.block,
            noack=False,
            count=self.count,
        )
        return [
            self._message(message_id, fields)
            for _stream, messages in fetched or []
            for message_id, fields in messages
        ]

    async def _reclaim(self, connection: Redis) -> list[AckableMessage]:
        claimed: Any = await connection.xautoclaim(
            name=self.queue_name,
            groupname=self.consumer_group_name,
            consumername=self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.unacknowledged_batch_size,
        )
        # [next start id, [(id, fields)], [deleted ids]]; a trimmed entry has no fields.
        return [self._message(message_id, fields) for message_id, fields in claimed[1] if fields]

    def _message(self, message_id: bytes | str, fields: dict[bytes, bytes]) -> AckableMessage:
        return AckableMessage(
            data=fields[b"data"],
            ack=self._ack_generator(id=_text(message_id), queue_name=self.queue_name),
        )


class Backoff:
    """Waits between attempts on a failing Redis: doubling from ``FIRST_BACKOFF_S`` up to
    ``MAX_BACKOFF_S``, logged once per outage."""

    def __init__(self) -> None:
        self._next_s = FIRST_BACKOFF_S
        self.failures = 0

    async def wait(self, exc: BaseException) -> None:
        """Log the failure (the first of an outage) and sleep the current backoff."""
        if self.failures == 0:
            logger.warning("redis failed (%s: %s): retrying", type(exc).__name__, exc)
        self.failures += 1
        await anyio.sleep(self._next_s)
        self._next_s = min(self._next_s * 2, MAX_BACKOFF_S)

    def reset(self) -> None:
        """Redis answered: start over at the first backoff."""
        if self.failures:
            logger.info("redis is back after %d failed attempt(s)", self.failures)
        self._next_s = FIRST_BACKOFF_S
        self.failures = 0


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value
