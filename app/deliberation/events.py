"""Progress events of a deliberation, for the CLI's live view and the SSE stream."""

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
