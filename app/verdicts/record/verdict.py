"""A verdict's own row in the record: written when it starts, then its outcome.

The outcomes: completed (with the judge's call, in one unit), failed or interrupted (with every
call that could still be written), no quorum, or, for a claimed verdict that shutdown stopped,
back to the queue. Every write goes through the process's ``RecordWriter``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.core.errors import ConflictError, NoQuorumError, UnavailableError
from app.deliberation.assembly import Docket, rounds_out
from app.deliberation.protocol import NoQuorumReachedError
from app.deliberation.schemas import VerdictOut, VerdictRequest
from app.verdicts.record.calls import CallRecorder
from app.verdicts.record.repository import (
    VERDICTS,
    claimed_statement,
    finish_statement,
    new_verdict_row,
)
from app.verdicts.record.writer import RecordWriter, Row


class ClaimLostError(ConflictError):
    """Another worker took over this asynchronous verdict: this worker's result is void."""

    code = "claim_lost"


class VerdictRecord:
    """Write verdict rows and their outcomes; ``claim``: the worker whose claimed row it is."""

    def __init__(self, writer: RecordWriter) -> None:
        self._writer = writer

    async def create(
        self, docket: Docket, request: VerdictRequest, api_key_id: int | None, *, status: str
    ) -> None:
        """Insert the verdict's row and return once it is committed."""
        await self._writer.insert(VERDICTS, new_row(docket, request, api_key_id, status=status))

    async def completed(
        self, verdict: VerdictOut, claim: str | None, recorder: CallRecorder
    ) -> None:
        """Commit the verdict with the judge's call, once every other call is committed."""
        await recorder.flush()
        await self.finish(
            verdict.id,
            claim,
            rows=recorder.final_rows,
            status="completed",
            verdict=verdict.verdict,
            confidence=verdict.confidence,
            agreement=verdict.agreement,
            unanimous=verdict.unanimous,
            escalate=verdict.escalate,
            degraded=verdict.degraded,
            judge_fallback=verdict.judge.fallback,
            latency_ms=verdict.latency_ms,
            prompt_tokens=verdict.usage.prompt_tokens,
            completion_tokens=verdict.usage.completion_tokens,
            cost_usd=verdict.usage.cost_usd,
            response=verdict.model_dump(mode="json", by_alias=True),
        )

    async def ended_early(
        self, verdict_id: str, exc: BaseException, recorder: CallRecorder, claim: str | None
    ) -> str | None:
        """Record why a deliberation ended without a verdict, with every call it made.

        Returns the status recorded: ``failed``, ``interrupted`` (cancelled by shutdown), or
        None when nothing was (a claimed verdict went back to the queue for another worker, or
        the verdict's own row was never written: its insert is what failed).
        """
        with contextlib.suppress(Exception):
            # What can be written is: a write that failed may be why the verdict failed, so
            # the outcome below does not depend on these.
            await recorder.flush()
            if recorder.final_rows:
                await self._writer.write(recorder.final_rows)
        if not isinstance(exc, Exception) and claim is not None:
            await self._writer.update(
                claimed_statement(verdict_id, claim, status="queued", claimed_by=None)
            )
            return None
        status = "failed" if isinstance(exc, Exception) else "interrupted"
        try:
            await self.finish(verdict_id, claim, status=status, error={"detail": repr(exc)})
        except LookupError:
            return None
        return status

    async def no_quorum(
        self, docket: Docket, exc: NoQuorumReachedError, recorder: CallRecorder, claim: str | None
    ) -> NoQuorumError:
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
        await recorder.flush()
        await self.finish(docket.verdict_id, claim, status="no_quorum", error=body)
        detail = f"only {exc.valid} juror(s) gave a valid position; the quorum is {exc.quorum}"
        return NoQuorumError(detail, **body)

    async def finish(
        self, verdict_id: str, claim: str | None, *, rows: Sequence[Row] = (), **values: Any
    ) -> None:
        """Record a verdict's end (with ``rows``, in one unit); under a claim, only while the
        claim is still this worker's (else ``ClaimLostError``)."""
        statement = finish_statement(verdict_id, claim, finished_at=datetime.now(UTC), **values)
        try:
            changed = await self._writer.write(rows, statement)
        except UnavailableError:
            if rows:
                # The outcome could not be recorded; the calls it carried still may be.
                with contextlib.suppress(UnavailableError):
                    await self._writer.write(rows)
            raise
        if changed == 1:
            return
        if claim is not None:
            raise ClaimLostError(
                f"verdict '{verdict_id}' was taken over by another worker", id=verdict_id
            )
        raise LookupError(verdict_id)


def new_row(
    docket: Docket, request: VerdictRequest, api_key_id: int | None, *, status: str
) -> dict[str, Any]:
    """Return the column values of a new verdict's row."""
    return new_verdict_row(
        id=docket.verdict_id,
        created_at=docket.created_at,
        status=status,
        question=request.question,
        context=request.context,
        options=list(docket.options),
        category=request.category,
        panel=docket.panel,
        request=request.model_dump(mode="json"),
        metadata=request.metadata,
        weights_version=docket.weights_version,
        api_key_id=api_key_id,
    )
