"""``jury worker`` outlives Redis: frozen past its timeout, or restarted empty, it never exits.

Each test runs a redis-server of its own (``eval/redis_servers.py``) under a worker running in
this process, and asks for asynchronous verdicts through the app before and after the fault.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.core.config import JuryConfig
from app.verdicts.jobs.queue import STREAM
from eval.redis_servers import redis_server
from tests.builders import app_client, make_settings, scripted_config, step
from tests.workers import worker_in_process

pytestmark = pytest.mark.anyio

ASYNC = {"Prefer": "respond-async"}
TIMEOUT_S = 0.3


def panel() -> JuryConfig:
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )


async def decided(client: httpx.AsyncClient, location: str, timeout_s: float = 30) -> Any:
    """Poll ``location`` until the verdict is no longer queued or running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = (await client.get(location)).json()
        if body["status"] not in ("queued", "running"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} was not decided within {timeout_s}s")


async def ask(client: httpx.AsyncClient) -> str:
    accepted = await client.post("/verdict", json={"question": "Ship it?"}, headers=ASYNC)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.headers["location"])


async def test_the_worker_survives_a_redis_restart_and_a_freeze(
    sqlite_database: str, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as first:
        port = first.port
        settings = make_settings(
            sqlite_database,
            redis_url=first.url,
            redis_timeout_s=TIMEOUT_S,
            redis_retry_after_s=0,
        )
        async with app_client(settings, panel()) as client, worker_in_process(settings, panel()):
            before = await decided(client, await ask(client))
            # Frozen for well over the socket timeout: the worker's reads time out meanwhile.
            first.pause()
            await asyncio.sleep(TIMEOUT_S * 5)
            first.resume()
            after_freeze = await decided(client, await ask(client))
            # Stopped, then started again empty on the same port: stream and group are gone.
            first.stop()
            await asyncio.sleep(TIMEOUT_S * 5)
            with redis_server(tmp_path, port=port) as second:
                # The first may meet a connection the restart closed (serve's own queue takes
                # it); the second goes through the new Redis, so the worker decides it.
                await decided(client, await ask(client))
                after_restart = await decided(client, await ask(client))
                with closing(redis.Redis.from_url(second.url)) as fresh:
                    sent = int(fresh.xlen(STREAM))

    assert before["status"] == "completed"
    assert after_freeze["status"] == "completed"
    assert after_restart["status"] == "completed"
    assert sent == 1
