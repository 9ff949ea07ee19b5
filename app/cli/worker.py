"""``jury worker``: deliberate the asynchronous verdicts queued on Redis.

Any number of workers read the jobs stream as one consumer group. A job is acknowledged once its
verdict has an outcome; on SIGTERM or SIGINT a worker stops taking jobs, lets those in progress
finish within ``JURY_SHUTDOWN_GRACE_S``, and puts the rest back in the queue (unacknowledged, so
another worker takes them over). A worker killed outright loses nothing either: its claims lapse
after ``JURY_WORKER_LEASE_S`` and its jobs are delivered again after ``JURY_QUEUE_REDELIVERY_S``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import anyio
from taskiq import Context, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from app.core.config import JuryConfig
from app.core.errors import ConfigError
from app.core.heap import freeze_startup_heap
from app.core.settings import Settings
from app.runtime import open_runtime
from app.verdicts.jobs.claims import ACKNOWLEDGE, JobOutcome, VerdictJobs
from app.verdicts.jobs.queue import TASK_NAME, make_broker

logger = logging.getLogger("jury.worker")


def job_handler(jobs: VerdictJobs) -> Callable[..., Awaitable[JobOutcome]]:
    """Return the taskiq task that runs one verdict job and acknowledges it when it is done."""

    async def deliberate(verdict_id: str, context: Context = TaskiqDepends()) -> JobOutcome:
        outcome = await jobs.run(verdict_id)
        if outcome in ACKNOWLEDGE:
            await context.ack()
        return outcome

    return deliberate


async def run_worker(
    settings: Settings, *, config: JuryConfig | None = None, stop: anyio.Event | None = None
) -> None:
    """Take jobs until ``stop`` is set, or, without it, until SIGTERM or SIGINT.

    Then stop taking jobs and let those in progress end (``shutdown_grace_s``).
    """
    if not settings.redis_url:
        raise ConfigError(
            "jury worker needs JURY_REDIS_URL: without Redis, `jury serve` runs asynchronous "
            "verdicts itself"
        )
    async with open_runtime(settings, config=config, sweep=True) as runtime:
        broker = make_broker(settings, settings.redis_url, worker=True)
        broker.register_task(job_handler(runtime.jobs), task_name=TASK_NAME)
        broker.is_worker_process = True
        await broker.startup()
        freeze_startup_heap()
        try:
            await _consume(broker, settings, stop)
        finally:
            with anyio.CancelScope(shield=True):
                await broker.shutdown()


async def _consume(broker: RedisStreamBroker, settings: Settings, stop: anyio.Event | None) -> None:
    finish = asyncio.Event()
    receiver = Receiver(
        broker,
        max_async_tasks=settings.worker_concurrency,
        ack_type=AcknowledgeType.MANUAL,
        run_startup=False,
        wait_tasks_timeout=settings.shutdown_grace_s,
    )
    logger.info(
        "worker ready: %d verdict(s) at once, lease %.0fs",
        settings.worker_concurrency,
        settings.worker_lease_s,
    )
    async with anyio.create_task_group() as group:
        if stop is not None:
            group.start_soon(_wait_for_stop, stop, finish)
        else:
            group.start_soon(_wait_for_signal, finish)
        await receiver.listen(finish)
        group.cancel_scope.cancel()


async def _wait_for_stop(stop: anyio.Event, finish: asyncio.Event) -> None:
    await stop.wait()
    finish.set()


async def _wait_for_signal(finish: asyncio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            logger.info("%s: finishing the verdicts in progress", signal.Signals(received).name)
            finish.set()
            return
