"""The verdict record's statements on SQLite's own driver store what SQLAlchemy would store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, event, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from app.core.db import (
    create_engine,
    database_error,
    driver_statement,
    sqlite_driver,
    statement_on_driver,
    threaded_sqlite_engine,
)
from app.core.errors import ConflictError
from app.verdicts.record.statements import MODEL_CALLS, VERDICTS, OwnRow, new_verdict_row
from tests.builders import call_values

STARTED = datetime(2026, 12, 7, 14, 30, 5, 123456, tzinfo=UTC)


def sqlite_connection(path: Path) -> Iterator[Connection]:
    """Yield a connection of the record writer's blocking engine on a new SQLite file."""
    engine = threaded_sqlite_engine(create_engine(f"sqlite+aiosqlite:///{path}"))
    assert engine is not None
    SQLModel.metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


@pytest.fixture
def through_sqlalchemy(tmp_path: Path) -> Iterator[Connection]:
    """Return a connection whose statements SQLAlchemy executes."""
    yield from sqlite_connection(tmp_path / "sqlalchemy.db")


@pytest.fixture
def through_driver(tmp_path: Path) -> Iterator[Connection]:
    """Return a connection whose statements run on its driver (``driver_statement``)."""
    yield from sqlite_connection(tmp_path / "driver.db")


def verdict_values() -> dict[str, Any]:
    """Return a new verdict's row with every kind of value its columns take."""
    _, values = new_verdict_row(
        verdict_id="v-1",
        created_at=STARTED,
        status="running",
        question="Ship the release — now?",
        options=["approve", "reject"],
        category="deploy",
        panel="default",
        request={"question": "Ship the release — now?", "context": 'naïve\n"quoted"', "n": 1.5},
        metadata={"agent": "ci", "nested": {"list": [1, None, True]}},
        context='naïve\n"quoted"',
    )
    return dict(values)


def run_on_driver(connection: Connection, statement: Any, params: Any) -> int:
    """Run ``statement`` as the record writer does, failing if it would not take the driver."""
    driver = sqlite_driver(connection)
    prepared = statement_on_driver(statement, params, connection.dialect)
    assert driver is not None
    assert prepared is not None
    return prepared.run(driver, params)


def stored(connection: Connection, table: str) -> list[tuple[Any, ...]]:
    """Return a table's rows as SQLite holds them (text, numbers), not as SQLAlchemy reads them."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def test_rows_and_updates_are_stored_exactly_as_sqlalchemy_stores_them(
    through_sqlalchemy: Connection, through_driver: Connection
) -> None:
    calls = [
        call_values("v-1", juror, messages=[{"role": "user", "content": "Ship it? ✓"}])
        for juror in ("a", "b", "c")
    ]
    outcome = OwnRow("v-1").change(
        {
            "status": "completed",
            "finished_at": STARTED,
            "verdict": "approve",
            "confidence": 0.75,
            "unanimous": True,
            "response": {"verdict": "approve", "dissent": [], "why": "ünïcode"},
        }
    )
    with through_sqlalchemy.begin():
        through_sqlalchemy.execute(insert(VERDICTS), [verdict_values()])
        through_sqlalchemy.execute(insert(MODEL_CALLS), calls)
        changed_by_sqlalchemy = through_sqlalchemy.execute(
            outcome.statement, outcome.params
        ).rowcount
    with through_driver.begin():
        run_on_driver(through_driver, insert(VERDICTS), [verdict_values()])
        run_on_driver(through_driver, insert(MODEL_CALLS), calls)
        changed_on_driver = run_on_driver(through_driver, outcome.statement, outcome.params)

    assert changed_on_driver == changed_by_sqlalchemy == 1
    for table in (VERDICTS.name, MODEL_CALLS.name):
        assert stored(through_driver, table) == stored(through_sqlalchemy, table)
    assert len(stored(through_driver, MODEL_CALLS.name)) == 3


def test_an_update_of_a_missing_row_counts_none(through_driver: Connection) -> None:
    change = OwnRow("no-such-verdict").change({"status": "failed"})
    with through_driver.begin():
        assert run_on_driver(through_driver, change.statement, change.params) == 0


def test_a_driver_error_arrives_as_sqlalchemys_and_means_the_same(
    through_driver: Connection,
) -> None:
    with through_driver.begin():
        run_on_driver(through_driver, insert(VERDICTS), [verdict_values()])
    with pytest.raises(IntegrityError) as raised, through_driver.begin():
        run_on_driver(through_driver, insert(VERDICTS), [verdict_values()])
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    assert isinstance(database_error(raised.value), ConflictError)


def test_a_statement_sqlalchemy_would_add_values_to_is_left_to_it(
    through_driver: Connection,
) -> None:
    defaults = Table(
        "with_defaults",
        MetaData(),
        Column("id", String, primary_key=True),
        Column("tries", Integer, default=3),  # computed by SQLAlchemy, client-side
    )
    assert driver_statement(insert(defaults), ("id",), through_driver.dialect) is None
    # An UPDATE whose parameters lack one it binds (the row's id) is not run on the driver.
    change = OwnRow("v-1").change({"status": "failed"})
    keys = tuple(k for k in change.params if k != "b_id")
    assert driver_statement(change.statement, keys, through_driver.dialect) is None
    # Rows of one executemany that name different columns are not run on the driver.
    rows = [call_values("v-1", "a"), {**call_values("v-1", "b"), "extra": 1}]
    assert statement_on_driver(insert(MODEL_CALLS), rows, through_driver.dialect) is None


def test_a_listener_to_statement_events_sends_statements_through_sqlalchemy(
    through_driver: Connection,
) -> None:
    def before_cursor_execute(*_args: Any) -> None:
        """Listen, as a tracer would; tests/runtime/test_database_faults.py injects faults so."""

    assert sqlite_driver(through_driver) is not None
    event.listen(Engine, "before_cursor_execute", before_cursor_execute)
    try:
        # A tracer or a test's injected fault listens: the writer must not run beside it.
        assert sqlite_driver(through_driver) is None
    finally:
        event.remove(Engine, "before_cursor_execute", before_cursor_execute)
    assert sqlite_driver(through_driver) is not None
