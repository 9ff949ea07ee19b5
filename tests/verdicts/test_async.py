"""Asynchronous verdicts: 202 now, the verdict from a worker (or this process) later."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from sqlalchemy import func
from sqlmodel import select

from app.core.config import JuryConfig
from app.core.db import (
    SessionMaker,
    connection_scope,
    create_engine,
    create_sessionmaker,
    session_scope,
)
from app.core.settings import Settings
from app.deliberation.schemas import VerdictRequest
from app.runtime import open_runtime
from app.verdicts.jobs.queue import GROUP, STREAM
from app.verdicts.record.repository import VerdictRepository
from app.verdicts.record.statements import ClaimedRow, ended
from app.verdicts.record.tables import ModelCall, Verdict
from tests.builders import app_client, eventually, make_settings, scripted_config, step
from tests.workers import worker_in_process, worker_process

pytestmark = pytest.mark.anyio

QUESTION = {"question": "Ship release 4.2?"}
ASYNC = {"Prefer": "respond-async"}


def panel(latency_ms: float = 50) -> JuryConfig:
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=latency_ms)],
            "bravo": [step("approve", latency_ms=latency_ms)],
        },
        max_rounds=1,
    )


async def decided(client: httpx.AsyncClient, location: str, timeout_s: float = 20) -> Any:
    """Poll ``location`` until the verdict is no longer queued or running."""

    async def body() -> Any:
        return (await client.get(location)).json()

    return await eventually(
        body,
        lambda seen: seen["status"] not in ("queued", "running"),
        what=f"{location} decided",
        timeout_s=timeout_s,
    )


async def row_of(sessionmaker: SessionMaker, verdict_id: str) -> Verdict:
    async with sessionmaker() as session:
        row = await session.get(Verdict, verdict_id)
    assert row is not None
    return row


async def judge_calls(sessionmaker: SessionMaker, verdict_id: str) -> int:
    async with sessionmaker() as session:
        statement = (
            select(func.count())
            .select_from(ModelCall)
            .where(ModelCall.verdict_id == verdict_id, ModelCall.role == "judge")
        )
        return int((await session.exec(statement)).one())


@pytest.mark.parametrize("ask", ["header", "body"])
async def test_an_async_request_is_accepted_at_once_and_decided_later(
    sqlite_database: str, redis_or_none: str | None, ask: str
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    body = {**QUESTION, "mode": "async"} if ask == "body" else QUESTION
    worker = worker_in_process(settings, panel()) if redis_or_none else nullcontext()
    async with app_client(settings, panel()) as client, worker:
        accepted = await client.post(
            "/verdict", json=body, headers=ASYNC if ask == "header" else {}
        )
        verdict = await decided(client, accepted.headers["location"])

    assert accepted.status_code == 202
    queued = accepted.json()
    assert queued["status"] == "queued"
    assert accepted.headers["location"] == queued["location"] == f"/verdicts/{queued['id']}"
    assert queued["events"] == f"/verdicts/{queued['id']}/events"
    assert accepted.headers["preference-applied"] == "respond-async"
    assert verdict["status"] == "completed"
    assert (verdict["id"], verdict["verdict"]) == (queued["id"], "approve")


async def test_an_invalid_async_request_is_refused_at_once(sqlite_database: str) -> None:
    async with app_client(make_settings(sqlite_database), panel()) as client:
        refused = await client.post("/verdict", json={**QUESTION, "panel": "nope"}, headers=ASYNC)
        listed = (await client.get("/verdicts")).json()

    assert refused.status_code == 422
    assert refused.json()["field"] == "panel"
    assert listed["total"] == 0


async def test_a_job_delivered_twice_is_decided_once(database_url: str) -> None:
    settings = make_settings(database_url)
    async with open_runtime(settings, config=panel(latency_ms=200)) as runtime:
        accepted = await runtime.verdicts.submit(VerdictRequest.model_validate(QUESTION))
        outcomes = await asyncio.gather(
            runtime.jobs.run(accepted.id), runtime.jobs.run(accepted.id)
        )
        row = await row_of(runtime.sessionmaker, accepted.id)
        judged = await judge_calls(runtime.sessionmaker, accepted.id)

    assert sorted(outcomes) == ["done", "held"]
    assert (row.status, row.attempts, judged) == ("completed", 1, 1)


async def test_a_lapsed_claim_is_taken_over_and_its_worker_cannot_finish(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    async with open_runtime(settings, config=panel()) as runtime:
        accepted = await runtime.verdicts.submit(VerdictRequest.model_validate(QUESTION))
        past = datetime.now(UTC) - timedelta(minutes=5)
        async with session_scope(runtime.sessionmaker) as session:
            claimed = await VerdictRepository(session).claim(
                accepted.id, "dead-worker", now=past, until=past + timedelta(seconds=30)
            )
        outcome = await runtime.jobs.run(accepted.id)
        # The dead worker's late write, as its VerdictRecord would make it.
        dead = ClaimedRow(accepted.id, "dead-worker")
        lost = ended(dead, "failed", error=None, at=datetime.now(UTC))
        async with connection_scope(runtime.sessionmaker) as connection:
            result = await connection.execute(lost.statement, lost.params)
            zombie = result.rowcount == 1
        row = await row_of(runtime.sessionmaker, accepted.id)

    assert claimed
    assert outcome == "done"
    assert (row.status, row.attempts) == ("completed", 2)
    assert row.claimed_by != "dead-worker"
    assert not zombie


async def test_serve_takes_up_the_verdicts_a_previous_process_left_queued(
    sqlite_database: str,
) -> None:
    settings = make_settings(sqlite_database)
    async with open_runtime(settings, config=panel()) as runtime:
        left = await runtime.verdicts.submit(VerdictRequest.model_validate(QUESTION))

    async with app_client(settings, panel()) as client:
        verdict = await decided(client, f"/verdicts/{left.id}")

    assert (verdict["status"], verdict["verdict"]) == ("completed", "approve")


# --- a worker killed mid-verdict --------------------------------------------------------------


def slow_panel_file(path: Path, *, juror_s: float = 3) -> Path:
    """Write a config whose two jurors take ``juror_s`` each, so that a worker can be killed
    mid-way."""
    juror = {"model": "scripted", "timeout_s": max(30, juror_s * 2)}
    answer = {"position": "approve", "confidence": 0.8, "latency_ms": int(juror_s * 1000)}
    raw = {
        "protocol": {"default_options": ["approve", "reject"], "max_rounds": 1, "quorum": 2},
        "jurors": [
            {**juror, "name": name, "family": f"f-{name}", "script": {"rounds": [answer]}}
            for name in ("alpha", "bravo")
        ],
        "judges": [
            {
                **juror,
                "name": "judge",
                "family": "f-judge",
                "script": {"rounds": [{"position": "approve", "confidence": 0.9}]},
            }
        ],
        "panels": {"default": {"jurors": ["alpha", "bravo"], "judge": "judge"}},
    }
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def worker_environment(settings: Settings) -> dict[str, str]:
    return {
        "JURY_DATABASE_URL": settings.database_url,
        "JURY_REDIS_URL": settings.redis_url or "",
        "JURY_CONFIG": str(settings.config),
        "JURY_AUTO_MIGRATE": "false",
        "JURY_WORKER_LEASE_S": str(settings.worker_lease_s),
        "JURY_QUEUE_REDELIVERY_S": str(settings.queue_redelivery_s),
        "JURY_SHUTDOWN_GRACE_S": "1",
    }


async def wait_for(
    sessionmaker: SessionMaker, verdict_id: str, done: Any, timeout_s: float
) -> Verdict:
    return await eventually(
        lambda: row_of(sessionmaker, verdict_id),
        done,
        what=f"verdict {verdict_id} got there",
        timeout_s=timeout_s,
        every_s=0.1,
    )


def pending_jobs(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        summary: Any = client.xpending(STREAM, GROUP)
        return int(summary["pending"])


async def test_a_verdict_survives_its_worker_being_killed(
    sqlite_database: str, redis_url: str, tmp_path: Path
) -> None:
    """kill -9 the worker mid-verdict; the next worker decides it, once."""
    settings = make_settings(
        sqlite_database,
        redis_url=redis_url,
        config=slow_panel_file(tmp_path / "slow.yaml"),
        worker_lease_s=2,
        queue_redelivery_s=3,
    )
    environ = worker_environment(settings)
    engine = create_engine(sqlite_database)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with app_client(settings) as client:
            accepted = (await client.post("/verdict", json=QUESTION, headers=ASYNC)).json()
        with worker_process(environ, tmp_path / "first.log") as first:
            claimed = await wait_for(
                sessionmaker, accepted["id"], lambda row: row.claimed_by, timeout_s=90
            )
            await asyncio.sleep(0.5)
            first.kill()
            first.wait(timeout=10)
        orphaned = await row_of(sessionmaker, accepted["id"])
        with worker_process(environ, tmp_path / "second.log"):
            finished = await wait_for(
                sessionmaker, accepted["id"], lambda row: row.status != "running", timeout_s=90
            )
            await wait_until(lambda: pending_jobs(redis_url) == 0, timeout_s=15)
        judged = await judge_calls(sessionmaker, accepted["id"])
    finally:
        await engine.dispose()

    assert (orphaned.status, orphaned.claimed_by) == ("running", claimed.claimed_by)
    assert finished.status == "completed", (tmp_path / "second.log").read_text()
    assert finished.attempts == 2
    assert finished.claimed_by != claimed.claimed_by
    assert judged == 1
    assert finished.response is not None
    assert finished.response["id"] == accepted["id"]


async def wait_until(check: Any, *, timeout_s: float) -> None:
    async def checked() -> Any:
        return check()

    await eventually(checked, what="the check", timeout_s=timeout_s, every_s=0.2)


async def test_a_worker_stopped_mid_verdict_puts_it_back_in_the_queue(
    sqlite_database: str, redis_url: str, tmp_path: Path
) -> None:
    """SIGTERM past the grace: the verdict goes back to the queue and another worker decides it."""
    settings = make_settings(
        sqlite_database,
        redis_url=redis_url,
        config=slow_panel_file(tmp_path / "slow.yaml"),
        worker_lease_s=2,
        queue_redelivery_s=3,
    )
    environ = worker_environment(settings)  # a grace of 1 s, shorter than the 3 s verdict
    engine = create_engine(sqlite_database)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with app_client(settings) as client:
            accepted = (await client.post("/verdict", json=QUESTION, headers=ASYNC)).json()
        with worker_process(environ, tmp_path / "first.log") as first:
            await wait_for(sessionmaker, accepted["id"], lambda row: row.claimed_by, timeout_s=90)
            first.terminate()
            exit_code = first.wait(timeout=30)
        released = await row_of(sessionmaker, accepted["id"])
        with worker_process(environ, tmp_path / "second.log"):
            finished = await wait_for(
                sessionmaker, accepted["id"], lambda row: row.status == "completed", timeout_s=90
            )
    finally:
        await engine.dispose()

    assert exit_code == 0, (tmp_path / "first.log").read_text()
    assert (released.status, released.claimed_by) == ("queued", None)
    assert finished.attempts == 2
