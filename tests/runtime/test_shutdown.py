"""Graceful shutdown: in-flight verdicts finish, or are recorded as interrupted; none are lost."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from sqlmodel import col, select

from app.core.config import JuryConfig
from app.core.db import create_engine, create_sessionmaker
from app.http.app import create_app
from app.verdicts.record.tables import ModelCall, Verdict
from tests.builders import eventually, make_settings, scripted_config, step

pytestmark = pytest.mark.anyio


def slow_config(slow_ms: float) -> JuryConfig:
    """Return a panel whose alpha answers at once and whose bravo takes ``slow_ms``."""
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=5)],
            "bravo": [step("approve", latency_ms=slow_ms)],
        },
        juror_overrides={"bravo": {"timeout_s": 60}},
        max_rounds=1,
    )


async def recorded(database_url: str) -> tuple[list[Verdict], list[ModelCall]]:
    """Return every stored verdict and model call, read on an engine of its own."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            verdicts = list((await session.exec(select(Verdict))).all())
            calls = list((await session.exec(select(ModelCall).order_by(col(ModelCall.id)))).all())
    finally:
        await engine.dispose()
    return verdicts, calls


async def wait_for_calls(database_url: str, n: int) -> None:
    """Wait until ``n`` model calls are stored."""

    async def stored() -> int:
        return len((await recorded(database_url))[1])

    await eventually(stored, lambda count: count >= n, what=f"{n} model call(s) stored")


async def shut_down_mid_verdict(database_url: str, *, slow_ms: float, grace_s: float) -> Any:
    """Start a verdict, shut the app down once alpha's call is stored; return the response."""
    settings = make_settings(database_url, shutdown_grace_s=grace_s)
    app = create_app(settings, config=slow_config(slow_ms))
    responses: list[httpx.Response] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jury.test") as client:

        async def post() -> None:
            responses.append(await client.post("/verdict", json={"question": "Ship it?"}))

        # The lifespan (inner) ends while the verdict deliberates; the group then waits for it.
        async with anyio.create_task_group() as group, app.router.lifespan_context(app):
            group.start_soon(post)
            await wait_for_calls(database_url, 1)
    [response] = responses
    return response


async def test_shutdown_interrupts_a_verdict_past_the_grace_and_keeps_its_calls(
    database_url: str,
) -> None:
    response = await shut_down_mid_verdict(database_url, slow_ms=30_000, grace_s=0.1)

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "shutting down" in response.json()["detail"]
    [verdict], calls = await recorded(database_url)
    assert verdict.status == "interrupted"
    assert verdict.finished_at is not None
    assert [(c.juror, c.position) for c in calls] == [("alpha", "approve")]


async def test_shutdown_lets_a_verdict_within_the_grace_finish(database_url: str) -> None:
    response = await shut_down_mid_verdict(database_url, slow_ms=300, grace_s=10)

    assert response.status_code == 200, response.text
    [verdict], calls = await recorded(database_url)
    assert verdict.status == "completed"
    assert response.json()["id"] == verdict.id
    assert [c.juror for c in calls] == ["alpha", "bravo", "judge"]


async def test_a_cancelled_request_records_its_verdict_as_interrupted(database_url: str) -> None:
    # What uvicorn does to requests still running when its graceful timeout ends.
    app = create_app(make_settings(database_url), config=slow_config(30_000))
    transport = httpx.ASGITransport(app=app)

    async def post(client: httpx.AsyncClient) -> None:
        await client.post("/verdict", json={"question": "Ship it?"})

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://jury.test") as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(post, client)
        await wait_for_calls(database_url, 1)
        group.cancel_scope.cancel()

    [verdict], calls = await recorded(database_url)
    assert verdict.status == "interrupted"
    assert verdict.error is not None
    assert "CancelledError" in verdict.error["detail"]
    assert [c.juror for c in calls] == ["alpha"]
