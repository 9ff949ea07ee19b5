"""``Idempotency-Key`` across Redis outages: the database holds every key durably.

Each test runs a redis-server of its own and freezes it (SIGSTOP: connections stay open,
commands get no answer), on SQLite and on PostgreSQL. A key answered while Redis is frozen is
replayed once Redis is back (Redis never heard of it) and after a restart; two replicas that
both fall back to their memory still deliberate a key once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import JuryConfig
from app.core.db import create_engine, create_sessionmaker
from app.core.settings import Settings
from app.verdicts.idempotency import Claim, DatabaseKeys, forget_expired
from eval.redis_servers import RedisServer, redis_server
from tests.builders import app_client, eventually, make_settings, scripted_config, step
from tests.verdicts.test_idempotency import QUESTION, count_rows, keyed

pytestmark = pytest.mark.anyio

REDIS_TIMEOUT_S = 0.3


def panel(latency_ms: float = 1) -> JuryConfig:
    """Two scripted jurors, one round."""
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=latency_ms)],
            "bravo": [step("approve", latency_ms=latency_ms)],
        },
        max_rounds=1,
    )


def settings_on(database_url: str, server: RedisServer) -> Settings:
    # The breaker stays open until /readyz sees Redis answer again (its probe closes it).
    return make_settings(
        database_url,
        redis_url=server.url,
        redis_timeout_s=REDIS_TIMEOUT_S,
        redis_retry_after_s=300,
    )


async def redis_back(client: httpx.AsyncClient) -> None:
    """Wait until the process uses Redis again (its readiness probe reopens the breaker)."""

    async def redis_check() -> str:
        return str((await client.get("/readyz")).json()["checks"]["redis"])

    await eventually(redis_check, lambda seen: seen == "ok", what="redis answering again")


@asynccontextmanager
async def frozen(server: RedisServer) -> AsyncIterator[None]:
    """Freeze Redis for the block; thaw it however the block ends."""
    server.pause()
    try:
        yield
    finally:
        server.resume()


async def test_a_key_answered_while_redis_was_frozen_is_replayed_once_it_is_back(
    database_url: str, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as server:
        settings = settings_on(database_url, server)
        async with app_client(settings, panel()) as client:
            await client.post("/verdict", json=QUESTION)  # connections open before the freeze
            async with frozen(server):
                first = await client.post("/verdict", json=QUESTION, headers=keyed("outage-1"))
                queued = await client.post(
                    "/verdict", json=QUESTION, headers=keyed("outage-2", Prefer="respond-async")
                )
            await redis_back(client)
            again = await client.post("/verdict", json=QUESTION, headers=keyed("outage-1"))
            queued_again = await client.post(
                "/verdict", json=QUESTION, headers=keyed("outage-2", Prefer="respond-async")
            )
            other_body = await client.post(
                "/verdict", json={**QUESTION, "question": "Other?"}, headers=keyed("outage-1")
            )
        # A new process, with Redis up: it has neither the key in memory nor in Redis's copy
        # of a key answered during the outage, only the database's.
        async with app_client(settings, panel()) as restarted:
            after_restart = await restarted.post(
                "/verdict", json=QUESTION, headers=keyed("outage-1")
            )

    assert first.status_code == 200, first.text
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert queued.status_code == queued_again.status_code == 202
    assert queued_again.json()["id"] == queued.json()["id"]
    assert other_body.status_code == 422
    assert other_body.json()["error"] == "idempotency_key_reused"
    assert after_restart.status_code == 200
    assert after_restart.json()["id"] == first.json()["id"]
    # The warm-up verdict, the keyed one and the queued one: nothing deliberated twice.
    assert (await count_rows(database_url))[0] == 3


async def _ask_many(
    clients: list[httpx.AsyncClient], key: str, per_client: int
) -> list[httpx.Response]:
    requests = [
        client.post("/verdict", json=QUESTION, headers=keyed(key))
        for client in clients
        for _ in range(per_client)
    ]
    return list(await asyncio.gather(*requests))


async def test_two_replicas_with_redis_frozen_give_one_verdict_for_a_key(
    database_url: str, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as server:
        settings = settings_on(database_url, server)
        async with AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(app_client(settings, panel(latency_ms=300)))
                for _ in range(2)
            ]
            for replica in replicas:
                await replica.get("/readyz")  # connections open before the freeze
            async with frozen(server):
                answers = await _ask_many(replicas, "race-1", per_client=4)
                # Once the first has answered, each replica replays it, still without Redis.
                replays = await _ask_many(replicas, "race-1", per_client=1)
            await redis_back(replicas[0])
            after = await _ask_many(replicas, "race-1", per_client=1)

    statuses = sorted(response.status_code for response in answers)
    decided = {response.json()["id"] for response in answers if response.status_code == 200}
    assert set(statuses) <= {200, 409}, [response.text for response in answers]
    assert len(decided) == 1
    in_flight = [response for response in answers if response.status_code == 409]
    assert all(r.json()["error"] == "request_in_progress" for r in in_flight)
    for response in (*replays, *after):
        assert response.status_code == 200, response.text
        assert response.json()["id"] in decided
        assert response.headers["idempotent-replayed"] == "true"
    assert (await count_rows(database_url))[0] == 1


class StepClock:
    """A wall clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _claim(token: str) -> Claim:
    return Claim(key="k", scope="local", digest="d" * 64, token=token, fingerprint="f")


async def test_a_claim_left_running_by_a_dead_process_lapses(database_url: str) -> None:
    engine = create_engine(database_url)
    clock = StepClock()
    keys = DatabaseKeys(create_sessionmaker(engine), clock=clock)
    record: dict[str, Any] = {"token": "dead", "fingerprint": "f", "state": "running"}
    try:
        assert await keys.claim(_claim("dead"), _json(record), ttl_s=60) is None
        clock.now += timedelta(seconds=59)
        held = await keys.claim(_claim("next"), _json({**record, "token": "next"}), ttl_s=60)
        clock.now += timedelta(seconds=2)
        taken = await keys.claim(_claim("next"), _json({**record, "token": "next"}), ttl_s=60)
        # The dead process's settle finds its claim gone and changes nothing.
        await keys.settle(_claim("dead"), None, ttl_s=60)
        still = await keys.claim(_claim("third"), _json({**record, "token": "third"}), ttl_s=60)
    finally:
        await engine.dispose()

    assert held == _json(record)
    assert taken is None
    assert still == _json({**record, "token": "next"})


def _json(record: dict[str, Any]) -> str:
    return json.dumps(record)


async def test_the_sweeper_forgets_lapsed_keys_only(database_url: str) -> None:
    engine = create_engine(database_url)
    clock = StepClock()
    sessionmaker = create_sessionmaker(engine)
    keys = DatabaseKeys(sessionmaker, clock=clock)
    record = _json({"token": "a", "fingerprint": "f", "state": "done"})
    try:
        await keys.claim(_claim("a"), record, ttl_s=10)
        await keys.claim(
            Claim(key="k2", scope="local", digest="e" * 64, token="b", fingerprint="f"),
            record,
            ttl_s=100,
        )
        forgotten = await forget_expired(sessionmaker, clock.now + timedelta(seconds=50))
        kept = await keys.claim(_claim("c"), record, ttl_s=10)
    finally:
        await engine.dispose()

    assert forgotten == 1
    # The lapsed key is gone: claimed afresh.
    assert kept is None
