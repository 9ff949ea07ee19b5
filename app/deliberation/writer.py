"""Group commit of model-call rows: each call stored as it completes, in shared transactions.

A transaction costs about a millisecond of CPU on the event loop whatever it holds (session,
connection checkout, BEGIN, COMMIT, each a hop to the database driver), and SQLite takes one
writer at a time: with one transaction per call, concurrent verdicts queued on SQLite's busy
handler (sleeps of up to 100 ms) and some gave up after its 5 s timeout (503s). Here the
first caller takes the lock and writes every row waiting at that moment in one transaction;
calls that complete meanwhile go into the next one.

The guarantee is the same as one transaction per call: ``write`` returns only once its row
is committed, so a juror's call is on record before the protocol moves on, and a crash
loses no finished call. A failed batch is retried row by row, so one bad row fails only the
verdict it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import insert

from app.core.db import SessionMaker, connection_scope
from app.deliberation.models import ModelCall


@dataclass(slots=True)
class _Pending:
    values: Mapping[str, Any]
    done: bool = False
    error: Exception | None = None


class CallWriter:
    """Insert ``model_calls`` rows for every verdict of the process, batched under load."""

    def __init__(self, sessionmaker: SessionMaker) -> None:
        self._sessionmaker = sessionmaker
        self._lock = anyio.Lock()
        self._waiting: list[_Pending] = []

    async def write(self, values: Mapping[str, Any]) -> None:
        """Store one row; return once it is committed, or raise what stopped it."""
        pending = _Pending(values)
        self._waiting.append(pending)
        async with self._lock:
            if not pending.done:
                batch, self._waiting = self._waiting, []
                await self._write_batch(batch)
        if pending.error is not None:
            raise pending.error

    async def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            try:
                await self._insert([p.values for p in batch])
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                else:
                    await self._write_one_by_one(batch)
            for pending in batch:
                pending.done = True
        except BaseException:
            # Cancelled or interrupted mid-write: the rows not written go back in line.
            self._waiting[:0] = [p for p in batch if not p.done]
            raise

    async def _write_one_by_one(self, batch: Sequence[_Pending]) -> None:
        for pending in batch:
            try:
                await self._insert([pending.values])
            except Exception as exc:
                pending.error = exc
            pending.done = True

    async def _insert(self, rows: list[Mapping[str, Any]]) -> None:
        async with connection_scope(self._sessionmaker) as connection:
            await connection.execute(insert(ModelCall), rows)
