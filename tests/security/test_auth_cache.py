"""Key lookups reused for JURY_AUTH_CACHE_S: changes elsewhere apply within it, here at once."""

from __future__ import annotations

import anyio
import pytest

from app.core.db import create_engine, create_sessionmaker, session_scope
from app.http.app import create_app
from app.security.models import Role
from app.security.service import KeyService
from tests.builders import make_settings, serving
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio

CACHE_S = 0.3


async def revoke_elsewhere(database_url: str, name: str) -> None:
    """Revoke a key as another process would (the CLI, another replica)."""
    engine = create_engine(database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await KeyService(session).revoke(name)
    finally:
        await engine.dispose()


async def test_a_key_revoked_elsewhere_stops_within_the_cache_time(database_url: str) -> None:
    agent = await add_key(database_url, "ci-bot", Role.AGENT)
    settings = make_settings(database_url, auth_cache_s=CACHE_S)
    async with serving(create_app(settings)) as client:
        first = await client.get("/verdicts", headers=bearer(agent))
        await revoke_elsewhere(database_url, "ci-bot")
        cached = await client.get("/verdicts", headers=bearer(agent))
        await anyio.sleep(CACHE_S * 1.5)
        expired = await client.get("/verdicts", headers=bearer(agent))

    assert first.status_code == 200
    assert cached.status_code == 200
    assert expired.status_code == 401


async def test_a_key_revoked_through_this_process_stops_at_once(sqlite_database: str) -> None:
    admin = await add_key(sqlite_database, "ops", Role.ADMIN)
    agent = await add_key(sqlite_database, "ci-bot", Role.AGENT)
    settings = make_settings(sqlite_database, auth_cache_s=300)
    async with serving(create_app(settings)) as client:
        first = await client.get("/verdicts", headers=bearer(agent))
        await client.post("/admin/keys/ci-bot/revoke", headers=bearer(admin))
        refused = await client.get("/verdicts", headers=bearer(agent))

    assert first.status_code == 200
    assert refused.status_code == 401


async def test_local_mode_ends_within_the_cache_time_of_a_key_created_elsewhere(
    sqlite_database: str,
) -> None:
    settings = make_settings(sqlite_database, auth_cache_s=CACHE_S)
    async with serving(create_app(settings)) as client:
        local = await client.get("/verdicts")
        await add_key(sqlite_database, "ops", Role.ADMIN)
        await anyio.sleep(CACHE_S * 1.5)
        closed = await client.get("/verdicts")

    assert local.status_code == 200
    assert closed.status_code == 401


async def test_an_unknown_key_is_refused_again_from_the_cache(sqlite_database: str) -> None:
    await add_key(sqlite_database, "ops", Role.ADMIN)
    settings = make_settings(sqlite_database, auth_cache_s=300)
    async with serving(create_app(settings)) as client:
        answers = [
            (await client.get("/verdicts", headers=bearer("jury_not-a-key"))).status_code
            for _ in range(3)
        ]

    assert answers == [401, 401, 401]
