"""Group commit of call rows: every row committed before ``write`` returns, fewer transactions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from sqlalchemy import event

from app.core.db import create_engine, create_sessionmaker, session_scope
from app.core.errors import UnavailableError
from app.deliberation.models import Verdict
from app.deliberation.repository import VerdictRepository
from app.deliberation.writer import CallWriter
from tests.builders import calls_of

pytestmark = pytest.mark.anyio


def values(verdict_id: str, juror: str) -> dict[str, Any]:
    """Return the column values of one successful juror call."""
    return {
        "verdict_id": verdict_id,
        "role": "juror",
        "round": 1,
        "juror": juror,
        "model": "scripted",
        "family": f"family-{juror}",
        "prompt_version": "test",
        "messages": [{"role": "user", "content": "Ship it?"}],
        "raw_output": '{"position": "approve"}',
        "parsed": {"position": "approve"},
        "position": "approve",
        "confidence": 0.8,
        "changed": False,
        "attempts": 1,
        "latency_ms": 1.0,
        "started_at": datetime.now(UTC),
    }


async def add_verdict(sessionmaker: Any, verdict_id: str) -> None:
    """Store a running verdict for call rows to refer to."""
    async with session_scope(sessionmaker) as session:
        await VerdictRepository(session).add(
            Verdict(
                id=verdict_id,
                created_at=datetime.now(UTC),
                status="running",
                question="Ship it?",
                options=["approve", "reject"],
                category="default",
                panel="default",
                request={},
            )
        )


async def test_concurrent_calls_share_transactions_and_are_all_stored(
    sqlite_database: str,
) -> None:
    engine = create_engine(sqlite_database)
    sessionmaker = create_sessionmaker(engine)
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(1))
    try:
        await add_verdict(sessionmaker, "v1")
        commits.clear()
        writer = CallWriter(sessionmaker)
        jurors = [f"juror-{n}" for n in range(30)]
        async with anyio.create_task_group() as group:
            for juror in jurors:
                group.start_soon(writer.write, values("v1", juror))
        stored = await calls_of(sessionmaker, "v1")
    finally:
        await engine.dispose()

    assert sorted(call.juror for call in stored) == sorted(jurors)
    assert 1 <= len(commits) < len(jurors)


async def test_a_bad_row_fails_only_its_own_write(sqlite_database: str) -> None:
    engine = create_engine(sqlite_database)
    sessionmaker = create_sessionmaker(engine)
    outcomes: dict[str, str] = {}
    try:
        await add_verdict(sessionmaker, "v1")
        writer = CallWriter(sessionmaker)

        async def write(verdict_id: str, juror: str) -> None:
            try:
                await writer.write(values(verdict_id, juror))
                outcomes[juror] = "stored"
            except UnavailableError:
                outcomes[juror] = "failed"

        async with anyio.create_task_group() as group:
            group.start_soon(write, "v1", "alpha")
            # No such verdict: the foreign key refuses this row.
            group.start_soon(write, "missing", "bravo")
            group.start_soon(write, "v1", "charlie")
        stored = await calls_of(sessionmaker, "v1")
    finally:
        await engine.dispose()

    assert outcomes == {"alpha": "stored", "bravo": "failed", "charlie": "stored"}
    assert sorted(call.juror for call in stored) == ["alpha", "charlie"]
