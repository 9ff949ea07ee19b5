"""The typed Python client and its gate, against the real app (in-process and on a socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from app.client import AsyncJuryClient, Escalated, JuryClient, NoQuorum, Rejected, async_gate, gate
from app.client.errors import BY_CODE, NotFound, PayloadTooLarge
from app.core import errors as server_errors
from app.core.config import JuryConfig, load_config
from app.core.db import create_engine
from app.http.app import create_app
from tests.builders import SCRIPTED_CONFIG, make_settings, scripted_config, step
from tests.mcp.test_mcp import serving_http

pytestmark = pytest.mark.anyio

ACTION = {"tool": "deploy", "arguments": {"service": "billing", "version": "4.2"}}


def reference_config() -> JuryConfig:
    return load_config(SCRIPTED_CONFIG, environ={})


def judged(position: str, confidence: float) -> JuryConfig:
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]},
        judge=[step(position, confidence=confidence)],
        max_rounds=1,
    )


class LosesFirstAnswer(httpx.AsyncBaseTransport):
    """The network: delivers each request, but loses the first answer on its way back."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = await self._inner.handle_async_request(request)
        if len(self.sent) == 1:
            await response.aread()
            raise httpx.ReadError("connection reset", request=request)
        return response


@asynccontextmanager
async def client_on(
    database_url: str, config: JuryConfig, transport: Any = None
) -> AsyncIterator[AsyncJuryClient]:
    app = create_app(make_settings(database_url), config=config)
    async with app.router.lifespan_context(app):
        inner = httpx.ASGITransport(app=app)
        async with AsyncJuryClient(
            "http://jury.test", transport=transport(inner) if transport else inner
        ) as client:
            yield client


async def _verdict_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM verdicts"))).scalar_one()
            return int(count)
    finally:
        await engine.dispose()


async def test_a_retry_after_a_lost_answer_does_not_deliberate_twice(database_url: str) -> None:
    lossy: list[LosesFirstAnswer] = []

    def transport(inner: httpx.AsyncBaseTransport) -> LosesFirstAnswer:
        lossy.append(LosesFirstAnswer(inner))
        return lossy[0]

    async with client_on(database_url, reference_config(), transport) as client:
        verdict = await client.request_verdict("Ship 4.2?", category="deploy", action=ACTION)

    (network,) = lossy
    keys = {request.headers["Idempotency-Key"] for request in network.sent}
    assert len(network.sent) == 2
    assert len(keys) == 1  # the retry carried the first request's key
    assert verdict.verdict == "approve"
    assert verdict.action is not None
    assert verdict.action.tool == "deploy"
    assert await _verdict_rows(database_url) == 1


async def test_errors_are_the_servers_tree(sqlite_database: str) -> None:
    undecidable = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step(failure="error")]}, quorum=2
    )
    async with client_on(sqlite_database, undecidable) as client:
        with pytest.raises(NoQuorum) as no_quorum:
            await client.request_verdict("Proceed?")
        with pytest.raises(NotFound):
            await client.get_verdict("no-such-verdict")
        with pytest.raises(PayloadTooLarge) as too_large:
            await client.request_verdict("x" * 9_000)

    assert no_quorum.value.verdict_id is not None
    assert no_quorum.value.status_code == 503
    assert too_large.value.body["field"] == "question"


def test_every_server_error_code_has_its_client_type() -> None:
    server = {
        cls.code
        for cls in vars(server_errors).values()
        if isinstance(cls, type) and issubclass(cls, server_errors.JuryError)
    }
    assert server - {"internal_error", "config_error"} <= set(BY_CODE)


def test_timeouts_are_never_infinite() -> None:
    with pytest.raises(ValueError, match="finite"):
        JuryClient(timeout=httpx.Timeout(10.0, read=None))


async def test_follow_streams_progress_to_the_verdict(sqlite_database: str) -> None:
    async with client_on(sqlite_database, reference_config()) as client:
        accepted = await client.submit_verdict("Ship 4.2?")
        events = [event async for event in client.follow(accepted.id)]
        fetched = await client.get_verdict(accepted.id)

    assert events[0].type == "juror_answered"
    assert events[-1].type == "verdict"
    assert sum(event.type == "shift" for event in events) == 1
    assert fetched.status == "completed"


async def test_the_async_gate_runs_the_action_only_on_an_approval(sqlite_database: str) -> None:
    ran: list[str] = []
    async with (
        client_on(sqlite_database, judged("approve", 0.9)) as client,
        async_gate(client, category="deploy", question="Ship?", action=ACTION) as verdict,
    ):
        ran.append(verdict.id)

    assert len(ran) == 1


@pytest.mark.parametrize(
    ("config", "refusal"),
    [(judged("reject", 0.9), Rejected), (judged("approve", 0.3), Escalated)],
)
async def test_the_async_gate_refuses_with_the_verdict_id(
    sqlite_database: str, config: JuryConfig, refusal: type[Exception]
) -> None:
    ran: list[str] = []
    async with client_on(sqlite_database, config) as client:
        with pytest.raises(refusal) as refused:
            async with async_gate(client, category="deploy", question="Ship?", action=ACTION):
                ran.append("deployed")
        recorded = await client.get_verdict(refused.value.verdict_id)  # type: ignore[attr-defined]

    assert ran == []
    assert recorded.id == refused.value.verdict_id  # type: ignore[attr-defined]


async def test_the_sync_client_and_the_gate_decorator(sqlite_database: str) -> None:
    async with serving_http(sqlite_database, judged("approve", 0.9)) as base:

        def agent() -> list[str]:
            ran: list[str] = []
            with JuryClient(base) as jury:

                @gate(jury, category="deploy", question="Ship 4.2?", action=ACTION)
                def deploy() -> None:
                    ran.append("deployed")

                deploy()
                deploy()
                outcome = jury.report_outcome(jury.request_verdict("Ship?").id, "approve")
                ran.append(outcome.correct_option)
            return ran

        ran = await anyio.to_thread.run_sync(agent)

    assert ran == ["deployed", "deployed", "approve"]
