"""Stores each model call the moment it completes, counts it, and publishes progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from app.core import metrics
from app.deliberation.answers import JudgeAnswer
from app.deliberation.budget import spend_of
from app.deliberation.calls import CallOutcome
from app.deliberation.events import Event, EventSink
from app.deliberation.models import ModelCall
from app.deliberation.prompts import PROMPT_VERSION
from app.deliberation.protocol import JurorTurn
from app.deliberation.repository import MODEL_CALLS
from app.deliberation.writer import RecordWriter
from app.security.spend import Spend


class CallRecorder:
    """The protocol's observer for one verdict.

    Each call is committed as soon as it completes, before the protocol goes on, so that a
    crash mid-verdict still leaves every finished call on record. The process's
    ``RecordWriter`` shares one transaction among the calls of concurrent verdicts that
    complete together.
    """

    def __init__(self, writer: RecordWriter, verdict_id: str, sink: EventSink) -> None:
        self._writer = writer
        self._verdict_id = verdict_id
        self.sink = sink
        self.spent = Spend()

    async def juror_answered(self, turn: JurorTurn) -> None:
        """Store, count and announce one juror call."""
        outcome = turn.outcome
        await self._store(outcome, changed=turn.changed)
        answer = outcome.answer
        await self._publish(
            Event(
                type="juror_answered",
                verdict_id=self._verdict_id,
                round=outcome.round_number,
                juror=outcome.spec.name,
                position=answer.position if answer else None,
                confidence=answer.confidence if answer else None,
                failure=outcome.failure.kind if outcome.failure else None,
                latency_ms=outcome.latency_ms,
            )
        )
        if turn.changed and answer is not None:
            metrics.SHIFTS.labels(outcome.spec.name).inc()
            await self._publish(
                Event(
                    type="shift",
                    verdict_id=self._verdict_id,
                    round=outcome.round_number,
                    juror=outcome.spec.name,
                    previous=turn.previous,
                    position=answer.position,
                )
            )

    async def round_finished(self, number: int, turns: Sequence[JurorTurn]) -> None:
        """Announce the end of a round."""
        valid = sum(1 for turn in turns if turn.outcome.ok)
        await self._publish(
            Event(
                type="round_finished",
                verdict_id=self._verdict_id,
                round=number,
                detail=f"{valid} of {len(turns)} jurors answered",
            )
        )

    async def judge_answered(self, outcome: CallOutcome[JudgeAnswer]) -> None:
        """Store, count and announce the judge's call."""
        await self._store(outcome, changed=False)
        answer = outcome.answer
        await self._publish(
            Event(
                type="judge_answered",
                verdict_id=self._verdict_id,
                juror=outcome.spec.name,
                position=answer.verdict if answer else None,
                confidence=answer.confidence if answer else None,
                failure=outcome.failure.kind if outcome.failure else None,
                latency_ms=outcome.latency_ms,
            )
        )

    async def _store(self, outcome: CallOutcome[Any], *, changed: bool) -> None:
        _count(outcome)
        # Counted before the write: a call that was made is spent, stored or not.
        self.spent = self.spent + spend_of([outcome])
        values = call_values(self._verdict_id, outcome, changed=changed)
        # Shielded: a call that finished is stored even when shutdown cancels the verdict.
        with anyio.CancelScope(shield=True):
            await self._writer.insert(MODEL_CALLS, values)

    async def _publish(self, event: Event) -> None:
        await self.sink.publish(event)


def call_row(verdict_id: str, outcome: CallOutcome[Any], *, changed: bool) -> ModelCall:
    """Build the database row of one call."""
    return ModelCall(**call_values(verdict_id, outcome, changed=changed))


def call_values(verdict_id: str, outcome: CallOutcome[Any], *, changed: bool) -> dict[str, Any]:
    """Return the column values of one call's row."""
    answer = outcome.answer
    parsed = answer.model_dump(mode="json") if answer is not None else None
    position = None
    if parsed is not None:
        position = parsed.get("position", parsed.get("verdict"))
    failure = outcome.failure
    return {
        "verdict_id": verdict_id,
        "role": outcome.role,
        "round": outcome.round_number,
        "juror": outcome.spec.name,
        "model": outcome.spec.model,
        "family": outcome.spec.family,
        "prompt_version": PROMPT_VERSION,
        "messages": [{"role": m.role, "content": m.content} for m in outcome.messages],
        "raw_output": outcome.raw_output,
        "parsed": parsed,
        "position": position,
        "confidence": parsed.get("confidence") if parsed else None,
        "changed": changed,
        "attempts": outcome.attempts,
        "latency_ms": outcome.latency_ms,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "failure_kind": failure.kind.value if failure else None,
        "failure_detail": failure.detail if failure else None,
        "started_at": outcome.started_at,
    }


def _count(outcome: CallOutcome[Any]) -> None:
    name = outcome.spec.name
    result = outcome.failure.kind.value if outcome.failure else "ok"
    metrics.JUROR_CALLS.labels(name, outcome.role, result).inc()
    metrics.JUROR_LATENCY.labels(name, outcome.role).observe(outcome.latency_ms / 1000)
    metrics.TOKENS.labels(name, "prompt").inc(outcome.prompt_tokens)
    metrics.TOKENS.labels(name, "completion").inc(outcome.completion_tokens)
    metrics.COST.labels(name).inc(outcome.cost_usd)
