"""Requests per minute per API key: 429 with Retry-After, shared by the replicas through Redis."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from fastapi import FastAPI

from app.http.app import create_app
from app.security.models import Role
from tests.builders import make_settings, scripted_config, serving, step
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio

QUESTION = {"question": "Ship release 4.2?"}


def quick_app(database_url: str, redis_url: str | None, per_minute: int) -> FastAPI:
    """Return an app of a quick scripted panel with a limit of ``per_minute`` verdicts."""
    config = scripted_config(jurors={"alpha": [step("approve")], "bravo": [step("approve")]})
    settings = make_settings(database_url, redis_url=redis_url, rate_limit_per_minute=per_minute)
    return create_app(settings, config=config)


async def test_a_key_past_its_requests_per_minute_gets_429_with_retry_after(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    ann = await add_key(sqlite_database, "ann", Role.AGENT)
    bob = await add_key(sqlite_database, "bob", Role.AGENT)
    async with serving(quick_app(sqlite_database, redis_or_none, 3)) as client:
        allowed = [await client.post("/verdict", json=QUESTION, headers=bearer(ann)) for _ in "abc"]
        refused = await client.post("/verdict", json=QUESTION, headers=bearer(ann))
        other_key = await client.post("/verdict", json=QUESTION, headers=bearer(bob))
        metrics = (await client.get("/metrics")).text

    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert body["limit"] == 3
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert body["retry_after_s"] == int(refused.headers["retry-after"])
    assert other_key.status_code == 200
    assert 'jury_rate_limited_requests_total{route="/verdict"}' in metrics


async def test_replicas_share_one_limit_through_redis(sqlite_database: str, redis_url: str) -> None:
    ann = await add_key(sqlite_database, "ann", Role.AGENT)
    async with AsyncExitStack() as stack:
        first, second = [
            await stack.enter_async_context(serving(quick_app(sqlite_database, redis_url, 4)))
            for _ in range(2)
        ]
        statuses = [
            (await replica.post("/verdict", json=QUESTION, headers=bearer(ann))).status_code
            for replica in (first, second, first, second, first, second)
        ]

    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_zero_means_no_limit_and_local_mode_has_none(sqlite_database: str) -> None:
    async with serving(quick_app(sqlite_database, None, 2)) as local:
        local_statuses = {(await local.post("/verdict", json=QUESTION)).status_code for _ in "abc"}
    ann = await add_key(sqlite_database, "ann", Role.AGENT)
    async with serving(quick_app(sqlite_database, None, 0)) as client:
        statuses = {
            (await client.post("/verdict", json=QUESTION, headers=bearer(ann))).status_code
            for _ in "abc"
        }

    assert local_statuses == statuses == {200}
