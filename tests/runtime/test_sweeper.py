"""The sweeper: rows a dead process left get an end (synchronous) or another worker (queued).

A dead process is simulated by what it leaves behind: a ``running`` row no live process decides
(written through the same record as a real verdict, then abandoned), or a ``queued`` row whose
job was never delivered. The sweeper's clock is injected: no test waits for a deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
import redis

from app.core.config import JuryConfig
from app.deliberation.events import TERMINAL_EVENTS
from app.deliberation.schemas import VerdictRequest
from app.runtime import Runtime, open_runtime
from app.verdicts.jobs.queue import STREAM
from app.verdicts.preparation import VerdictPreparation
from app.verdicts.record.tables import Verdict
from app.verdicts.record.verdict import VerdictRecord
from app.verdicts.record.writer import RecordWriter
from app.verdicts.sweeper import Sweeper
from tests.builders import make_settings, scripted_config, step

pytestmark = pytest.mark.anyio

DEADLINE_S = 10.0


def panel() -> JuryConfig:
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )


def later(by_s: float) -> Callable[[], datetime]:
    """Return a clock ``by_s`` seconds ahead of now."""
    return lambda: datetime.now(UTC) + timedelta(seconds=by_s)


async def abandoned_row(runtime: Runtime, status: str = "running") -> str:
    """Write a verdict's row as a process that then died would have left it; return its id."""
    preparation = VerdictPreparation(config=runtime.config, settings=runtime.settings)
    request = VerdictRequest(question="Ship it?", deadline_s=DEADLINE_S)
    prepared = await preparation.prepare(request, api_key_id=None)
    writer = RecordWriter(runtime.sessionmaker)
    try:
        record = VerdictRecord.open(
            writer,
            docket=prepared.docket,
            request=request,
            api_key_id=None,
            status="running" if status == "running" else "queued",
        )
        await record.written()
    finally:
        writer.close()
    return prepared.verdict_id


def sweeper(runtime: Runtime, *, ahead_s: float) -> Sweeper:
    """Return the runtime's sweeper on a clock ``ahead_s`` seconds ahead."""
    return runtime.sweeper.at(later(ahead_s))


async def status_of(runtime: Runtime, verdict_id: str) -> Verdict:
    async with runtime.sessionmaker() as session:
        row = await session.get(Verdict, verdict_id)
    assert row is not None
    return row


async def test_an_abandoned_verdict_is_interrupted_once_past_its_bound(database_url: str) -> None:
    settings = make_settings(database_url, shutdown_grace_s=5, database_timeout_s=1)
    async with open_runtime(settings, config=panel()) as runtime:
        left = await abandoned_row(runtime)
        # Within deadline + grace + database timeout (16 s): a live process may still decide it.
        early = await sweeper(runtime, ahead_s=12).sweep()
        still = await status_of(runtime, left)
        # Well past it, from two replicas at once: one of them interrupts it.
        async with anyio.create_task_group() as group:
            results = []

            async def sweep_from_a_replica() -> None:
                results.append(await sweeper(runtime, ahead_s=60).sweep())

            group.start_soon(sweep_from_a_replica)
            group.start_soon(sweep_from_a_replica)
        row = await status_of(runtime, left)
        stream = await runtime.progress.follow(left, owner=None, after=None)
        with anyio.fail_after(10):
            events = [entry async for entry in stream if entry is not None]

    assert early.interrupted == 0
    assert still.status == "running"
    assert sorted(result.interrupted for result in results) == [0, 1]
    assert row.status == "interrupted"
    assert row.finished_at is not None
    assert row.error is not None
    assert "abandoned" in row.error["detail"]
    # Its event stream ends, with a terminal event.
    assert events[-1][1].type in TERMINAL_EVENTS
    assert events[-1][1].type == "failed"


async def test_a_verdict_decided_to_the_end_is_never_swept(sqlite_database: str) -> None:
    settings = make_settings(sqlite_database)
    async with open_runtime(settings, config=panel()) as runtime:
        verdict = await runtime.verdicts.decide(VerdictRequest(question="Ship it?"))
        swept = await sweeper(runtime, ahead_s=86_400).sweep()
        row = await status_of(runtime, verdict.id)

    assert swept.interrupted == 0
    assert row.status == "completed"


async def test_an_orphaned_queued_job_is_queued_again(sqlite_database: str, redis_url: str) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_url, queue_redelivery_s=60)
    async with open_runtime(settings, config=panel()) as runtime:
        # Queued by a process that died before the job reached Redis.
        orphan = await abandoned_row(runtime, status="queued")
        fresh = await sweeper(runtime, ahead_s=1).sweep()
        old = await sweeper(runtime, ahead_s=120).sweep()
        row = await status_of(runtime, orphan)

    with closing(redis.Redis.from_url(redis_url)) as client:
        jobs: Any = client.xrange(STREAM)
    assert fresh.requeued == 0
    assert old.requeued == 1
    assert row.status == "queued"
    assert [fields[b"data"] for _id, fields in jobs if orphan.encode() in fields[b"data"]]
