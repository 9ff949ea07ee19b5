"""Group commit of call rows: every row committed before ``write`` returns, fewer transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint
from sqlalchemy import Engine, event, insert
from sqlalchemy.engine import make_url

from app.core.db import (
    SessionMaker,
    connection_scope,
    create_engine,
    create_sessionmaker,
    session_scope,
)
from app.core.errors import ConflictError
from app.verdicts.record.repository import VerdictRepository
from app.verdicts.record.statements import (
    MODEL_CALLS,
    VERDICTS,
    ClaimedRow,
    OwnRow,
    ended,
    new_verdict_row,
)
from app.verdicts.record.writer import RecordWriter
from tests.builders import call_values as values
from tests.builders import calls_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[SessionMaker]:
    """Return a session factory on a fresh database (SQLite, then PostgreSQL)."""
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def writer(sessionmaker: SessionMaker) -> Iterator[RecordWriter]:
    """Return a record writer on the test database (its loop not served unless a test does)."""
    record = RecordWriter(sessionmaker)
    yield record
    record.close()


@pytest.fixture
def commits() -> Iterator[list[int]]:
    """Return a list that grows by one at each commit, on any engine (the writer has its own)."""
    seen: list[int] = []

    def on_commit(_connection: Any) -> None:
        seen.append(1)

    event.listen(Engine, "commit", on_commit)
    yield seen
    event.remove(Engine, "commit", on_commit)


def verdict_row(verdict_id: str) -> Mapping[str, Any]:
    """Return the column values of a new running verdict."""
    _table, row = new_verdict_row(
        verdict_id=verdict_id,
        created_at=datetime.now(UTC),
        status="running",
        question="Ship it?",
        options=["approve", "reject"],
        category="default",
        panel="default",
        request={},
        metadata={"ticket": "OPS-1"},
    )
    return row


async def add_verdict(sessionmaker: Any, verdict_id: str) -> None:
    """Store a running verdict for call rows to refer to (without the writer under test)."""
    async with connection_scope(sessionmaker) as connection:
        await connection.execute(insert(VERDICTS), [verdict_row(verdict_id)])


async def test_concurrent_calls_share_transactions_and_are_all_stored(
    sessionmaker: SessionMaker, writer: RecordWriter, commits: list[int]
) -> None:
    await add_verdict(sessionmaker, "v1")
    commits.clear()
    jurors = [f"juror-{n}" for n in range(30)]
    async with anyio.create_task_group() as group:
        for juror in jurors:
            group.start_soon(writer.insert, MODEL_CALLS, values("v1", juror))
    stored = await calls_of(sessionmaker, "v1")

    assert sorted(call.juror for call in stored) == sorted(jurors)
    assert 1 <= len(commits) < len(jurors)


async def test_a_bad_row_fails_only_its_own_write(
    sessionmaker: SessionMaker, writer: RecordWriter, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes: dict[str, str] = {}
    await add_verdict(sessionmaker, "v1")

    async def write(verdict_id: str, juror: str) -> None:
        try:
            await writer.insert(MODEL_CALLS, values(verdict_id, juror))
            outcomes[juror] = "stored"
        except ConflictError:
            outcomes[juror] = "failed"

    async with anyio.create_task_group() as group:
        group.start_soon(write, "v1", "alpha")
        # No such verdict: the foreign key refuses this row.
        group.start_soon(write, "missing", "bravo")
        group.start_soon(write, "v1", "charlie")
    stored = await calls_of(sessionmaker, "v1")

    assert outcomes == {"alpha": "stored", "bravo": "failed", "charlie": "stored"}
    assert sorted(call.juror for call in stored) == ["alpha", "charlie"]
    # The refusal is logged with the verdict it was for, never with the row's values.
    refusals = [r.getMessage() for r in caplog.records if r.name == "app.core.db"]
    assert any(m.startswith("database refused the work for verdict missing:") for m in refusals)
    assert not any("family-bravo" in m or "Ship it?" in m for m in refusals)


async def test_one_batch_inserts_parents_first_and_counts_each_update(
    sessionmaker: SessionMaker, writer: RecordWriter, commits: list[int]
) -> None:
    changed: dict[str, int] = {}
    await add_verdict(sessionmaker, "v1")
    commits.clear()

    async def finish(verdict_id: str) -> None:
        statement = ended(OwnRow(verdict_id), "failed", error={"detail": "x"}, at=datetime.now(UTC))
        changed[verdict_id] = await writer.update(statement)

    # A call row queued before its verdict's row, in the same batch: the verdict goes first.
    async with anyio.create_task_group() as group:
        group.start_soon(writer.insert, MODEL_CALLS, values("v1", "alpha"))
        group.start_soon(finish, "v1")
        group.start_soon(finish, "missing")
        group.start_soon(writer.insert, MODEL_CALLS, values("v2", "bravo"))
        group.start_soon(writer.insert, VERDICTS, verdict_row("v2"))
    async with session_scope(sessionmaker) as session:
        repository = VerdictRepository(session)
        v1, v2 = await repository.get("v1"), await repository.get("v2")
    calls = [*(await calls_of(sessionmaker, "v1")), *(await calls_of(sessionmaker, "v2"))]

    assert changed == {"v1": 1, "missing": 0}
    assert v1 is not None
    assert (v1.status, v1.error) == ("failed", {"detail": "x"})
    assert v2 is not None
    assert v2.caller_metadata == {"ticket": "OPS-1"}
    assert sorted(call.juror for call in calls) == ["alpha", "bravo"]
    assert 1 <= len(commits) <= 2


async def test_an_update_under_a_lost_claim_changes_nothing(
    sessionmaker: SessionMaker, writer: RecordWriter
) -> None:
    await add_verdict(sessionmaker, "v1")
    # v1 is running but claimed by nobody: worker-1's claim does not hold it.
    claimed = ClaimedRow("v1", "worker-1")
    lost = await writer.update(ended(claimed, "failed", error=None, at=datetime.now(UTC)))
    async with session_scope(sessionmaker) as session:
        row = await VerdictRepository(session).get("v1")

    assert lost == 0
    assert row is not None
    assert row.status == "running"


async def test_a_submitted_unit_is_committed_without_anyone_waiting(
    sessionmaker: SessionMaker, writer: RecordWriter
) -> None:
    async with anyio.create_task_group() as group:
        await group.start(writer.run)
        unit = writer.submit([(VERDICTS, verdict_row("v1"))])
        with anyio.fail_after(10):
            await unit.settled()
        stored = await calls_of(sessionmaker, "v1")
        async with session_scope(sessionmaker) as session:
            row = await VerdictRepository(session).get("v1")
        late = writer.submit([(MODEL_CALLS, values("v1", "alpha"))])
        group.cancel_scope.cancel()
    # Stopping commits what was handed over: nothing submitted is dropped.
    after = await calls_of(sessionmaker, "v1")

    assert unit.error is None
    assert row is not None
    assert stored == []
    assert late.done
    assert late.error is None
    assert [call.juror for call in after] == ["alpha"]


async def test_waiting_without_the_serving_loop_commits_the_unit_itself(
    sessionmaker: SessionMaker, writer: RecordWriter
) -> None:
    await add_verdict(sessionmaker, "v1")
    units = [writer.submit([(MODEL_CALLS, values("v1", juror))]) for juror in ("a", "b")]
    before = await calls_of(sessionmaker, "v1")
    await writer.wait(units)
    after = await calls_of(sessionmaker, "v1")

    assert before == []
    assert sorted(call.juror for call in after) == ["a", "b"]


async def test_units_nobody_waits_for_share_a_transaction_until_someone_waits(
    sessionmaker: SessionMaker, commits: list[int]
) -> None:
    # A window far longer than the test: only a waiter can end it.
    writer = RecordWriter(sessionmaker, coalesce_s=3600)
    await add_verdict(sessionmaker, "v1")
    try:
        async with anyio.create_task_group() as group:
            await group.start(writer.run)
            commits.clear()
            units = []
            for juror in ("a", "b", "c"):
                units.append(writer.submit([(MODEL_CALLS, values("v1", juror))]))
                await checkpoint()  # each handed over in a turn of the loop of its own
            held = len(commits)
            with anyio.fail_after(10):
                await writer.wait(units[:1])
            group.cancel_scope.cancel()
    finally:
        writer.close()
    stored = await calls_of(sessionmaker, "v1")

    assert held == 0
    assert len(commits) == 1
    assert sorted(call.juror for call in stored) == ["a", "b", "c"]


@pytest.fixture
def commit_threads() -> Iterator[list[int]]:
    """Return the threads that commit, in order, on any engine."""
    seen: list[int] = []

    def on_commit(_connection: Any) -> None:
        seen.append(threading.get_ident())

    event.listen(Engine, "commit", on_commit)
    yield seen
    event.remove(Engine, "commit", on_commit)


@pytest.fixture
async def sqlite_writer(sqlite_database: str) -> AsyncIterator[tuple[RecordWriter, SessionMaker]]:
    """Return a record writer on a SQLite file, and the file's session factory."""
    engine = create_engine(sqlite_database)
    sessions = create_sessionmaker(engine)
    record = RecordWriter(sessions)
    yield record, sessions
    record.close()
    await engine.dispose()


async def test_a_sqlite_transaction_runs_on_the_event_loop_when_the_lock_is_free(
    sqlite_writer: tuple[RecordWriter, SessionMaker], commit_threads: list[int]
) -> None:
    writer, sessions = sqlite_writer
    await writer.insert(VERDICTS, verdict_row("v1"))
    async with session_scope(sessions) as session:
        row = await VerdictRepository(session).get("v1")

    assert row is not None
    assert commit_threads[0] == threading.get_ident()


async def test_a_write_lock_held_elsewhere_sends_the_transaction_to_the_thread(
    sqlite_writer: tuple[RecordWriter, SessionMaker],
    sqlite_database: str,
    commit_threads: list[int],
) -> None:
    writer, sessions = sqlite_writer
    holder = sqlite3.connect(make_url(sqlite_database).database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(writer.insert, VERDICTS, verdict_row("v1"))
            # The loop goes on: the attempt on it gave up at once instead of waiting.
            for _ in range(10):
                await checkpoint()
            committed_while_held = list(commit_threads)
            holder.execute("ROLLBACK")
    finally:
        holder.close()
    async with session_scope(sessions) as session:
        row = await VerdictRepository(session).get("v1")

    assert committed_while_held == []
    assert row is not None
    assert commit_threads[0] != threading.get_ident()
