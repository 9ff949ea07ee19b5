"""The queue of asynchronous verdicts: a Redis Stream for ``jury worker``s, or this process.

With Redis, a job is a taskiq message on the Redis Stream ``jury:queue:verdicts``, read by the
``jury-workers`` consumer group (taskiq-redis's stream broker; ``app.verdicts.jobs.broker`` fixes
its reclaim). A worker acknowledges a job only once the verdict has its outcome; a job its worker
never acknowledged (killed) is claimed by another worker after ``queue_redelivery_s``
(XAUTOCLAIM). The verdict row's claim (``app.verdicts.jobs.claims``) makes a second delivery
harmless.

Without Redis, or when Redis fails at the moment a verdict is queued, the job goes to this
process's own queue, run by a background task of the lifespan; at start-up that queue takes up
the verdicts a previous process left queued or claimed.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from app.core.db import SessionMaker, session_scope
from app.core.errors import DatabaseError, UnavailableError
from app.core.redis import REDIS_FAILURES, RedisLink, client_options
from app.core.settings import Settings
from app.verdicts.jobs.claims import VerdictJobs
from app.verdicts.record.repository import VerdictRepository

if TYPE_CHECKING:
    from taskiq_redis import RedisStreamBroker

logger = logging.getLogger("jury.queue")

TASK_NAME = "jury.verdicts.deliberate"
STREAM = "jury:queue:verdicts"
GROUP = "jury-workers"
# Acknowledged jobs stay in the stream until trimmed; an unacknowledged job trimmed away is
# lost to the stream, but its verdict row still says "queued" (see the README).
STREAM_MAXLEN = 100_000
WORKER_BLOCK_MS = 1_000


def make_broker(settings: Settings, url: str, *, worker: bool) -> RedisStreamBroker:
    """Return the taskiq broker on the jobs stream: a worker's reads block, a sender's do not."""
    from app.verdicts.jobs.broker import ReclaimingStreamBroker  # on use: taskiq is slow to import

    block_s = WORKER_BLOCK_MS / 1000 if worker else 0.0
    options = client_options(settings, read_timeout_s=block_s + settings.redis_timeout_s)
    return ReclaimingStreamBroker(
        url,
        queue_name=STREAM,
        consumer_group_name=GROUP,
        # "0": a group created after the first jobs were sent still delivers them.
        consumer_id="0",
        xread_block=WORKER_BLOCK_MS,
        xread_count=1,
        maxlen=STREAM_MAXLEN,
        idle_timeout=int(settings.queue_redelivery_s * 1000),
        unacknowledged_batch_size=10,
        **options,
    )


class MemoryQueue:
    """Jobs run by this process, at most ``concurrency`` at once."""

    def __init__(self, jobs: VerdictJobs, *, concurrency: int, retry_s: float) -> None:
        self._jobs = jobs
        self._slots = anyio.Semaphore(concurrency)
        self._retry_s = retry_s
        self._send, self._receive = anyio.create_memory_object_stream[str](math.inf)

    async def enqueue(self, verdict_id: str) -> None:
        """Queue a job (dropped after ``close``: the row stays queued for the next start)."""
        with contextlib.suppress(anyio.ClosedResourceError):
            self._send.send_nowait(verdict_id)

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run queued jobs until cancelled."""
        async with anyio.create_task_group() as group:
            task_status.started()
            async for verdict_id in self._receive:
                await self._slots.acquire()
                group.start_soon(self._run, verdict_id)

    def close(self) -> None:
        """Take no more jobs."""
        self._send.close()
        self._receive.close()

    async def _run(self, verdict_id: str) -> None:
        try:
            outcome = await self._jobs.run(verdict_id)
        finally:
            self._slots.release()
        if outcome in ("released", "held"):
            # A database fault or a live claim elsewhere: try again once the lease may lapse.
            await anyio.sleep(self._retry_s)
            await self.enqueue(verdict_id)


class VerdictQueue:
    """Send verdict jobs to the workers' Redis Stream, or to this process's queue."""

    def __init__(
        self, memory: MemoryQueue, *, link: RedisLink | None, broker: RedisStreamBroker | None
    ) -> None:
        self.memory = memory
        self._link = link
        self._broker = broker

    async def enqueue(self, verdict_id: str) -> None:
        """Queue the job of a verdict recorded as ``queued``."""
        if self._link is None or self._broker is None:
            await self.memory.enqueue(verdict_id)
            return
        await self._link.attempt(
            "queue", lambda _client: self._send(verdict_id), lambda: self.memory.enqueue(verdict_id)
        )

    async def _send(self, verdict_id: str) -> None:
        from taskiq.exceptions import SendTaskError
        from taskiq.kicker import AsyncKicker

        assert self._broker is not None
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=TASK_NAME, broker=self._broker, labels={}
        )
        try:
            await kicker.kiq(verdict_id)
        except SendTaskError as exc:
            cause = exc.__cause__
            if isinstance(cause, REDIS_FAILURES):
                raise cause from exc
            raise

    async def aclose(self) -> None:
        """Take no more jobs and close the broker's connections."""
        self.memory.close()
        if self._broker is not None:
            await self._broker.shutdown()


async def recover(queue: MemoryQueue, sessionmaker: SessionMaker) -> int:
    """Queue in this process the verdicts left queued, or claimed by a process now gone.

    A claim whose lease has not lapsed yet is retried until it has.
    """
    try:
        async with session_scope(sessionmaker) as session:
            ids = await VerdictRepository(session).unfinished_async_ids()
    except (UnavailableError, DatabaseError) as exc:
        logger.warning("queued verdicts not taken up at start-up: %s", exc.detail)
        return 0
    for verdict_id in ids:
        await queue.enqueue(verdict_id)
    if ids:
        logger.info("took up %d asynchronous verdict(s) left by a previous process", len(ids))
    return len(ids)
