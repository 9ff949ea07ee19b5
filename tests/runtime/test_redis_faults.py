"""Redis is a soft dependency: stopped or frozen, it costs a request one timeout at most.

Each test runs a redis-server of its own on a free loopback port, then stops it or freezes it
(SIGSTOP: connections stay open and commands get no answer, as with a hung server).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from app.core import metrics
from app.core.config import JuryConfig
from eval.redis_servers import redis_server
from tests.builders import app_client, eventually, make_settings, scripted_config, step

pytestmark = pytest.mark.anyio

QUESTION = {"question": "Ship release 4.2?"}
TIMEOUT_S = 0.3
# An upper bound that tells "waited on one timeout" from "hung": not a speed goal, so it is
# loose enough for a verdict of the scripted panel on a 2-core machine running the whole suite.
HUNG_S = 10.0


def quick_panel() -> JuryConfig:
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )


def redis_failures() -> float:
    """Return how many Redis commands have failed in this process, every operation together."""
    return sum(
        sample.value
        for metric in metrics.REDIS_FAILURES.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def timed_verdicts(
    client: httpx.AsyncClient, count: int, *, first: int = 0
) -> list[tuple[int, float]]:
    """POST verdicts one after another (each with an Idempotency-Key); return status, seconds."""
    answers = []
    for number in range(first, first + count):
        started = time.perf_counter()
        response = await client.post(
            "/verdict", json=QUESTION, headers={"Idempotency-Key": f"fault-{number}"}
        )
        answers.append((response.status_code, time.perf_counter() - started))
    return answers


async def decided(client: httpx.AsyncClient, location: str) -> str:
    async def status() -> str:
        return str((await client.get(location)).json()["status"])

    return await eventually(
        status, lambda seen: seen not in ("queued", "running"), what=f"{location} decided"
    )


async def test_a_stopped_redis_degrades_but_verdicts_are_served(
    sqlite_database: str, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as server:
        settings = make_settings(sqlite_database, redis_url=server.url, redis_timeout_s=TIMEOUT_S)
        async with app_client(settings, quick_panel()) as client:
            healthy = (await client.get("/readyz")).json()
            server.stop()
            answers = await timed_verdicts(client, 4)
            degraded = await client.get("/readyz")
            accepted = await client.post(
                "/verdict", json=QUESTION, headers={"Prefer": "respond-async"}
            )
            queued_status = await decided(client, accepted.headers["location"])
            events = await client.get(f"{accepted.headers['location']}/events")
            metrics = (await client.get("/metrics")).text

    assert healthy == {
        "status": "ready",
        "checks": {"database": "ok", "providers": "ok", "redis": "ok"},
    }
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    assert max(seconds for _, seconds in answers) < HUNG_S
    assert degraded.status_code == 200
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["checks"]["redis"].startswith("degraded: ")
    # The queue and the event log fell back to this process.
    assert (accepted.status_code, queued_status) == (202, "completed")
    assert "event: verdict" in events.text
    assert "jury_redis_failures_total" in metrics


async def test_a_frozen_redis_costs_one_timeout_then_nothing(
    sqlite_database: str, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as server:
        settings = make_settings(
            sqlite_database,
            redis_url=server.url,
            redis_timeout_s=TIMEOUT_S,
            redis_retry_after_s=30,
        )
        async with app_client(settings, quick_panel()) as client:
            warm = await timed_verdicts(client, 1)  # connections open before the freeze
            server.pause()
            try:
                before = redis_failures()
                answers = await timed_verdicts(client, 1)
                tripped = redis_failures()
                answers += await timed_verdicts(client, 3, first=1)
                spared = redis_failures()
                replay = await client.post(
                    "/verdict", json=QUESTION, headers={"Idempotency-Key": "fault-3"}
                )
                probe_started = time.perf_counter()
                degraded = await client.get("/readyz")
                probe_s = time.perf_counter() - probe_started
            finally:
                server.resume()
            recovered = await client.get("/readyz")

    assert warm[0][0] == 200
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    # The first request meets the frozen Redis: it waits out the timeout, and trips the breaker.
    assert TIMEOUT_S * 0.9 <= answers[0][1] < HUNG_S
    assert tripped > before
    # The breaker spares the others: not one Redis command of theirs timed out.
    assert spared == tripped
    assert max(seconds for _, seconds in answers[1:]) < HUNG_S
    # Idempotency kept working in-process meanwhile.
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert degraded.json()["checks"]["redis"] == "degraded: TimeoutError"
    assert probe_s < HUNG_S
    assert recovered.json() == {
        "status": "ready",
        "checks": {"database": "ok", "providers": "ok", "redis": "ok"},
    }
