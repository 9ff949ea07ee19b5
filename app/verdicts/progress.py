"""Live progress of verdicts: an event log per verdict, and following it as a stream.

``ProgressBus`` is the log. With Redis, a verdict's events are a Redis Stream
(``jury:events:{id}``, XADD, expiring ``events_ttl_s`` after the last event), so that any
replica can follow a verdict that another replica or a worker decides, and a late subscriber
replays it from the start (XREAD from 0, then XREAD BLOCK). Without Redis, or while it is down,
the log lives in this process.

``Progress.follow`` turns the log into the stream ``GET /verdicts/{id}/events`` sends: a verdict
in flight is followed until its terminal event; a finished verdict is replayed from its log, or,
once the log has expired, synthesised from the stored transcript.
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from redis.asyncio import Redis

from app.core.clock import MAX_DEADLINE_S
from app.core.redis import EVENTS_BLOCK_S, RedisLink
from app.deliberation import events
from app.deliberation.events import TERMINAL_EVENTS, Event
from app.deliberation.schemas import CallOut, VerdictIncomplete, VerdictOut
from app.providers.errors import FailureKind
from app.verdicts.reads import VerdictReads

Entry = tuple[str, Event]  # (event id, event)
# XREAD's answer: [(stream, [(message id, {field: value})])], bytes throughout.
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None
Record = VerdictOut | VerdictIncomplete

IN_FLIGHT = frozenset({"queued", "running"})
# A stream gives up on a verdict that never ends (its process died): past the longest deadline.
MAX_FOLLOW_S = MAX_DEADLINE_S + 300.0
STREAM_MAXLEN = 2_000


@dataclass
class _Log:
    entries: list[Event] = field(default_factory=list)
    # Made by the first follower that waits, set and dropped by the next append: most verdicts
    # have no follower, and an Event costs a backend lookup to make.
    changed: anyio.Event | None = None


class MemoryLogs:
    """Event logs in this process, the most recent verdicts' only."""

    def __init__(self, *, keep: int = 1_000) -> None:
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        self._keep = keep

    async def append(self, event: Event) -> None:
        """Add an event to its verdict's log and wake its followers."""
        log = self._log(event.verdict_id)
        log.entries.append(event)
        if log.changed is not None:
            log.changed.set()
            log.changed = None

    async def read(self, verdict_id: str, *, after: str, block_s: float) -> list[Entry]:
        """Return the events after ``after``, waiting up to ``block_s`` for one."""
        log = self._log(verdict_id)
        start = int(after) if after.isdigit() else 0
        if start >= len(log.entries) and block_s > 0:
            if log.changed is None:
                log.changed = anyio.Event()
            changed = log.changed
            with anyio.move_on_after(block_s):
                await changed.wait()
        return [(str(i + 1), e) for i, e in enumerate(log.entries) if i >= start]

    def _log(self, verdict_id: str) -> _Log:
        log = self._logs.get(verdict_id)
        if log is None:
            log = self._logs[verdict_id] = _Log()
            while len(self._logs) > self._keep:
                self._logs.popitem(last=False)
        self._logs.move_to_end(verdict_id)
        return log


class ProgressBus:
    """Each verdict's progress events: published by whoever decides it, read by any replica.

    It is an ``EventSink``: publishing never raises, whatever Redis does.
    """

    def __init__(self, link: RedisLink | None, *, ttl_s: int, prefix: str = "jury") -> None:
        self._link = link
        self._memory = MemoryLogs()
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def publish(self, event: Event) -> None:
        """Append ``event`` to its verdict's log."""
        if self._link is None:
            await self._memory.append(event)
            return
        await self._link.attempt(
            "events_publish",
            lambda client: self._append_in_redis(client, event),
            lambda: self._memory.append(event),
        )

    async def read(self, verdict_id: str, *, after: str, block_s: float) -> list[Entry]:
        """Return the events after the id ``after`` ("0": all), waiting up to ``block_s``."""
        if self._link is None:
            return await self._memory.read(verdict_id, after=after, block_s=block_s)
        memory_after = after if after.isdigit() else "0"
        return await self._link.attempt(
            "events_read",
            lambda client: self._read_in_redis(client, verdict_id, after, block_s),
            lambda: self._memory.read(verdict_id, after=memory_after, block_s=block_s),
            client=self._link.blocking if block_s > 0 else None,
        )

    def _key(self, verdict_id: str) -> str:
        return f"{self._prefix}:events:{verdict_id}"

    async def _append_in_redis(self, client: Redis, event: Event) -> None:
        key = self._key(event.verdict_id)
        async with client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"event": event.model_dump_json()}, maxlen=STREAM_MAXLEN)
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def _read_in_redis(
        self, client: Redis, verdict_id: str, after: str, block_s: float
    ) -> list[Entry]:
        cursor = after if _is_stream_id(after) else "0"
        block_ms = int(block_s * 1000) if block_s > 0 else None
        answer: StreamReply = await client.xread(  # type: ignore[assignment]
            {self._key(verdict_id): cursor}, block=block_ms
        )
        return [
            (_text(message_id), Event.model_validate_json(fields[b"event"]))
            for _stream, messages in answer or []
            for message_id, fields in messages
        ]


def _is_stream_id(value: str) -> bool:
    first, _, second = value.partition("-")
    return first.isdigit() and (not second or second.isdigit())


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value


class Progress:
    """Follow a verdict's progress as a stream of events."""

    def __init__(
        self, bus: ProgressBus, verdicts: VerdictReads, *, poll_s: float = EVENTS_BLOCK_S
    ) -> None:
        self._bus = bus
        self._verdicts = verdicts
        self._poll_s = poll_s

    async def follow(
        self, verdict_id: str, *, owner: int | None, after: str | None
    ) -> AsyncIterator[Entry | None]:
        """Check the verdict is visible (404 otherwise), then return its event stream.

        The stream yields ``None`` when nothing happened for a while: a keep-alive.
        """
        record = await self._verdicts.get(verdict_id, owner=owner)
        return self._stream(record, after)

    async def _stream(self, record: Record, after: str | None) -> AsyncIterator[Entry | None]:
        if record.status not in IN_FLIGHT:
            for entry in await self._finished(record, after):
                yield entry
            return
        cursor = after or "0"
        with anyio.move_on_after(MAX_FOLLOW_S):
            while True:
                entries = await self._bus.read(record.id, after=cursor, block_s=self._poll_s)
                for entry in entries:
                    yield entry
                    cursor = entry[0]
                    if entry[1].type in TERMINAL_EVENTS:
                        return
                if entries:
                    continue
                latest = await self._verdicts.get(record.id)
                if latest.status not in IN_FLIGHT:
                    async for entry in self._close(latest, cursor):
                        yield entry
                    return
                yield None

    async def _close(self, record: Record, cursor: str) -> AsyncIterator[Entry]:
        """Send what the log got since the last read; its end if the log never got it."""
        entries = await self._bus.read(record.id, after=cursor, block_s=0)
        for entry in entries:
            yield entry
        if not any(event.type in TERMINAL_EVENTS for _, event in entries):
            # The terminal event never reached the log (Redis failed then): say it now.
            yield ("end", synthesise(record)[-1])

    async def _finished(self, record: Record, after: str | None) -> list[Entry]:
        if after is not None and after.startswith("s") and after[1:].isdigit():
            return _numbered(synthesise(record))[int(after[1:]) :]
        logged = await self._bus.read(record.id, after=after or "0", block_s=0)
        if after is not None or any(event.type in TERMINAL_EVENTS for _, event in logged):
            return logged
        return _numbered(synthesise(record))


def _numbered(events: builtins.list[Event]) -> builtins.list[Entry]:
    return [(f"s{number}", event) for number, event in enumerate(events, start=1)]


def synthesise(record: Record) -> list[Event]:
    """Rebuild the progress events of a finished verdict from its stored record."""
    if isinstance(record, VerdictOut):
        return _from_verdict(record)
    return _from_incomplete(record)


def _from_verdict(verdict: VerdictOut) -> list[Event]:
    replayed: list[Event] = []
    previous = {(shift.juror, shift.round): shift.from_position for shift in verdict.shifts}
    for round_ in verdict.rounds:
        for p in round_.positions:
            replayed.append(
                events.juror_answered(
                    verdict.id,
                    round=round_.number,
                    juror=p.juror,
                    position=p.position,
                    confidence=p.confidence,
                    failure=p.failure.kind if p.failure else None,
                    latency_ms=p.latency_ms,
                )
            )
            if p.changed and p.position is not None and (p.juror, round_.number) in previous:
                replayed.append(
                    events.shift(
                        verdict.id,
                        round=round_.number,
                        juror=p.juror,
                        previous=previous[(p.juror, round_.number)],
                        position=p.position,
                    )
                )
        valid = sum(1 for p in round_.positions if p.failure is None)
        replayed.append(
            events.round_finished(
                verdict.id, round=round_.number, valid=valid, total=len(round_.positions)
            )
        )
    judge = verdict.judge
    if judge.verdict is not None or judge.failure is not None:
        replayed.append(
            events.judge_answered(
                verdict.id,
                juror=judge.name,
                position=judge.verdict,
                confidence=judge.confidence,
                failure=judge.failure.kind if judge.failure else None,
                latency_ms=judge.latency_ms,
            )
        )
    replayed.append(
        events.verdict_reached(verdict.id, position=verdict.verdict, confidence=verdict.confidence)
    )
    return replayed


def _from_incomplete(record: VerdictIncomplete) -> list[Event]:
    replayed = [_from_call(record.id, call) for call in record.calls]
    error = record.error or {}
    if record.status == "no_quorum":
        valid, quorum = int(error.get("valid", 0)), int(error.get("quorum", 0))
        replayed.append(events.no_quorum(record.id, valid=valid, quorum=quorum))
    else:
        detail = str(error.get("detail") or record.status)
        replayed.append(events.failed(record.id, detail=detail))
    return replayed


def _from_call(verdict_id: str, call: CallOut) -> Event:
    failure = FailureKind(call.failure_kind) if call.failure_kind else None
    if call.role == "judge":
        return events.judge_answered(
            verdict_id,
            juror=call.juror,
            position=call.position,
            confidence=call.confidence,
            failure=failure,
            latency_ms=call.latency_ms,
        )
    return events.juror_answered(
        verdict_id,
        round=call.round,
        juror=call.juror,
        position=call.position,
        confidence=call.confidence,
        failure=failure,
        latency_ms=call.latency_ms,
    )
