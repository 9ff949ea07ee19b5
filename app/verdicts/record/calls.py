"""Stores each model call the moment it completes, counts it, and publishes progress."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from app.core import metrics
from app.deliberation import events
from app.deliberation.answers import JudgeAnswer
from app.deliberation.budget import Spend, spend_of
from app.deliberation.calls import CallOutcome
from app.deliberation.events import EventSink
from app.deliberation.protocol import JurorTurn
from app.verdicts.inflight import shielded_until
from app.verdicts.record.statements import call_row
from app.verdicts.record.writer import RecordWriter, Row, Unit


class CallRecorder:
    """The protocol's observer for one verdict.

    Each juror call is handed to the process's ``RecordWriter`` the moment it completes and
    committed straight away, in a transaction shared with the calls of concurrent verdicts,
    while the protocol goes on: a crash mid-verdict leaves every call whose commit had ended on
    record, and the next round does not wait for the database. A write that failed stops the
    verdict at the next call. The judge's call is written with the verdict's outcome, in one
    unit (``final_rows``), and ``flush`` waits for the rest before the verdict is answered.
    """

    def __init__(
        self, writer: RecordWriter, verdict_id: str, sink: EventSink, *, bound: float = math.inf
    ) -> None:
        self._writer = writer
        # When the verdict must have ended: its writes wait for the database no longer.
        self._bound = bound
        self._verdict_id = verdict_id
        self.sink = sink
        self.spent = Spend()
        self._units: list[Unit] = []
        # Rows that go into the verdict's final unit, with its outcome: the judge's call.
        self.final_rows: list[Row] = []

    def open(self, row: Row) -> None:
        """Hand the verdict's own row over, ahead of its calls (the writer keeps the order)."""
        self._units.append(self._writer.submit([row]))

    async def flush(self) -> None:
        """Return once every row handed over is committed; raise why one was not."""
        # Shielded: shutdown's cancellation must not leave a verdict's calls half-written.
        with shielded_until(self._bound):
            await self._writer.wait(self._units)

    async def juror_answered(self, turn: JurorTurn) -> None:
        """Store, count and announce one juror call."""
        outcome = turn.outcome
        await self._store(outcome, changed=turn.changed)
        answer = outcome.answer
        await self.sink.publish(
            events.juror_answered(
                self._verdict_id,
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
            await self.sink.publish(
                events.shift(
                    self._verdict_id,
                    round=outcome.round_number,
                    juror=outcome.spec.name,
                    previous=turn.previous,
                    position=answer.position,
                )
            )

    async def round_finished(self, number: int, turns: Sequence[JurorTurn]) -> None:
        """Announce the end of a round."""
        valid = sum(1 for turn in turns if turn.outcome.ok)
        await self.sink.publish(
            events.round_finished(self._verdict_id, round=number, valid=valid, total=len(turns))
        )

    async def judge_answered(self, outcome: CallOutcome[JudgeAnswer]) -> None:
        """Count and announce the judge's call; it is stored with the verdict's outcome."""
        _count_calibration(outcome)
        await self._store(outcome, changed=False, with_outcome=True)
        answer = outcome.answer
        await self.sink.publish(
            events.judge_answered(
                self._verdict_id,
                juror=outcome.spec.name,
                position=answer.verdict if answer else None,
                confidence=answer.confidence if answer else None,
                failure=outcome.failure.kind if outcome.failure else None,
                latency_ms=outcome.latency_ms,
            )
        )

    async def _store(
        self, outcome: CallOutcome[Any], *, changed: bool, with_outcome: bool = False
    ) -> None:
        _count(outcome)
        # Counted before the write: a call that was made is spent, stored or not.
        self.spent = self.spent + spend_of([outcome])
        row = call_row(self._verdict_id, outcome, changed=changed)
        self._raise_failed_write()
        if with_outcome:
            self.final_rows.append(row)
            return
        self._units.append(self._writer.submit([row]))

    def _raise_failed_write(self) -> None:
        """Stop the verdict once one of its writes failed: it could not be recorded."""
        for unit in self._units:
            if unit.error is not None:
                raise unit.error


def _count(outcome: CallOutcome[Any]) -> None:
    result = outcome.failure.kind.value if outcome.failure else "ok"
    calls, latency, prompt, completion, cost = _series(outcome.spec.name, outcome.role, result)
    calls.inc()
    latency.observe(outcome.latency_ms / 1000)
    prompt.inc(outcome.prompt_tokens)
    completion.inc(outcome.completion_tokens)
    cost.inc(outcome.cost_usd)


@functools.cache
def _series(name: str, role: str, result: str) -> tuple[Any, Any, Any, Any, Any]:
    """Return a call's metric series; looked up once (``labels`` costs ~15 us a call).

    Bounded: configured models x two roles x the failure kinds.
    """
    return (
        metrics.JUROR_CALLS.labels(name, role, result),
        metrics.JUROR_LATENCY.labels(name, role),
        metrics.TOKENS.labels(name, "prompt"),
        metrics.TOKENS.labels(name, "completion"),
        metrics.COST.labels(name),
    )


def _count_calibration(outcome: CallOutcome[JudgeAnswer]) -> None:
    decided, skipped = outcome.calibration, outcome.calibration_skipped
    if decided is not None:
        metrics.JUDGE_CALIBRATIONS.labels(
            outcome.spec.name, "flipped" if decided.flipped else "kept"
        ).inc()
    elif skipped is not None:
        metrics.JUDGE_CALIBRATIONS.labels(outcome.spec.name, f"skipped:{skipped}").inc()
