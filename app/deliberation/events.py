"""Progress events of a deliberation, for the CLI's live view and the SSE stream.

Each event is built by one factory below, whether it is published live or replayed from the
record: the same fact has the same text. ``no_quorum_detail`` is the one wording of a missed
quorum (the event, the protocol's error and the HTTP error say it alike).
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel

from app.providers.errors import FailureKind

EventType = Literal[
    "juror_answered", "round_finished", "shift", "judge_answered", "verdict", "no_quorum", "failed"
]

# The events after which a verdict's stream has nothing more to say.
TERMINAL_EVENTS: frozenset[EventType] = frozenset({"verdict", "no_quorum", "failed"})


class Event(BaseModel):
    """One thing that happened while a verdict was being deliberated."""

    type: EventType
    verdict_id: str
    round: int | None = None
    juror: str | None = None
    position: str | None = None
    confidence: float | None = None
    previous: str | None = None
    failure: FailureKind | None = None
    latency_ms: float | None = None
    detail: str | None = None


def juror_answered(
    verdict_id: str,
    *,
    round: int | None,
    juror: str,
    position: str | None,
    confidence: float | None,
    failure: FailureKind | None,
    latency_ms: float,
) -> Event:
    """Return the event of one finished juror call (valid or failed)."""
    return Event(
        type="juror_answered",
        verdict_id=verdict_id,
        round=round,
        juror=juror,
        position=position,
        confidence=confidence,
        failure=failure,
        latency_ms=latency_ms,
    )


def shift(verdict_id: str, *, round: int, juror: str, previous: str | None, position: str) -> Event:
    """Return the event of a juror that changed its position in a rebuttal round."""
    return Event(
        type="shift",
        verdict_id=verdict_id,
        round=round,
        juror=juror,
        previous=previous,
        position=position,
    )


def round_finished(verdict_id: str, *, round: int, valid: int, total: int) -> Event:
    """Return the event of a round's end: how many of its jurors gave a valid position."""
    return Event(
        type="round_finished",
        verdict_id=verdict_id,
        round=round,
        detail=f"{valid} of {total} jurors answered",
    )


def judge_answered(
    verdict_id: str,
    *,
    juror: str,
    position: str | None,
    confidence: float | None,
    failure: FailureKind | None,
    latency_ms: float,
) -> Event:
    """Return the event of the judge's finished call (valid or failed)."""
    return Event(
        type="judge_answered",
        verdict_id=verdict_id,
        juror=juror,
        position=position,
        confidence=confidence,
        failure=failure,
        latency_ms=latency_ms,
    )


def verdict_reached(verdict_id: str, *, position: str, confidence: float) -> Event:
    """Return the terminal event of a decided verdict."""
    return Event(type="verdict", verdict_id=verdict_id, position=position, confidence=confidence)


def no_quorum_detail(valid: int, quorum: int) -> str:
    """Return the one wording of a missed quorum."""
    return f"only {valid} juror(s) gave a valid position; the quorum is {quorum}"


def no_quorum(verdict_id: str, *, valid: int, quorum: int) -> Event:
    """Return the terminal event of a verdict too few jurors answered."""
    return Event(type="no_quorum", verdict_id=verdict_id, detail=no_quorum_detail(valid, quorum))


def failed(verdict_id: str, *, detail: str) -> Event:
    """Return the terminal event of a verdict that ended without one, saying why."""
    return Event(type="failed", verdict_id=verdict_id, detail=detail)


class EventSink(Protocol):
    """Anything that accepts progress events."""

    async def publish(self, event: Event) -> None:
        """Handle one event; must not raise for the deliberation's sake."""
        ...


class NullSink:
    """Discard events."""

    async def publish(self, event: Event) -> None:
        """Do nothing."""


class Tee:
    """Publish each event to several sinks, in order."""

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = sinks

    async def publish(self, event: Event) -> None:
        """Hand ``event`` to every sink."""
        for sink in self._sinks:
            await sink.publish(event)
