"""Spend caps: the per-verdict budget skips rebuttal rounds; the daily cap per key holds under
concurrency (reserve before, settle after) and answers 429 with Retry-After."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import anyio
import httpx
import pytest

from app.core.config import Budgets, JuryConfig
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import SpendCapError
from app.deliberation.budget import Spend
from app.deliberation.schemas import VerdictRequest
from app.http.app import create_app
from app.security.ledger import DatabaseSpendLedger, MemorySpendLedger
from app.security.models import Role
from app.security.spend import Caps, SpendGuard, SpendLedger, seconds_to_midnight
from tests.builders import make_settings, open_bench, scripted_config, serving, step
from tests.security.keys import add_keys, bearer, create_key

pytestmark = pytest.mark.anyio

# Every scripted call uses 50 prompt + 20 completion tokens.
CALL_TOKENS = 70


def with_budgets(config: JuryConfig, **budgets: Any) -> JuryConfig:
    """Return ``config`` with these budgets."""
    return JuryConfig.model_validate({**config.model_dump(), "budgets": budgets})


def debating_config(**budgets: Any) -> JuryConfig:
    """Return a panel that never agrees and shifts every round, for three rounds, at $0.01 a call.

    Without a budget it runs all 3 rounds (210 tokens, $0.03 each) and stops at max_rounds.
    """
    cost: dict[str, Any] = {"cost_usd": 0.01}
    config = scripted_config(
        jurors={
            "alpha": [step("approve", **cost)],
            "bravo": [step("reject", **cost), step("approve", **cost), step("reject", **cost)],
            "charlie": [step("reject", **cost)],
        },
        max_rounds=3,
    )
    return with_budgets(config, **budgets)


@pytest.mark.parametrize(
    ("budgets", "rounds", "stop_reason"),
    [
        ({"per_verdict_usd": None}, 3, "max_rounds"),
        ({"per_verdict_tokens": 630, "per_verdict_usd": None}, 3, "max_rounds"),
        ({"per_verdict_tokens": 629, "per_verdict_usd": None}, 2, "budget"),
        ({"per_verdict_tokens": 419, "per_verdict_usd": None}, 1, "budget"),
        ({"per_verdict_usd": 0.065}, 2, "budget"),
        ({"per_verdict_usd": 0.05}, 1, "budget"),
    ],
)
async def test_a_round_that_would_pass_the_verdict_budget_is_skipped(
    sqlite_database: str, budgets: dict[str, Any], rounds: int, stop_reason: str
) -> None:
    async with open_bench(sqlite_database, debating_config(**budgets)) as bench:
        verdict = await bench.service.decide(VerdictRequest(question="Ship it?"))

    assert len(verdict.rounds) == rounds
    assert verdict.stop_reason == stop_reason
    assert verdict.budget_limited is (stop_reason == "budget")
    assert verdict.usage.total_tokens == rounds * 3 * CALL_TOKENS + CALL_TOKENS  # and the judge
    assert verdict.judge.verdict == "approve"


# --- the daily cap per key -------------------------------------------------------------------


def quick_config(**budgets: Any) -> JuryConfig:
    """Return a unanimous two-juror panel: 3 calls, 210 tokens a verdict, 50 ms a call."""
    config = scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=50)],
            "bravo": [step("approve", latency_ms=50)],
        },
        judge=[step("approve", latency_ms=50)],
        max_rounds=1,
    )
    return with_budgets(config, **budgets)


async def post_concurrently(
    client: httpx.AsyncClient, headers: dict[str, str], n: int
) -> list[httpx.Response]:
    """Send ``n`` verdict requests at once and return their responses."""
    responses: list[httpx.Response] = []

    async def post() -> None:
        responses.append(await client.post("/verdict", json={"question": "Go?"}, headers=headers))

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(post)
    return responses


async def test_the_daily_cap_admits_exactly_what_it_allows_under_concurrency(
    database_url: str,
) -> None:
    keys = await add_keys(database_url, {"agent-a": Role.AGENT, "agent-b": Role.AGENT})
    # Three verdicts' worth: with 210 tokens held per verdict, exactly 3 of 8 may start.
    config = quick_config(per_key_daily_tokens=3 * 210, reserve_tokens=210)
    async with serving(create_app(make_settings(database_url), config=config)) as client:
        responses = await post_concurrently(client, bearer(keys["agent-a"]), 8)
        other_key = await client.post(
            "/verdict", json={"question": "Go?"}, headers=bearer(keys["agent-b"])
        )
        listed = await client.get("/verdicts", headers=bearer(keys["agent-a"]))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 3 + [429] * 5
    assert other_key.status_code == 200
    # A refused request leaves no verdict behind.
    assert listed.json()["total"] == 3


async def test_an_exhausted_cap_says_why_and_when_it_resets(sqlite_database: str) -> None:
    keys = await add_keys(sqlite_database, {"agent-a": Role.AGENT})
    config = quick_config(per_key_daily_tokens=210, reserve_tokens=210)
    async with serving(create_app(make_settings(sqlite_database), config=config)) as client:
        first = await client.post(
            "/verdict", json={"question": "Go?"}, headers=bearer(keys["agent-a"])
        )
        refused = await client.post(
            "/verdict", json={"question": "Go?"}, headers=bearer(keys["agent-a"])
        )

    assert first.status_code == 200
    assert refused.status_code == 429
    retry_after = int(refused.headers["retry-after"])
    # When exactly: test_a_refusal_retries_after_the_next_utc_midnight, on a fixed clock.
    assert 1 <= retry_after <= 86_400
    assert refused.json() == {
        "error": "spend_cap_exceeded",
        "detail": "the daily spend cap of this API key is reached (per_key_daily_tokens); "
        "it resets at 00:00 UTC",
        "retry_after_s": retry_after,
        "cap": "per_key_daily_tokens",
        "limit": 210,
        "spent_tokens": 210,
        "spent_usd": 0.0,
    }


@pytest.mark.parametrize(
    ("now", "retry_after_s"),
    [
        (datetime(2026, 3, 1, 23, 0, tzinfo=UTC), 3_600),
        (datetime(2026, 3, 1, 23, 59, 59, 500_000, tzinfo=UTC), 1),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 86_400),
    ],
)
async def test_a_refusal_retries_after_the_next_utc_midnight(
    now: datetime, retry_after_s: int
) -> None:
    budgets = Budgets(per_key_daily_tokens=100, reserve_tokens=100)
    guard = SpendGuard(MemorySpendLedger(), budgets, clock=lambda: now)
    held = await guard.reserve(7)

    with pytest.raises(SpendCapError) as caught:
        await guard.reserve(7)

    assert held is not None
    assert held.day == now.date()
    assert caught.value.headers == {"Retry-After": str(retry_after_s)}
    assert caught.value.extra["retry_after_s"] == seconds_to_midnight(now) == retry_after_s


async def test_the_actual_use_replaces_the_reserve(database_url: str) -> None:
    created = await create_key(database_url, "agent-a", Role.AGENT)
    failing = {"script": {"rounds": [step(failure="error")]}}
    config = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]},
        extra_jurors=[
            {"name": name, "model": "scripted", "family": f"family-{name}", **failing}
            for name in ("x1", "x2")
        ],
        panel={"jurors": ["alpha", "bravo"]},
        extra_panels={"broken": {"jurors": ["x1", "x2"], "judge": "judge"}},
        max_rounds=1,
    )
    config = with_budgets(config, per_key_daily_tokens=10_000, reserve_tokens=5_000)
    headers = bearer(created.key)
    async with serving(create_app(make_settings(database_url), config=config)) as client:
        ok = await client.post("/verdict", json={"question": "Go?"}, headers=headers)
        refused = await client.post(
            "/verdict", json={"question": "Go?", "panel": "broken"}, headers=headers
        )

    assert ok.status_code == 200
    assert (refused.status_code, refused.json()["error"]) == (503, "no_quorum")
    # 210 tokens for the verdict; the no-quorum one used none and gave its 5,000 back.
    assert await today_total(database_url, created.id) == Spend(tokens=210, usd=0.0)


async def today_total(database_url: str, key_id: int) -> Spend:
    """Return what a key's day holds, read on an engine of its own."""
    engine = create_engine(database_url)
    try:
        ledger = DatabaseSpendLedger(create_sessionmaker(engine))
        return await ledger.total(key_id, datetime.now(UTC).date())
    finally:
        await engine.dispose()


# --- the ledger contract, for every implementation -------------------------------------------

DAY = date(2026, 3, 1)


async def check_ledger_contract(ledger: SpendLedger, key: int, other: int) -> None:
    """Assert what every ``SpendLedger`` must do."""
    caps = Caps(tokens=300, usd=1.0)
    assert await ledger.reserve(key, DAY, Spend(200, 0.5), caps)
    assert not await ledger.reserve(key, DAY, Spend(101, 0.1), caps)  # tokens would pass
    assert not await ledger.reserve(key, DAY, Spend(10, 0.6), caps)  # dollars would pass
    assert await ledger.reserve(key, DAY, Spend(100, 0.5), caps)  # exactly at both caps
    assert await ledger.total(key, DAY) == Spend(300, 1.0)
    await ledger.adjust(key, DAY, Spend(-250, -0.75))
    assert await ledger.total(key, DAY) == Spend(50, 0.25)
    # Other keys and other days are counted apart.
    assert await ledger.reserve(other, DAY, Spend(300, 1.0), caps)
    assert await ledger.reserve(key, date(2026, 3, 2), Spend(300, 1.0), caps)
    assert await ledger.total(key, date(2026, 3, 3)) == Spend()
    # Without caps everything goes.
    assert await ledger.reserve(key, DAY, Spend(10**9, 10**3), Caps())


async def test_the_memory_ledger_keeps_the_contract() -> None:
    await check_ledger_contract(MemorySpendLedger(), 1, 2)


async def test_the_database_ledger_keeps_the_contract(database_url: str) -> None:
    key = (await create_key(database_url, "a", Role.AGENT)).id
    other = (await create_key(database_url, "b", Role.AGENT)).id
    engine = create_engine(database_url)
    try:
        await check_ledger_contract(DatabaseSpendLedger(create_sessionmaker(engine)), key, other)
    finally:
        await engine.dispose()


async def test_the_database_ledger_reserves_atomically(database_url: str) -> None:
    key = (await create_key(database_url, "a", Role.AGENT)).id
    engine = create_engine(database_url)
    ledger = DatabaseSpendLedger(create_sessionmaker(engine))
    results: list[bool] = []

    async def reserve() -> None:
        results.append(await ledger.reserve(key, DAY, Spend(10, 0.0), Caps(tokens=70)))

    try:
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(reserve)
        total = await ledger.total(key, DAY)
    finally:
        await engine.dispose()

    assert sorted(results) == [False] * 13 + [True] * 7
    assert total == Spend(70, 0.0)


# --- the guard and the configuration ---------------------------------------------------------


async def test_the_guard_holds_nothing_without_a_key_or_a_cap() -> None:
    ledger = MemorySpendLedger()
    capped = SpendGuard(ledger, Budgets(per_key_daily_tokens=100, reserve_tokens=100))
    uncapped = SpendGuard(ledger, Budgets())

    assert await capped.reserve(None) is None
    assert await uncapped.reserve(7) is None
    assert await capped.reserve(7) is not None
    with pytest.raises(SpendCapError):
        await capped.reserve(7)


async def test_the_guard_retries_after_midnight_utc() -> None:
    now = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)
    guard = SpendGuard(
        MemorySpendLedger(),
        Budgets(per_key_daily_usd=0.5, reserve_usd=0.5),
        clock=lambda: now,
    )
    await guard.reserve(1)

    with pytest.raises(SpendCapError) as refused:
        await guard.reserve(1)

    assert refused.value.headers == {"Retry-After": "30"}
    assert refused.value.extra["cap"] == "per_key_daily_usd"
    assert refused.value.extra["limit"] == 0.5


@pytest.mark.parametrize(
    ("moment", "seconds"),
    [
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 86_400),
        (datetime(2026, 3, 1, 23, 59, 59, 500_000, tzinfo=UTC), 1),
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), 43_200),
    ],
)
def test_seconds_to_midnight(moment: datetime, seconds: int) -> None:
    assert seconds_to_midnight(moment) == seconds


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ({"per_key_daily_tokens": 100}, "reserve_tokens 10000 exceeds per_key_daily_tokens 100"),
        ({"per_key_daily_usd": 0.05}, "reserve_usd 0.1 exceeds per_key_daily_usd 0.05"),
        ({"per_verdict_tokens": 0}, "greater than or equal to 1"),
    ],
)
def test_budgets_are_validated(budgets: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Budgets.model_validate(budgets)
