"""Readiness: /readyz waits for the providers, and sees a SQLite file that refuses writes.

litellm loads in a worker thread after start-up: while it loads the process answers /healthz
and /readyz says which dependency is not ready. The ordering is forced with events (the loader
is held until the test lets it go), not measured with a clock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import anyio.to_thread
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.config import JuryConfig
from app.http.app import create_app
from app.providers import hub as hub_module
from app.providers.base import Provider
from tests.builders import eventually, make_settings, scripted_config, serving, step

pytestmark = pytest.mark.anyio

# A guard against a hang, not a timing assertion: the test lets the loader go long before.
HOLD_LIMIT_S = 120.0


def litellm_config() -> JuryConfig:
    """Two scripted jurors and one served through litellm (never called here)."""
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]},
        extra_jurors=[
            {
                "name": "hosted",
                "model": "openai/some-model",
                "family": "family-hosted",
                # Nothing listens on port 1 of loopback; the call is never made.
                "api_base": "http://127.0.0.1:1/v1",
                "timeout_s": 5,
            }
        ],
        max_rounds=1,
    )


class HeldLoader:
    """The real litellm loader, held in its worker thread until ``release``."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.released = threading.Event()
        self.threads: list[str] = []
        self._load = hub_module.load_litellm

    def __call__(self, models: Sequence[str]) -> Provider:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        self.released.wait(HOLD_LIMIT_S)
        return self._load(models)


async def _ready(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/readyz")


async def test_healthz_answers_while_litellm_loads_and_readyz_waits_for_it(
    sqlite_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = HeldLoader()
    monkeypatch.setattr(hub_module, "load_litellm", loader)
    app = create_app(make_settings(sqlite_database), config=litellm_config())
    try:
        async with serving(app) as client:
            assert await anyio.to_thread.run_sync(loader.started.wait, HOLD_LIMIT_S)
            # The loader is blocked in its thread right now: the loop still answers.
            health = await client.get("/healthz")
            starting = await client.get("/readyz")
            verdicts = await client.get("/verdicts")
            loader.released.set()
            ready = await eventually(
                lambda: _ready(client),
                lambda response: response.status_code == 200,
                what="providers ready",
                timeout_s=HOLD_LIMIT_S,
            )
    finally:
        loader.released.set()

    assert health.status_code == 200
    assert starting.status_code == 503
    assert starting.json()["status"] == "unavailable"
    assert starting.json()["checks"]["providers"] == "starting: litellm is loading"
    assert starting.json()["checks"]["database"] == "ok"
    assert verdicts.status_code == 200
    assert ready.json()["checks"]["providers"] == "ok"
    assert loader.threads
    assert threading.main_thread().name not in loader.threads


async def test_a_scripted_panel_needs_no_provider_start_up(sqlite_database: str) -> None:
    config = scripted_config(jurors={"a": [step("approve")], "b": [step("approve")]}, max_rounds=1)
    app = create_app(make_settings(sqlite_database), config=config)
    async with serving(app) as client:
        ready = await client.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["checks"]["providers"] == "ok"


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Hold the SQLite file's write lock on a connection of another "process"."""
    path = make_url(database_url).database
    assert path is not None
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def test_a_sqlite_file_that_refuses_writes_is_not_ready(sqlite_database: str) -> None:
    config = scripted_config(jurors={"a": [step("approve")], "b": [step("approve")]}, max_rounds=1)
    async with serving(create_app(make_settings(sqlite_database), config=config)) as client:
        before = await client.get("/readyz")
        with write_lock_held(sqlite_database):
            locked = await client.get("/readyz")
            alive = await client.get("/healthz")
        after = await client.get("/readyz")

    assert before.status_code == 200
    assert locked.status_code == 503
    assert locked.json()["checks"]["database"] == (
        "unavailable: writes refused (OperationalError: database is locked)"
    )
    assert alive.status_code == 200
    assert after.status_code == 200, after.text
