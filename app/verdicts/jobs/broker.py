"""The taskiq broker of the jobs stream, with the reclaim of a dead worker's jobs fixed.

taskiq-redis 1.2.4's ``RedisStreamBroker.listen`` runs its XAUTOCLAIM pass only after a read
that brought new messages (``if not fetched: continue``): on a quiet queue, a job whose worker
was killed is never delivered again. This broker reclaims on every pass. XAUTOCLAIM is atomic
and resets the idle time of what it claims, so two workers never take the same job at once
(and the verdict row's claim guards against a second run anyway).

Imported on use only: importing taskiq takes a second at every CLI start-up.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker


class ReclaimingStreamBroker(RedisStreamBroker):
    """A Redis Streams broker whose workers take over idle unacknowledged jobs on every pass."""

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield new jobs, then jobs left unacknowledged past ``idle_timeout``, forever."""
        async with Redis(connection_pool=self.connection_pool) as connection:
            while True:
                for message in await self._read_new(connection):
                    yield message
                for message in await self._reclaim(connection):
                    yield message

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


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value
