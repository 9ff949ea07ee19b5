"""Active trust weights reused for JURY_TRUST_CACHE_S: approvals elsewhere apply within it."""

from __future__ import annotations

import pytest

from app.trust.active import TrustSource
from tests.builders import ManualClock
from tests.trust.harness import (
    REVIEWER,
    SMALL_PLAN,
    approved_version,
    ask,
    panel_config,
    propose,
    seed,
    serve,
)

pytestmark = pytest.mark.anyio

CACHE_S = 60.0


async def test_an_approval_on_another_replica_applies_within_the_cache_time(
    sqlite_database: str,
) -> None:
    clock = ManualClock()
    async with serve(sqlite_database) as other:
        # This replica's view of the active weights: its own source, on the same database.
        replica = TrustSource(other.sessionmaker, panel_config(), cache_s=CACHE_S, clock=clock)
        await seed(other, SMALL_PLAN)
        proposal = await propose(other.client)
        before, _ = await replica.active("finance")
        approved = await other.client.post(
            f"/trust/proposals/{proposal['id']}/approve", json=REVIEWER
        )
        clock.advance(CACHE_S * 0.5)
        cached, _ = await replica.active("finance")
        clock.advance(CACHE_S)
        after, _ = await replica.active("finance")

    assert approved.status_code == 200, approved.text
    assert before is None
    assert cached is None
    assert after == 1


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
