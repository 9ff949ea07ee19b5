"""Database faults: Jury answers 503 and never returns a verdict it has not stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from app.core.db import create_engine, create_sessionmaker
from app.http.app import create_app
from app.security.models import Role
from app.verdicts.record.tables import Verdict
from tests.builders import make_settings, scripted_config, serving, step, stored_calls
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio

# Nothing listens on port 1: every connection is refused at once.
REFUSING_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/jury"


def quick_config() -> Any:
    """Return a unanimous two-juror scripted panel, one round."""
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]}, max_rounds=1
    )


async def test_a_database_that_refuses_connections_is_a_503() -> None:
    app = create_app(make_settings(REFUSING_POSTGRES), config=quick_config())
    async with serving(app) as client:
        verdict = await client.post("/verdict", json={"question": "Ship it?"})
        listed = await client.get("/verdicts")
        with_key = await client.get("/verdicts", headers=bearer("jury_any-key"))
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")

    for response in (verdict, listed, with_key):
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "unavailable"
        assert response.json()["detail"].startswith("database unavailable")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert alive.status_code == 200


@contextmanager
def failing(fails: Callable[[str], bool]) -> Iterator[list[str]]:
    """Make every statement for which ``fails`` holds fail as a lost connection would.

    On every engine of the process: on SQLite the verdict record is written through an engine
    of its own (``threaded_sqlite_engine``).
    """
    refused: list[str] = []

    def before_execute(*args: Any) -> None:
        statement: str = args[2]
        if fails(statement):
            refused.append(statement)
            raise OperationalError(statement, None, ConnectionResetError("connection lost"))

    event.listen(Engine, "before_cursor_execute", before_execute)
    try:
        yield refused
    finally:
        event.remove(Engine, "before_cursor_execute", before_execute)


async def verdict_rows(database_url: str) -> list[Verdict]:
    """Return every stored verdict row."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list((await session.exec(select(Verdict))).all())
    finally:
        await engine.dispose()


async def test_a_lost_final_write_is_a_503_not_an_unstored_verdict(database_url: str) -> None:
    key = await add_key(database_url, "agent", Role.AGENT)
    app = create_app(make_settings(database_url), config=quick_config())
    async with serving(app) as client:
        with failing(lambda sql: sql.startswith("UPDATE verdicts")) as refused:
            response = await client.post(
                "/verdict", json={"question": "Ship it?"}, headers=bearer(key)
            )

    assert refused
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    [row] = await verdict_rows(database_url)
    assert row.status == "running"
    assert row.response is None
    # Every call that finished before the fault is on record.
    calls = await stored_calls(database_url, row.id)
    assert [(c.role, c.juror) for c in calls] == [
        ("juror", "alpha"),
        ("juror", "bravo"),
        ("judge", "judge"),
    ]


async def test_a_lost_call_write_mid_verdict_is_a_503(database_url: str) -> None:
    app = create_app(make_settings(database_url), config=quick_config())
    async with serving(app) as client:
        with failing(lambda sql: sql.startswith("INSERT INTO model_calls")):
            response = await client.post("/verdict", json={"question": "Ship it?"})

    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    [row] = await verdict_rows(database_url)
    # The database came back for the last write: the verdict is recorded as failed.
    assert row.status == "failed"
    assert row.response is None


async def test_a_lost_verdict_insert_is_a_503_and_leaves_no_row(database_url: str) -> None:
    app = create_app(make_settings(database_url), config=quick_config())
    async with serving(app) as client:
        with failing(lambda sql: sql.startswith("INSERT INTO verdicts")) as refused:
            response = await client.post("/verdict", json={"question": "Ship it?"})

    assert refused
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert await verdict_rows(database_url) == []
