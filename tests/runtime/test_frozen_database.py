"""A frozen PostgreSQL (connections open, no answers): every request ends within its bound.

The database sits behind a TCP relay of the test's own (``eval/tcp_relay.py``); SIGSTOP on
the relay freezes it as a hung server looks to its clients, without touching the shared server.
The bound of a verdict is its deadline plus one database timeout (``database_timeout_s``), and
one more for the API key lookup before it; a probe's is under a second. The slack only absorbs
this busy machine's scheduling: without the timeouts these requests hang for minutes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.http.app import create_app
from eval.tcp_relay import Relay, relay
from tests.builders import make_settings, scripted_config, serving, step

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

DEADLINE_S = 2.0
DATABASE_TIMEOUT_S = 1.0
SLACK_S = 3.0


@dataclass
class Timed:
    """A response and how long it took."""

    response: httpx.Response
    elapsed_s: float


async def timed(request: Awaitable[httpx.Response], limit_s: float) -> Timed:
    """Await ``request``, failing the test if it takes longer than ``limit_s``."""
    started = anyio.current_time()
    with anyio.fail_after(limit_s):
        response = await request
    return Timed(response=response, elapsed_s=anyio.current_time() - started)


def behind(url: str, port: int) -> str:
    """Return ``url`` on the relay's port."""
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@asynccontextmanager
async def app_behind_relay(
    postgres_database: str, **settings: float
) -> AsyncIterator[tuple[httpx.AsyncClient, Relay]]:
    """Serve the app on ``postgres_database`` through a relay; yield a client and the relay."""
    target = make_url(postgres_database)
    with relay(target.host or "127.0.0.1", target.port or 5432) as tcp:
        config = scripted_config(
            jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
        )
        app = create_app(
            make_settings(
                behind(postgres_database, tcp.port),
                database_timeout_s=DATABASE_TIMEOUT_S,
                **settings,
            ),
            config=config,
        )
        async with serving(app) as client:
            yield client, tcp


async def test_a_verdict_on_a_frozen_database_is_a_503_within_its_deadline(
    postgres_database: str,
) -> None:
    # Cached key lookups and weights: the verdict itself meets the frozen database.
    async with app_behind_relay(postgres_database, auth_cache_s=300, trust_cache_s=300) as (
        client,
        tcp,
    ):
        warm = await client.post("/verdict", json={"question": "Ship it?"})
        assert warm.status_code == 200, warm.text
        tcp.freeze()
        try:
            body = {"question": "Ship it?", "deadline_s": DEADLINE_S}
            frozen = await timed(client.post("/verdict", json=body), 60)
        finally:
            tcp.thaw()
        after = await client.post("/verdict", json={"question": "Ship it?"})

    assert frozen.response.status_code == 503, frozen.response.text
    assert frozen.response.json()["error"] == "unavailable"
    assert frozen.elapsed_s < DEADLINE_S + DATABASE_TIMEOUT_S + SLACK_S
    # Thawed, the same process answers again.
    assert after.status_code == 200, after.text


async def test_every_request_on_a_frozen_database_ends_within_its_bound(
    postgres_database: str,
) -> None:
    async with app_behind_relay(postgres_database, auth_cache_s=0, trust_cache_s=0) as (
        client,
        tcp,
    ):
        tcp.freeze()
        try:
            ready = await timed(client.get("/readyz"), 60)
            body = {"question": "Ship it?", "deadline_s": DEADLINE_S}
            verdict = await timed(client.post("/verdict", json=body), 60)
            queued = await timed(client.post("/verdict", json={**body, "mode": "async"}), 60)
            listed = await timed(client.get("/verdicts"), 60)
        finally:
            tcp.thaw()

    assert ready.response.status_code == 503
    assert ready.response.json()["checks"]["database"].startswith("unavailable")
    assert ready.elapsed_s < 1.0 + SLACK_S / 3
    for result, bound_s in (
        (verdict, DEADLINE_S + 2 * DATABASE_TIMEOUT_S),
        (queued, 3 * DATABASE_TIMEOUT_S),
        (listed, 2 * DATABASE_TIMEOUT_S),
    ):
        assert result.response.status_code == 503, result.response.text
        assert result.response.json()["error"] == "unavailable"
        assert result.elapsed_s < bound_s + SLACK_S, result.response.text
