"""Key lookups reused for JURY_AUTH_CACHE_S: changes elsewhere apply within it, here at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.core.db import create_engine, create_sessionmaker, session_scope
from app.core.errors import UnauthorizedError
from app.http.app import create_app
from app.security.models import Role
from app.security.service import Authenticator, KeyService
from tests.builders import ManualClock, make_settings, serving
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio

CACHE_S = 60.0


async def revoke_elsewhere(database_url: str, name: str) -> None:
    """Revoke a key as another process would (the CLI, another replica)."""
    engine = create_engine(database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await KeyService(session).revoke(name)
    finally:
        await engine.dispose()


async def outcome(auth: Authenticator, key: str | None) -> str:
    """Return whom ``auth`` takes the key for, or why it refuses it."""
    try:
        return (await auth.authenticate(key)).name
    except UnauthorizedError as exc:
        return exc.detail


@asynccontextmanager
async def authenticator(database_url: str, clock: ManualClock) -> AsyncIterator[Authenticator]:
    """Yield this process's authenticator on the database, its cache on ``clock``."""
    engine = create_engine(database_url)
    try:
        yield Authenticator(create_sessionmaker(engine), cache_s=CACHE_S, clock=clock)
    finally:
        await engine.dispose()


async def test_a_key_revoked_elsewhere_stops_within_the_cache_time(database_url: str) -> None:
    agent = await add_key(database_url, "ci-bot", Role.AGENT)
    clock = ManualClock()
    async with authenticator(database_url, clock) as auth:
        first = await outcome(auth, agent)
        await revoke_elsewhere(database_url, "ci-bot")
        clock.advance(CACHE_S * 0.5)
        cached = await outcome(auth, agent)
        clock.advance(CACHE_S)
        expired = await outcome(auth, agent)

    assert (first, cached) == ("ci-bot", "ci-bot")
    assert expired == "unknown or revoked API key"


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
    clock = ManualClock()
    async with authenticator(sqlite_database, clock) as auth:
        local = await outcome(auth, None)
        await add_key(sqlite_database, "ops", Role.ADMIN)
        clock.advance(CACHE_S * 0.5)
        still_local = await outcome(auth, None)
        clock.advance(CACHE_S)
        closed = await outcome(auth, None)

    assert (local, still_local) == ("local", "local")
    assert closed.startswith("an API key is required")


async def test_an_unknown_key_is_refused_again_from_the_cache(sqlite_database: str) -> None:
    await add_key(sqlite_database, "ops", Role.ADMIN)
    settings = make_settings(sqlite_database, auth_cache_s=300)
    async with serving(create_app(settings)) as client:
        answers = [
            (await client.get("/verdicts", headers=bearer("jury_not-a-key"))).status_code
            for _ in range(3)
        ]

    assert answers == [401, 401, 401]
