"""Running one asynchronous verdict: claim it, keep the claim alive, say what became of it.

Whatever delivers the job (the Redis queue to a ``jury worker``, or the in-process queue), the
verdict row is the guard: a worker deliberates only after a conditional UPDATE made it the
verdict's claimant (``queued``, or ``running`` under a lapsed claim), renews its lease while it
runs, and records the outcome only while the claim is still its own. So a job delivered twice
runs to completion once, and a job whose worker was killed is taken over once the lease lapses.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Literal

import anyio

from app.core import metrics
from app.core.clock import WallClock, utcnow
from app.core.db import SessionMaker, session_scope
from app.core.errors import ClaimLostError, DatabaseError, JuryError, UnavailableError
from app.verdicts.record.repository import VerdictRepository
from app.verdicts.service import VerdictService

logger = logging.getLogger("jury.jobs")

# done: the verdict has its outcome (by this job or an earlier one): acknowledge the job.
# missing: no such verdict: acknowledge. held: another worker's live claim holds it: leave the
# job for later. released: shutdown, a lost claim or a database fault: deliver it again later.
JobOutcome = Literal["done", "missing", "held", "released"]
ACKNOWLEDGE: frozenset[JobOutcome] = frozenset({"done", "missing"})
Claimed = Literal["claimed"]


class VerdictJobs:
    """Claim and deliberate queued verdicts."""

    def __init__(
        self,
        verdicts: VerdictService,
        sessionmaker: SessionMaker,
        *,
        lease_s: float,
        clock: WallClock = utcnow,
    ) -> None:
        self._verdicts = verdicts
        self._sessionmaker = sessionmaker
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock

    async def run(self, verdict_id: str) -> JobOutcome:
        """Deliberate the verdict if this worker can claim it; return what became of the job."""
        worker = str(uuid.uuid4())
        try:
            claimed = await self._claim(verdict_id, worker)
            outcome = (
                claimed if claimed != "claimed" else await self._deliberate(verdict_id, worker)
            )
        except (UnavailableError, DatabaseError) as exc:
            logger.warning("verdict %s: database unavailable (%s)", verdict_id, exc.detail)
            outcome = "released"
        metrics.ASYNC_JOBS.labels(outcome).inc()
        logger.info("verdict %s: job %s", verdict_id, outcome)
        return outcome

    async def _claim(self, verdict_id: str, worker: str) -> JobOutcome | Claimed:
        now = self._clock()
        async with session_scope(self._sessionmaker) as session:
            repository = VerdictRepository(session)
            if await repository.claim(verdict_id, worker, now=now, until=now + self._lease):
                return "claimed"
            row = await repository.get(verdict_id)
        if row is None:
            return "missing"
        return "held" if row.status in ("queued", "running") else "done"

    async def _deliberate(self, verdict_id: str, worker: str) -> JobOutcome:
        outcome: JobOutcome = "released"
        lost = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(self._keep_claim, verdict_id, worker, lost, group.cancel_scope)
            try:
                verdict = await self._verdicts.decide_claimed(verdict_id, worker=worker)
                outcome = "done" if verdict is not None else "released"
            except (ClaimLostError, UnavailableError) as exc:
                logger.warning("verdict %s: %s", verdict_id, exc.detail)
            except JuryError:
                outcome = "done"  # no quorum, spend cap, an invalid request: all recorded
            finally:
                group.cancel_scope.cancel()
        if lost.is_set():
            logger.warning("verdict %s: claim lost to another worker", verdict_id)
        return outcome

    async def _keep_claim(
        self, verdict_id: str, worker: str, lost: anyio.Event, scope: anyio.CancelScope
    ) -> None:
        """Renew the lease every third of it; stop the deliberation if the claim is lost."""
        interval = self._lease.total_seconds() / 3
        while True:
            await anyio.sleep(interval)
            try:
                async with session_scope(self._sessionmaker) as session:
                    renewed = await VerdictRepository(session).renew(
                        verdict_id, worker, until=self._clock() + self._lease
                    )
            except (UnavailableError, DatabaseError):
                continue  # the database may come back before the lease lapses
            if not renewed:
                lost.set()
                scope.cancel()
                return
