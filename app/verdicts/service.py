"""The verdict use cases: decide a verdict now, queue one, decide a queued one.

The API, the CLI and the evaluation harness all decide verdicts through ``VerdictService``;
requests are checked and seated by ``VerdictPreparation`` (``preparation.py``) and read back
through ``VerdictReads`` (``reads.py``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Literal

import anyio
from anyio.abc import TaskStatus

from app.core.config import JuryConfig
from app.core.db import SessionMaker, session_scope
from app.core.errors import DatabaseError, JuryError, NoQuorumError, NotFoundError, UnavailableError
from app.core.settings import Settings
from app.deliberation import events
from app.deliberation.assembly import assemble
from app.deliberation.budget import Spend
from app.deliberation.calibration import LabelPriors
from app.deliberation.events import EventSink, NullSink, Tee
from app.deliberation.protocol import NoQuorumReachedError, Transcript, deliberate
from app.deliberation.schemas import VerdictAccepted, VerdictOut, VerdictRequest
from app.providers.hub import ProviderHub
from app.security.spend import Reservation, SpendGuard
from app.verdicts import counting
from app.verdicts.failmode import count_fail_open
from app.verdicts.inflight import InFlight, shielded_until
from app.verdicts.preparation import (
    CalibrationSource,
    PreparedVerdict,
    RuleSource,
    VerdictPreparation,
    WeightsSource,
)
from app.verdicts.record.priors import RecordedPriors
from app.verdicts.record.repository import VerdictRepository
from app.verdicts.record.tables import Verdict
from app.verdicts.record.verdict import VerdictRecord
from app.verdicts.record.writer import RecordWriter

logger = logging.getLogger("jury.verdicts")


class VerdictService:
    """Decide and record verdicts: synchronously, queued, or as a worker's claim."""

    def __init__(
        self,
        *,
        config: JuryConfig,
        hub: ProviderHub,
        sessionmaker: SessionMaker,
        settings: Settings,
        weights: WeightsSource | None = None,
        calibration: CalibrationSource | None = None,
        rules: RuleSource | None = None,
        spend: SpendGuard | None = None,
        progress: EventSink | None = None,
    ) -> None:
        self.config = config
        self._hub = hub
        self._sessionmaker = sessionmaker
        self._preparation = VerdictPreparation(
            config=config,
            settings=settings,
            weights=weights,
            calibration=calibration,
            rules=rules,
        )
        self._spend = spend
        # Calibrated judges' content-free priors, measured once and kept in the record.
        self._label_priors = LabelPriors(store=RecordedPriors(sessionmaker))
        # Past its deadline a verdict waits at most this long for its record (see _bound).
        self._record_grace_s = settings.database_timeout_s
        # Every verdict's events also go to the progress log that the SSE stream follows.
        self._progress = progress or NullSink()
        self._in_flight = InFlight()
        # The verdict record's writes, shared among concurrent verdicts' transactions.
        self._writer = RecordWriter(sessionmaker)

    async def decide(
        self,
        request: VerdictRequest,
        *,
        sink: EventSink | None = None,
        api_key_id: int | None = None,
    ) -> VerdictOut:
        """Deliberate on ``request`` and return the recorded verdict.

        ``api_key_id`` is the key that asks: the verdict is its own, and its spend counts
        against that key's daily caps. Raises ``NoQuorumError`` (recorded too) when too few
        jurors give a valid position, ``SpendCapError`` when the key's day is spent, and
        ``UnavailableError`` when the database fails or shutdown interrupts the verdict.
        """
        verdict: VerdictOut | None = None
        with self._in_flight.track():
            bound = self._bound(request)
            with anyio.CancelScope(deadline=bound) as scope:
                prepared = await self._preparation.prepare(request, api_key_id=api_key_id)
                reservation = await self._reserve(api_key_id)
                # Written while round 1 runs; the writer commits it before any of its calls.
                record = self._open(prepared, status="running", sink=self._sink(sink), bound=bound)
                verdict = await self._hear(prepared, record, reservation, bound)
            if scope.cancelled_caught:
                raise _past_bound(request)
        if verdict is None:
            raise UnavailableError(
                "Jury is shutting down: the verdict was interrupted before it was decided "
                "(recorded with status 'interrupted' if it had started)"
            )
        return verdict

    async def submit(
        self, request: VerdictRequest, *, api_key_id: int | None = None
    ) -> VerdictAccepted:
        """Check and record ``request`` as a queued verdict, for a worker to deliberate.

        The checks of ``decide`` that need no model (sizes, panel) answer at once; the spend
        cap is checked when a worker takes the verdict (a refusal is recorded as ``failed``).
        """
        with anyio.move_on_after(self._record_grace_s * 2) as scope:
            prepared = await self._preparation.prepare(request, api_key_id=api_key_id)
            await self._open(prepared, status="queued").written()
        if scope.cancelled_caught:
            raise UnavailableError("database unavailable: the queued verdict was not recorded")
        docket = prepared.docket
        return VerdictAccepted.for_id(docket.verdict_id, created_at=docket.created_at)

    async def decide_claimed(
        self, verdict_id: str, *, worker: str, sink: EventSink | None = None
    ) -> VerdictOut | None:
        """Deliberate a queued verdict that ``worker`` has claimed; record it under the claim.

        Returns None when shutdown interrupts it: the verdict goes back to the queue. Raises
        ``ClaimLostError`` when another worker took it over meanwhile (nothing is recorded by
        this one), and the errors of ``decide`` (recorded as the verdict's outcome).
        """
        async with session_scope(self._sessionmaker) as session:
            row = await VerdictRepository(session).get(verdict_id)
        if row is None:
            raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
        verdict: VerdictOut | None = None  # stays None when shutdown interrupts the verdict
        request = VerdictRequest.model_validate(row.request)
        with self._in_flight.track():
            bound = self._bound(request)
            with anyio.CancelScope(deadline=bound) as scope:
                verdict = await self._decide_claimed(row, worker, self._sink(sink), bound)
            if scope.cancelled_caught:
                raise _past_bound(request)
        # track() swallows shutdown's cancellation: the assignment above may not have happened.
        return verdict

    async def _decide_claimed(
        self, row: Verdict, worker: str, sink: EventSink, bound: float
    ) -> VerdictOut:
        record = VerdictRecord.claimed(self._writer, row.id, worker=worker, sink=sink, bound=bound)
        try:
            prepared = await self._preparation.prepare_queued(row)
            reservation = await self._reserve(row.api_key_id)
        except JuryError as exc:
            await record.refused(exc)
            await sink.publish(events.failed(row.id, detail=exc.detail))
            raise
        return await self._hear(prepared, record, reservation, bound)

    def _open(
        self,
        prepared: PreparedVerdict,
        *,
        status: Literal["queued", "running"],
        sink: EventSink | None = None,
        bound: float = math.inf,
    ) -> VerdictRecord:
        return VerdictRecord.open(
            self._writer,
            docket=prepared.docket,
            request=prepared.request,
            api_key_id=prepared.api_key_id,
            status=status,
            sink=sink,
            bound=bound,
        )

    def _bound(self, request: VerdictRequest) -> float:
        """Return when a verdict must have ended, stored or not: its deadline, then one
        database timeout for the record (a frozen database must not hold the request)."""
        deadline_s = request.deadline_s or self.config.protocol.deadline_s
        return anyio.current_time() + deadline_s + self._record_grace_s

    def _sink(self, sink: EventSink | None) -> EventSink:
        return Tee(sink, self._progress) if sink is not None else self._progress

    async def write_records(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Commit the verdict record as verdicts hand it over, until cancelled (after
        ``shutdown``); without it, each verdict commits its own writes when it waits on them."""
        await self._writer.run(task_status=task_status)

    def close(self) -> None:
        """Release the record writer's connections (after ``shutdown``)."""
        self._writer.close()

    async def shutdown(self, grace_s: float) -> int:
        """Let in-flight verdicts finish for ``grace_s``, then interrupt the rest."""
        interrupted = await self._in_flight.drain(grace_s)
        if interrupted:
            logger.warning("shutdown interrupted %d verdict(s) in progress", interrupted)
        return interrupted

    async def _hear(
        self,
        prepared: PreparedVerdict,
        record: VerdictRecord,
        reservation: Reservation | None,
        bound: float,
    ) -> VerdictOut:
        """Deliberate and record the verdict.

        The spend is reserved before the verdict is recorded: a refused request leaves no row.
        The record's writes are shielded from shutdown, not from ``bound`` (see ``_bound``).
        """
        docket = prepared.docket
        try:
            started = time.perf_counter()
            transcript = await self._deliberate(prepared, record, bound)
            specs = {spec.name: spec for spec in self.config.models()}
            verdict = assemble(
                docket, transcript, specs, latency_ms=(time.perf_counter() - started) * 1000
            )
            # Shielded: a verdict whose transcript is complete is stored, shutdown or not.
            with shielded_until(bound):
                await record.completed(verdict)
        finally:
            with anyio.CancelScope(shield=True, deadline=bound):
                await self._settle(reservation, record.calls.spent)
        sink = record.calls.sink
        counting.count_verdict(verdict, counting.category_label(self.config, docket.category))
        await sink.publish(
            events.verdict_reached(
                verdict.id, position=verdict.verdict, confidence=verdict.confidence
            )
        )
        return verdict

    async def _reserve(self, api_key_id: int | None) -> Reservation | None:
        if self._spend is None:
            return None
        return await self._spend.reserve(api_key_id)

    async def _settle(self, reservation: Reservation | None, spent: Spend) -> None:
        if self._spend is None or reservation is None:
            return
        try:
            await self._spend.settle(reservation, spent)
        except (UnavailableError, DatabaseError) as exc:
            # The reserve stays counted: the cap errs on the side of spending less.
            logger.warning("spend of key %s not settled: %s", reservation.key_id, exc.detail)

    async def _deliberate(
        self, prepared: PreparedVerdict, record: VerdictRecord, bound: float
    ) -> Transcript:
        hearing = prepared.hearing
        try:
            if len(hearing.jurors) < hearing.quorum:
                raise NoQuorumReachedError(Transcript(), len(hearing.jurors), hearing.quorum)
            transcript = await deliberate(self._hub, hearing, record.calls, self._label_priors)
            # Every call on record before the outcome is decided (a failed write fails here).
            await record.written()
            return transcript
        except NoQuorumReachedError as exc:
            raise await self._record_no_quorum(prepared, exc, record) from None
        except BaseException as exc:
            with shielded_until(bound):
                detail = await record.ended_early(exc)
                if detail is not None:
                    await record.calls.sink.publish(
                        events.failed(prepared.verdict_id, detail=detail)
                    )
            # A failed write inside a round's task group arrives wrapped: answer with the
            # Jury error itself (a 503 for a database fault), not a 500 for the group.
            error = _jury_error_in(exc)
            if error is not None:
                raise error from exc
            raise

    async def _record_no_quorum(
        self,
        prepared: PreparedVerdict,
        exc: NoQuorumReachedError,
        record: VerdictRecord,
    ) -> NoQuorumError:
        docket = prepared.docket
        error = await record.no_quorum(docket, exc)
        counting.count_no_quorum(
            docket.panel, counting.category_label(self.config, docket.category)
        )
        count_fail_open(self.config, docket.category, docket.panel, docket.options)
        await record.calls.sink.publish(
            events.no_quorum(docket.verdict_id, valid=exc.valid, quorum=exc.quorum)
        )
        return error


def _past_bound(request: VerdictRequest) -> UnavailableError:
    return UnavailableError(
        "database unavailable: the verdict could not be recorded within its deadline",
        deadline_s=request.deadline_s,
    )


def _jury_error_in(exc: BaseException) -> JuryError | None:
    """Return the Jury error an exception group carries, if that is all it carries."""
    if not isinstance(exc, BaseExceptionGroup):
        return None
    matched, rest = exc.split(JuryError)
    if matched is None or rest is not None:
        return None
    leaves: list[BaseException] = list(matched.exceptions)
    while leaves and isinstance(leaves[0], BaseExceptionGroup):
        leaves = list(leaves[0].exceptions)
    first = leaves[0] if leaves else None
    return first if isinstance(first, JuryError) else None
