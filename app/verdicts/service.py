"""The verdict service: seat the panel, deliberate, record, answer.

The API, the CLI and the evaluation harness all decide verdicts through ``VerdictService``.
"""

from __future__ import annotations

import builtins
import logging
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from app.core import metrics
from app.core.config import JuryConfig, ModelSpec, Panel
from app.core.db import SessionMaker, session_scope
from app.core.errors import (
    InvalidRequestError,
    JuryError,
    NoQuorumError,
    NotFoundError,
    PayloadTooLargeError,
    UnavailableError,
)
from app.core.settings import Settings
from app.deliberation.assembly import ConfidenceMap, Docket, assemble
from app.deliberation.budget import RoundBudget, Spend
from app.deliberation.events import Event, EventSink, NullSink, Tee
from app.deliberation.prompts import Case
from app.deliberation.protocol import Hearing, NoQuorumReachedError, Transcript, deliberate
from app.deliberation.schemas import (
    VerdictAccepted,
    VerdictIncomplete,
    VerdictOut,
    VerdictPage,
    VerdictRequest,
    VerdictSummary,
)
from app.providers.hub import ProviderHub
from app.security.spend import Reservation, SpendGuard
from app.verdicts.inflight import InFlight
from app.verdicts.record.calls import CallRecorder
from app.verdicts.record.repository import (
    VerdictRepository,
)
from app.verdicts.record.tables import Verdict
from app.verdicts.record.verdict import VerdictRecord, new_row
from app.verdicts.record.writer import RecordWriter

logger = logging.getLogger("jury.verdicts")


class WeightsSource(Protocol):
    """Where the weighted vote takes its approved juror weights from."""

    async def active(self, category: str) -> tuple[int | None, Mapping[str, float]]:
        """Return the active weights version and the juror weights for a category."""
        ...


class CalibrationSource(Protocol):
    """Where the verdict confidence takes its approved calibration map from."""

    async def calibration(
        self, category: str, *, version: int | None, judge: ModelSpec
    ) -> ConfidenceMap | None:
        """Return the map of a weights version for a category and judge, or None."""
        ...


class NeutralWeights:
    """Every juror weighs the same: the state before any weights are approved."""

    async def active(self, category: str) -> tuple[int | None, Mapping[str, float]]:
        """Return no version and no weights (neutral)."""
        return None, {}


class VerdictService:
    """Decide, record and read back verdicts."""

    def __init__(
        self,
        *,
        config: JuryConfig,
        hub: ProviderHub,
        sessionmaker: SessionMaker,
        settings: Settings,
        weights: WeightsSource | None = None,
        calibration: CalibrationSource | None = None,
        spend: SpendGuard | None = None,
        progress: EventSink | None = None,
    ) -> None:
        self.config = config
        self._hub = hub
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._weights = weights or NeutralWeights()
        self._calibration = calibration
        self._spend = spend
        # Every verdict's events also go to the progress log that the SSE stream follows.
        self._progress = progress or NullSink()
        self._in_flight = InFlight()
        # The verdict record's writes, shared among concurrent verdicts' transactions.
        self._writer = RecordWriter(sessionmaker)
        self._record = VerdictRecord(self._writer)

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
            docket, hearing = await self._prepare(request)
            reservation = await self._reserve(api_key_id)
            verdict = await self._hear(
                docket, hearing, request, self._sink(sink), reservation, api_key_id
            )
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
        docket, _hearing = await self._prepare(request)
        await self._record.create(docket, request, api_key_id, status="queued")
        return VerdictAccepted.for_id(docket.verdict_id, created_at=docket.created_at)

    async def decide_claimed(
        self, verdict_id: str, *, worker: str, sink: EventSink | None = None
    ) -> VerdictOut | None:
        """Deliberate a queued verdict that ``worker`` has claimed; record it under the claim.

        Returns None when shutdown interrupts it: the verdict goes back to the queue. Raises
        ``ClaimLostError`` when another worker took it over meanwhile (nothing is recorded by
        this one), and the errors of ``decide`` (recorded as the verdict's outcome).
        """
        events = self._sink(sink)
        async with session_scope(self._sessionmaker) as session:
            row = await VerdictRepository(session).get(verdict_id)
        if row is None:
            raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
        verdict: VerdictOut | None = None  # stays None when shutdown interrupts the verdict
        with self._in_flight.track():
            verdict = await self._decide_claimed(row, worker, events)
        # track() swallows shutdown's cancellation: the assignment above may not have happened.
        return verdict  # noqa: RET504

    async def _decide_claimed(self, row: Verdict, worker: str, events: EventSink) -> VerdictOut:
        request = VerdictRequest.model_validate(row.request)
        try:
            docket, hearing = await self._prepare(
                request, verdict_id=row.id, created_at=row.created_at
            )
            reservation = await self._reserve(row.api_key_id)
        except JuryError as exc:
            await self._record.finish(row.id, worker, status="failed", error=exc.body())
            await events.publish(Event(type="failed", verdict_id=row.id, detail=exc.detail))
            raise
        return await self._hear(
            docket, hearing, request, events, reservation, row.api_key_id, claim=worker
        )

    async def count_queued(self) -> int:
        """Return how many asynchronous verdicts wait for a worker."""
        async with session_scope(self._sessionmaker) as session:
            return await VerdictRepository(session).count_queued()

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
        docket: Docket,
        hearing: Hearing,
        request: VerdictRequest,
        sink: EventSink,
        reservation: Reservation | None,
        api_key_id: int | None,
        *,
        claim: str | None = None,
    ) -> VerdictOut:
        """Deliberate and record; ``claim``: the worker whose claimed row this is, else a new row.

        The spend is reserved before the verdict is recorded: a refused request leaves no row.
        """
        recorder = CallRecorder(self._writer, docket.verdict_id, sink)
        try:
            if claim is None:
                # Written while round 1 runs; the writer commits it before any of its calls.
                recorder.open(new_row(docket, request, api_key_id, status="running"))
            started = time.perf_counter()
            transcript = await self._deliberate(docket, hearing, recorder, claim)
            specs = {spec.name: spec for spec in self.config.models()}
            verdict = assemble(
                docket, transcript, specs, latency_ms=(time.perf_counter() - started) * 1000
            )
            # Shielded: a verdict whose transcript is complete is stored, shutdown or not.
            with anyio.CancelScope(shield=True):
                await self._record.completed(verdict, claim, recorder)
        finally:
            with anyio.CancelScope(shield=True):
                await self._settle(reservation, recorder.spent)
        _count_verdict(verdict, self._metric_category(request.category))
        await sink.publish(
            Event(
                type="verdict",
                verdict_id=verdict.id,
                position=verdict.verdict,
                confidence=verdict.confidence,
            )
        )
        return verdict

    async def _prepare(
        self,
        request: VerdictRequest,
        *,
        verdict_id: str | None = None,
        created_at: datetime | None = None,
    ) -> tuple[Docket, Hearing]:
        """Check the request, seat the panel and read the trust settings in force."""
        self._check_sizes(request)
        panel_name, panel = self._panel(request.panel)
        jurors, recused = self._seat(panel, request)
        judge = self.config.judge_for(panel)
        judge_recused = _recused(judge, request)
        version, weights = await self._weights.active(request.category)
        calibration = None
        if self._calibration is not None:
            calibration = await self._calibration.calibration(
                request.category, version=version, judge=judge
            )
        docket = Docket(
            verdict_id=verdict_id or str(uuid.uuid4()),
            created_at=created_at or datetime.now(UTC),
            question=request.question,
            options=tuple(request.options or self.config.protocol.default_options),
            category=request.category,
            panel=panel_name,
            judge=judge,
            judge_recused=judge_recused,
            recused=tuple(recused),
            policy=self.config.policy(request.category),
            weights=weights,
            weights_version=version,
            metadata=request.metadata,
            calibration=calibration,
        )
        hearing = self._hearing(request, panel, jurors, None if judge_recused else judge, docket)
        return docket, hearing

    async def _reserve(self, api_key_id: int | None) -> Reservation | None:
        if self._spend is None:
            return None
        return await self._spend.reserve(api_key_id)

    async def _settle(self, reservation: Reservation | None, spent: Spend) -> None:
        if self._spend is None or reservation is None:
            return
        try:
            await self._spend.settle(reservation, spent)
        except UnavailableError as exc:
            # The reserve stays counted: the cap errs on the side of spending less.
            logger.warning("spend of key %s not settled: %s", reservation.key_id, exc.detail)

    async def get(
        self, verdict_id: str, *, owner: int | None = None
    ) -> VerdictOut | VerdictIncomplete:
        """Return a recorded verdict with its whole transcript.

        ``owner``: only a verdict asked with that API key is found (others are 404, so that
        an agent cannot learn which ids exist).
        """
        async with session_scope(self._sessionmaker) as session:
            repository = VerdictRepository(session)
            row = await repository.get(verdict_id)
            if row is None or (owner is not None and row.api_key_id != owner):
                raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
            if row.status == "completed" and row.response is not None:
                return VerdictOut.model_validate(row.response)
            calls = await repository.calls(verdict_id)
        return VerdictIncomplete.from_row(row, calls)

    async def ensure_visible(self, verdict_id: str, *, owner: int | None) -> None:
        """Raise ``NotFoundError`` unless the verdict exists and ``owner`` (if any) asked it."""
        if owner is None:
            return
        async with session_scope(self._sessionmaker) as session:
            row = await VerdictRepository(session).get(verdict_id)
        if row is None or row.api_key_id != owner:
            raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)

    async def list(
        self,
        *,
        category: str | None = None,
        verdict: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        owner: int | None = None,
    ) -> VerdictPage:
        """Return one page of recorded verdicts, newest first (``owner``: that key's only)."""
        async with session_scope(self._sessionmaker) as session:
            rows, total = await VerdictRepository(session).page(
                owner=owner,
                category=category,
                verdict=verdict,
                status=status,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
        items = [VerdictSummary.model_validate(row, from_attributes=True) for row in rows]
        return VerdictPage(items=items, total=total, limit=limit, offset=offset)

    def _check_sizes(self, request: VerdictRequest) -> None:
        limits = (
            ("question", request.question, self._settings.max_question_chars),
            ("context", request.context or "", self._settings.max_context_chars),
        )
        for field, value, limit in limits:
            if len(value) > limit:
                raise PayloadTooLargeError(
                    f"{field} is {len(value)} characters; the limit is {limit}",
                    field=field,
                    limit=limit,
                )

    def _panel(self, name: str | None) -> tuple[str, Panel]:
        panel_name = name or self.config.default_panel
        panel = self.config.panels.get(panel_name)
        if panel is None:
            known = ", ".join(sorted(self.config.panels))
            raise InvalidRequestError(
                f"unknown panel '{panel_name}' (known: {known})", field="panel"
            )
        return panel_name, panel

    def _seat(
        self, panel: Panel, request: VerdictRequest
    ) -> tuple[builtins.list[ModelSpec], builtins.list[str]]:
        """Return the sitting jurors and the names of those recused from this verdict."""
        members = [self.config.juror(name) for name in panel.jurors]
        recused = [m.name for m in members if _recused(m, request)]
        return [m for m in members if m.name not in recused], recused

    def _hearing(
        self,
        request: VerdictRequest,
        panel: Panel,
        jurors: Sequence[ModelSpec],
        judge: ModelSpec | None,
        docket: Docket,
    ) -> Hearing:
        deadline_s = request.deadline_s or self.config.protocol.deadline_s
        return Hearing(
            case=Case(
                question=request.question,
                options=docket.options,
                context=request.context,
                nonce=secrets.token_hex(6),
            ),
            jurors=tuple(jurors),
            judge=judge,
            max_rounds=request.max_rounds or self.config.max_rounds(panel),
            quorum=self.config.quorum(panel),
            early_stop=self.config.protocol.early_stop == "unanimous",
            deadline=anyio.current_time() + deadline_s,
            seed=docket.verdict_id,
            budget=self._round_budget(),
        )

    def _round_budget(self) -> RoundBudget | None:
        budgets = self.config.budgets
        if budgets.per_verdict_tokens is None and budgets.per_verdict_usd is None:
            return None
        return RoundBudget(tokens=budgets.per_verdict_tokens, usd=budgets.per_verdict_usd)

    async def _deliberate(
        self, docket: Docket, hearing: Hearing, recorder: CallRecorder, claim: str | None
    ) -> Transcript:
        try:
            if len(hearing.jurors) < hearing.quorum:
                raise NoQuorumReachedError(Transcript(), len(hearing.jurors), hearing.quorum)
            transcript = await deliberate(self._hub, hearing, recorder)
            # Every call on record before the outcome is decided (a failed write fails here).
            await recorder.flush()
            return transcript
        except NoQuorumReachedError as exc:
            raise await self._record_no_quorum(docket, exc, recorder, claim) from None
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                status = await self._record.ended_early(docket.verdict_id, exc, recorder, claim)
                if status is not None:
                    await recorder.sink.publish(
                        Event(type="failed", verdict_id=docket.verdict_id, detail=status)
                    )
            # A failed write inside a round's task group arrives wrapped: answer with the
            # Jury error itself (a 503 for a database fault), not a 500 for the group.
            error = _jury_error_in(exc)
            if error is not None:
                raise error from exc
            raise

    async def _record_no_quorum(
        self, docket: Docket, exc: NoQuorumReachedError, recorder: CallRecorder, claim: str | None
    ) -> NoQuorumError:
        error = await self._record.no_quorum(docket, exc, recorder, claim)
        metrics.QUORUM_FAILURES.labels(docket.panel).inc()
        metrics.VERDICTS.labels(
            "no_quorum", self._metric_category(docket.category), docket.panel
        ).inc()
        await recorder.sink.publish(
            Event(type="no_quorum", verdict_id=docket.verdict_id, detail=str(exc))
        )
        return error

    def _metric_category(self, category: str) -> str:
        """Return a bounded label: configured categories by name, the rest as 'other'."""
        return category if category in self.config.categories else "other"


def _recused(spec: ModelSpec, request: VerdictRequest) -> bool:
    """Return whether a model produced the judged content (or was excluded by the caller)."""
    names = {value.strip().casefold() for value in (*request.exclude_models, *request.authored_by)}
    model = spec.model.casefold()
    return bool(names & {spec.name.casefold(), model, model.split("/", 1)[-1]})


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


def _count_verdict(verdict: VerdictOut, category: str) -> None:
    metrics.VERDICTS.labels("completed", category, verdict.panel).inc()
    metrics.VERDICT_LATENCY.labels(verdict.panel).observe(verdict.latency_ms / 1000)
    metrics.ROUNDS.labels(verdict.panel).observe(len(verdict.rounds))
    if verdict.judge.fallback:
        metrics.JUDGE_FALLBACKS.labels(verdict.panel).inc()
