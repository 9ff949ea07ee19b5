"""The sweeper: no verdict row is left behind by a process that died.

Runs in ``jury serve`` and in ``jury worker``, every ``sweep_interval_s``. Each pass:

- marks ``interrupted`` the synchronous verdicts still ``running`` well past their bound (their
  deadline, the shutdown grace and a database timeout: no live process can still be deciding
  them), and publishes their terminal ``failed`` event, which ends their SSE streams;
- queues again the asynchronous verdicts whose job may be lost: ``queued`` for longer than
  ``queue_redelivery_s`` (a job kept in the memory of a process that died, or trimmed from the
  stream) or claimed under a lease that lapsed. A second delivery of a job that was not lost
  is harmless: the verdict row's claim lets one worker run it;
- deletes the ``Idempotency-Key`` rows whose claim or answer has lapsed (a later request with
  such a key would take the row over anyway: this only keeps the table small).

Safe with any number of replicas: a row is interrupted by one conditional UPDATE, so of several
sweepers one wins (and only the winner publishes the event).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
from anyio.abc import TaskStatus

from app.core.config import JuryConfig
from app.core.db import SessionMaker, session_scope
from app.core.errors import DatabaseError, UnavailableError
from app.core.settings import Settings
from app.deliberation.events import Event, EventSink
from app.verdicts.idempotency import forget_expired
from app.verdicts.jobs.queue import VerdictQueue
from app.verdicts.record.repository import VerdictRepository
from app.verdicts.record.tables import Verdict

logger = logging.getLogger("jury.sweeper")

ABANDONED = "abandoned: the process deciding it ended before it recorded an outcome"


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Swept:
    """What one pass did."""

    interrupted: int = 0
    requeued: int = 0
    expired_keys: int = 0


class Sweeper:
    """Find the rows dead processes left and give each an end or another worker."""

    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        config: JuryConfig,
        settings: Settings,
        queue: VerdictQueue,
        events: EventSink,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._config = config
        self._settings = settings
        self._queue = queue
        self._events = events
        self._clock = clock
        self._interval_s = settings.sweep_interval_s
        # How long a live process may still be deciding a verdict after its deadline.
        self._overrun = timedelta(seconds=settings.shutdown_grace_s + settings.database_timeout_s)
        self._redelivery = timedelta(seconds=settings.queue_redelivery_s)

    def at(self, clock: Callable[[], datetime]) -> Sweeper:
        """Return the same sweeper on another clock (a test's, ahead of time)."""
        return Sweeper(
            sessionmaker=self._sessionmaker,
            config=self._config,
            settings=self._settings,
            queue=self._queue,
            events=self._events,
            clock=clock,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sweep every ``sweep_interval_s`` until cancelled; a database fault skips a pass."""
        task_status.started()
        while True:
            await anyio.sleep(self._interval_s)
            try:
                await self.sweep()
            except (UnavailableError, DatabaseError) as exc:
                logger.warning("sweep skipped: %s", exc.detail)

    async def sweep(self) -> Swept:
        """Run one pass; return what it did."""
        swept = Swept(
            interrupted=await self._interrupt_abandoned(),
            requeued=await self._requeue(),
            expired_keys=await forget_expired(self._sessionmaker, self._clock()),
        )
        if swept.interrupted or swept.requeued:
            logger.info(
                "sweep: %d abandoned verdict(s) interrupted, %d job(s) queued again",
                swept.interrupted,
                swept.requeued,
            )
        return swept

    async def _interrupt_abandoned(self) -> int:
        now = self._clock()
        # No verdict may run longer than the longest deadline: older rows are the candidates.
        async with session_scope(self._sessionmaker) as session:
            candidates = await VerdictRepository(session).running_unclaimed(
                started_before=now - self._overrun
            )
        interrupted = 0
        for row in candidates:
            if not self._past_bound(row, now):
                continue
            async with session_scope(self._sessionmaker) as session:
                won = await VerdictRepository(session).interrupt_abandoned(
                    row.id, now=now, detail=ABANDONED
                )
            if won:
                interrupted += 1
                await self._events.publish(
                    Event(type="failed", verdict_id=row.id, detail="interrupted: " + ABANDONED)
                )
        return interrupted

    def _past_bound(self, row: Verdict, now: datetime) -> bool:
        deadline_s = (row.request or {}).get("deadline_s") or self._config.protocol.deadline_s
        started = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return now > started + timedelta(seconds=float(deadline_s)) + self._overrun

    async def _requeue(self) -> int:
        now = self._clock()
        async with session_scope(self._sessionmaker) as session:
            ids = await VerdictRepository(session).orphaned_async_ids(
                now=now, queued_before=now - self._redelivery
            )
        for verdict_id in ids:
            await self._queue.enqueue(verdict_id)
        return len(ids)
