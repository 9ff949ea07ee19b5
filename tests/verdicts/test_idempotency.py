"""``Idempotency-Key`` on ``POST /verdict``, in-process and on the shared Redis."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, closing

import httpx
import pytest
import redis
from sqlalchemy import func
from sqlmodel import select

from app.core.config import JuryConfig
from app.core.db import create_engine, create_sessionmaker
from app.http.app import create_app
from app.security.models import Role
from app.verdicts.record.tables import ModelCall, Verdict
from tests.builders import app_client, make_settings, scripted_config, serving, step
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio

QUESTION = {"question": "Ship release 4.2?", "options": ["approve", "reject"]}


def slow_config(latency_ms: float = 400) -> JuryConfig:
    """Return a one-round panel of two scripted jurors that take ``latency_ms`` to answer."""
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=latency_ms)],
            "bravo": [step("approve", latency_ms=latency_ms)],
        },
        max_rounds=1,
    )


def no_quorum_config() -> JuryConfig:
    """Return a panel that cannot reach its quorum of two."""
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step(failure="error")]}, quorum=2
    )


async def count_rows(database_url: str) -> tuple[int, int]:
    """Return how many verdicts and model calls the database holds."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            verdicts = (await session.exec(select(func.count()).select_from(Verdict))).one()
            calls = (await session.exec(select(func.count()).select_from(ModelCall))).one()
    finally:
        await engine.dispose()
    return int(verdicts), int(calls)


def keyed(key: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


async def test_the_same_key_and_body_replay_the_first_answer(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    async with app_client(settings, slow_config(latency_ms=1)) as client:
        first = await client.post("/verdict", json=QUESTION, headers=keyed("k-1"))
        # The same body with another formatting and key order is the same request.
        again = await client.post(
            "/verdict",
            content=b'{"options": ["approve","reject"],  "question": "Ship release 4.2?"}',
            headers=keyed("k-1", **{"content-type": "application/json"}),
        )
        fresh = await client.post("/verdict", json=QUESTION, headers=keyed("k-2"))

    assert first.status_code == again.status_code == fresh.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert fresh.json()["id"] != first.json()["id"]
    assert (await count_rows(sqlite_database))[0] == 2


async def test_the_same_key_with_another_body_is_a_422(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    async with app_client(settings, slow_config(latency_ms=1)) as client:
        first = await client.post("/verdict", json=QUESTION, headers=keyed("k-1"))
        other = await client.post(
            "/verdict", json={**QUESTION, "question": "Ship 4.3?"}, headers=keyed("k-1")
        )

    assert first.status_code == 200
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert (await count_rows(sqlite_database))[0] == 1


async def test_the_same_key_while_the_first_runs_is_a_409_then_the_answer(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    async with app_client(settings, slow_config(latency_ms=600)) as client:
        first = asyncio.create_task(client.post("/verdict", json=QUESTION, headers=keyed("k-1")))
        await asyncio.sleep(0.2)
        during = await client.post("/verdict", json=QUESTION, headers=keyed("k-1"))
        answer = await first
        after = await client.post("/verdict", json=QUESTION, headers=keyed("k-1"))

    assert during.status_code == 409
    assert during.json()["error"] == "request_in_progress"
    assert during.headers["retry-after"] == "1"
    assert answer.status_code == after.status_code == 200
    assert after.json()["id"] == answer.json()["id"]


async def test_keys_are_scoped_per_api_key(sqlite_database: str, redis_url: str) -> None:
    ann = await add_key(sqlite_database, "ann", Role.AGENT)
    bob = await add_key(sqlite_database, "bob", Role.AGENT)
    settings = make_settings(sqlite_database, redis_url=redis_url)
    async with app_client(settings, slow_config(latency_ms=1)) as client:
        by_ann = await client.post(
            "/verdict", json=QUESTION, headers={**keyed("shared"), **bearer(ann)}
        )
        by_bob = await client.post(
            "/verdict", json=QUESTION, headers={**keyed("shared"), **bearer(bob)}
        )
        # Another body under Bob's key is Bob's concern only: Ann's record is not disturbed.
        ann_again = await client.post(
            "/verdict", json=QUESTION, headers={**keyed("shared"), **bearer(ann)}
        )

    assert by_ann.status_code == by_bob.status_code == ann_again.status_code == 200
    assert by_bob.json()["id"] != by_ann.json()["id"]
    assert ann_again.json()["id"] == by_ann.json()["id"]
    with closing(redis.Redis.from_url(redis_url)) as stored:
        assert len(stored.keys("jury:idempotency:*")) == 2  # one per API key, in Redis


async def test_a_recorded_no_quorum_is_replayed_and_other_errors_free_the_key(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    async with app_client(settings, no_quorum_config()) as client:
        refused = await client.post("/verdict", json=QUESTION, headers=keyed("k-1"))
        replayed = await client.post("/verdict", json=QUESTION, headers=keyed("k-1"))
        unknown_panel = {**QUESTION, "panel": "nope"}
        invalid = await client.post("/verdict", json=unknown_panel, headers=keyed("k-2"))
        invalid_again = await client.post("/verdict", json=unknown_panel, headers=keyed("k-2"))

    assert refused.status_code == replayed.status_code == 503
    assert replayed.json() == refused.json()
    assert replayed.json()["error"] == "no_quorum"
    # 422 for the panel is not stored: the retry was checked afresh (and refused the same way).
    assert invalid.status_code == invalid_again.status_code == 422
    assert "idempotent-replayed" not in invalid_again.headers
    assert (await count_rows(sqlite_database))[0] == 1


@pytest.mark.parametrize("replicas", [1, 2])
async def test_100_concurrent_identical_requests_run_one_deliberation(
    sqlite_database: str, redis_url: str, replicas: int
) -> None:
    """Concurrent duplicates get 409 while the first runs (or its replay after): one verdict.

    With two replicas on one Redis, the key is claimed once across both.
    """
    # A generous Redis timeout: 100 connections opened at once on a loaded machine can take
    # longer than the default 0.5 s, and Jury would (rightly) fall back to in-process keys.
    settings = make_settings(
        sqlite_database, redis_url=redis_url, rate_limit_per_minute=0, redis_timeout_s=5.0
    )
    async with AsyncExitStack() as stack:
        clients: list[httpx.AsyncClient] = [
            await stack.enter_async_context(
                serving(create_app(settings, config=slow_config(latency_ms=800)))
            )
            for _ in range(replicas)
        ]
        responses = await asyncio.gather(
            *(
                clients[n % replicas].post("/verdict", json=QUESTION, headers=keyed("once"))
                for n in range(100)
            )
        )

    statuses = [response.status_code for response in responses]
    answered = [response.json()["id"] for response in responses if response.status_code == 200]
    assert set(statuses) <= {200, 409}, statuses
    assert len(answered) >= 1
    assert len(set(answered)) == 1
    verdicts, calls = await count_rows(sqlite_database)
    assert verdicts == 1
    assert calls == 3  # two jurors and the judge, once
