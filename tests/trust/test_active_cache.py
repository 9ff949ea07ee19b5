"""Active trust weights reused for JURY_TRUST_CACHE_S: approvals elsewhere apply within it."""

from __future__ import annotations

import anyio
import httpx
import pytest

from app.http.app import create_app
from tests.trust.harness import (
    REVIEWER,
    SMALL_PLAN,
    approved_version,
    ask,
    panel_config,
    propose,
    seed,
    serve,
    settings_for,
)

pytestmark = pytest.mark.anyio

CACHE_S = 1.0


async def test_an_approval_on_another_replica_applies_within_the_cache_time(
    sqlite_database: str,
) -> None:
    settings = settings_for(sqlite_database).model_copy(update={"trust_cache_s": CACHE_S})
    replica = create_app(settings, config=panel_config())
    transport = httpx.ASGITransport(app=replica)
    async with (
        replica.router.lifespan_context(replica),
        httpx.AsyncClient(transport=transport, base_url="http://replica.test") as client,
        serve(sqlite_database) as other,
    ):
        await seed(other, SMALL_PLAN)
        proposal = await propose(other.client)
        before = await ask(client, "finance")
        approved = await other.client.post(
            f"/trust/proposals/{proposal['id']}/approve", json=REVIEWER
        )
        cached = await ask(client, "finance")
        await anyio.sleep(CACHE_S * 1.5)
        after = await ask(client, "finance")

    assert approved.status_code == 200, approved.text
    assert before["weights_version"] is None
    assert cached["weights_version"] is None
    assert after["weights_version"] == 1


async def test_an_approval_through_this_process_applies_to_the_next_verdict(
    sqlite_database: str,
) -> None:
    async with serve(sqlite_database) as served:
        served.runtime.trust._cache_s = 300
        before = await ask(served.client, "finance")
        await approved_version(served)
        after = await ask(served.client, "finance")

    assert before["weights_version"] is None
    assert after["weights_version"] == 1
