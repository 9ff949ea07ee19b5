"""One verdict's record: its row, its model calls, and its outcome, under one hold.

A record starts one of two ways, chosen once: ``VerdictRecord.open`` inserts a new verdict's
row (queued, or running while round 1 runs), ``VerdictRecord.claimed`` takes over the row of a
queued verdict a worker claimed. From then on its outcomes are the same calls: completed (with
the judge's call, in one unit), failed or interrupted (with every call that could still be
written), no quorum, or, for a claimed verdict that shutdown stopped, back to the queue. Every
write goes through the process's ``RecordWriter``; every row and UPDATE is built in
``statements.py``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any, Literal

from app.core.clock import utcnow
from app.core.errors import JuryError, NoQuorumError, UnavailableError
from app.deliberation.assembly import Docket, rounds_out
from app.deliberation.events import EventSink, NullSink, no_quorum_detail
from app.deliberation.protocol import NoQuorumReachedError
from app.deliberation.schemas import VerdictOut, VerdictRequest
from app.verdicts.record import statements
from app.verdicts.record.calls import CallRecorder
from app.verdicts.record.statements import ClaimedRow, Hold, OwnRow
from app.verdicts.record.writer import Change, RecordWriter, Row


class VerdictRecord:
    """Write one verdict's record; ``calls`` is the protocol's observer that stores its calls."""

    def __init__(
        self, writer: RecordWriter, hold: Hold, sink: EventSink, *, bound: float = math.inf
    ) -> None:
        self._writer = writer
        self._hold = hold
        self.calls = CallRecorder(writer, hold.verdict_id, sink, bound=bound)

    @classmethod
    def open(
        cls,
        writer: RecordWriter,
        *,
        docket: Docket,
        request: VerdictRequest,
        api_key_id: int | None,
        status: Literal["queued", "running"],
        sink: EventSink | None = None,
        bound: float = math.inf,
    ) -> VerdictRecord:
        """Start a new verdict's record: its row is handed over ahead of its calls.

        The writer commits it before any of its calls; ``written`` waits for it.
        """
        record = cls(writer, OwnRow(docket.verdict_id), sink or NullSink(), bound=bound)
        record.calls.open(
            statements.new_verdict_row(
                verdict_id=docket.verdict_id,
                created_at=docket.created_at,
                status=status,
                question=request.question,
                context=request.context,
                options=docket.options,
                category=request.category,
                panel=docket.panel,
                request=request.model_dump(mode="json"),
                metadata=request.metadata,
                weights_version=docket.weights_version,
                api_key_id=api_key_id,
            )
        )
        return record

    @classmethod
    def claimed(
        cls,
        writer: RecordWriter,
        verdict_id: str,
        *,
        worker: str,
        sink: EventSink,
        bound: float = math.inf,
    ) -> VerdictRecord:
        """Continue the record of a queued verdict ``worker`` claimed, while the claim holds."""
        return cls(writer, ClaimedRow(verdict_id, worker), sink, bound=bound)

    async def written(self) -> None:
        """Return once everything handed over is committed; raise why it was not."""
        await self.calls.flush()

    async def completed(self, verdict: VerdictOut) -> None:
        """Commit the verdict with the judge's call, once every other call is committed."""
        await self.calls.flush()
        change = statements.completed(self._hold, verdict, at=utcnow())
        await self._finish(change, rows=self.calls.final_rows)

    async def refused(self, error: JuryError) -> None:
        """Record that the verdict failed before it started, and why (``error``'s body)."""
        await self._finish(statements.ended(self._hold, "failed", error=error.body(), at=utcnow()))

    async def ended_early(self, exc: BaseException) -> str | None:
        """Record why a deliberation ended without a verdict, with every call it made.

        The status recorded is ``failed``, or ``interrupted`` (cancelled by shutdown). Returns
        the recorded error's detail, or None when nothing was recorded (a claimed verdict went
        back to the queue for another worker, or the verdict's own row was never written: its
        insert is what failed).
        """
        with contextlib.suppress(Exception):
            # What can be written is: a write that failed may be why the verdict failed, so
            # the outcome below does not depend on these.
            await self.calls.flush()
            if self.calls.final_rows:
                await self._writer.write(self.calls.final_rows)
        if not isinstance(exc, Exception) and isinstance(self._hold, ClaimedRow):
            await self._writer.update(statements.requeued(self._hold))
            return None
        status: statements.Ending = "failed" if isinstance(exc, Exception) else "interrupted"
        detail = repr(exc)
        try:
            change = statements.ended(self._hold, status, error={"detail": detail}, at=utcnow())
            await self._finish(change)
        except LookupError:
            return None
        return detail

    async def no_quorum(self, docket: Docket, exc: NoQuorumReachedError) -> NoQuorumError:
        """Record that too few jurors gave a valid position; return the error to answer."""
        rounds = rounds_out(exc.transcript)
        positions = [p.model_dump(mode="json") for r in rounds for p in r.positions]
        body: dict[str, Any] = {
            "id": docket.verdict_id,
            "valid": exc.valid,
            "quorum": exc.quorum,
            "positions": positions,
            "recused": list(docket.recused),
        }
        await self.calls.flush()
        await self._finish(statements.ended(self._hold, "no_quorum", error=body, at=utcnow()))
        return no_quorum_error(body)

    async def _finish(self, change: Change, *, rows: Sequence[Row] = ()) -> None:
        """Record a verdict's end (with ``rows``, in one unit); raise the hold's ``lost``
        error (``ClaimLostError`` under a claim) when the row was not there to change."""
        try:
            changed = await self._writer.write(rows, change)
        except UnavailableError:
            if rows:
                # The outcome could not be recorded; the calls it carried still may be.
                with contextlib.suppress(UnavailableError):
                    await self._writer.write(rows)
            raise
        if changed != 1:
            raise self._hold.lost()


def no_quorum_error(body: dict[str, Any]) -> NoQuorumError:
    """Return the error a verdict recorded as ``no_quorum`` answers, from its recorded body."""
    return NoQuorumError(no_quorum_detail(int(body["valid"]), int(body["quorum"])), **body)
