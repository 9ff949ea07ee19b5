"""The verdict service: seat the panel, deliberate, record, answer.

The API, the CLI and the evaluation harness all decide verdicts through ``VerdictService``.
"""

from __future__ import annotations

import builtins
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from app.core import metrics
from app.core.config import JuryConfig, ModelSpec, Panel
from app.core.db import SessionMaker, session_scope
from app.core.errors import (
    InvalidRequestError,
    NoQuorumError,
    NotFoundError,
    PayloadTooLargeError,
)
from app.core.settings import Settings
from app.deliberation.assembly import ConfidenceMap, Docket, assemble, rounds_out
from app.deliberation.events import Event, EventSink, NullSink
from app.deliberation.models import Verdict
from app.deliberation.prompts import Case
from app.deliberation.protocol import Hearing, NoQuorumReachedError, Transcript, deliberate
from app.deliberation.recorder import CallRecorder
from app.deliberation.repository import VerdictRepository
from app.deliberation.schemas import (
    VerdictIncomplete,
    VerdictOut,
    VerdictPage,
    VerdictRequest,
    VerdictSummary,
)
from app.providers.hub import ProviderHub


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
    ) -> None:
        self.config = config
        self._hub = hub
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._weights = weights or NeutralWeights()
        self._calibration = calibration

    async def decide(self, request: VerdictRequest, *, sink: EventSink | None = None) -> VerdictOut:
        """Deliberate on ``request`` and return the recorded verdict.

        Raises ``NoQuorumError`` (recorded too) when too few jurors give a valid position.
        """
        sink = sink or NullSink()
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
        options = tuple(request.options or self.config.protocol.default_options)
        docket = Docket(
            verdict_id=str(uuid.uuid4()),
            created_at=datetime.now(UTC),
            question=request.question,
            options=options,
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
        await self._insert_running(docket, request)
        started = time.perf_counter()
        transcript = await self._deliberate(docket, hearing, sink)
        specs = {spec.name: spec for spec in self.config.models()}
        verdict = assemble(
            docket, transcript, specs, latency_ms=(time.perf_counter() - started) * 1000
        )
        await self._record_completed(verdict)
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

    async def get(self, verdict_id: str) -> VerdictOut | VerdictIncomplete:
        """Return a recorded verdict with its whole transcript."""
        async with session_scope(self._sessionmaker) as session:
            repository = VerdictRepository(session)
            row = await repository.get(verdict_id)
            if row is None:
                raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
            if row.status == "completed" and row.response is not None:
                return VerdictOut.model_validate(row.response)
            calls = await repository.calls(verdict_id)
        return VerdictIncomplete.from_row(row, calls)

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
    ) -> VerdictPage:
        """Return one page of recorded verdicts, newest first."""
        async with session_scope(self._sessionmaker) as session:
            rows, total = await VerdictRepository(session).page(
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
        )

    async def _deliberate(self, docket: Docket, hearing: Hearing, sink: EventSink) -> Transcript:
        recorder = CallRecorder(self._sessionmaker, docket.verdict_id, sink)
        try:
            if len(hearing.jurors) < hearing.quorum:
                raise NoQuorumReachedError(Transcript(), len(hearing.jurors), hearing.quorum)
            return await deliberate(self._hub, hearing, recorder)
        except NoQuorumReachedError as exc:
            raise await self._record_no_quorum(docket, exc, sink) from None
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                status = "failed" if isinstance(exc, Exception) else "interrupted"
                await self._finish(docket.verdict_id, status=status, error={"detail": repr(exc)})
            raise

    async def _insert_running(self, docket: Docket, request: VerdictRequest) -> None:
        row = Verdict(
            id=docket.verdict_id,
            created_at=docket.created_at,
            status="running",
            question=request.question,
            context=request.context,
            options=list(docket.options),
            category=request.category,
            panel=docket.panel,
            request=request.model_dump(mode="json"),
            caller_metadata=request.metadata,
            weights_version=docket.weights_version,
        )
        async with session_scope(self._sessionmaker) as session:
            await VerdictRepository(session).add(row)

    async def _record_completed(self, verdict: VerdictOut) -> None:
        await self._finish(
            verdict.id,
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

    async def _record_no_quorum(
        self, docket: Docket, exc: NoQuorumReachedError, sink: EventSink
    ) -> NoQuorumError:
        rounds = rounds_out(exc.transcript)
        positions = [p.model_dump(mode="json") for r in rounds for p in r.positions]
        body: dict[str, Any] = {
            "id": docket.verdict_id,
            "valid": exc.valid,
            "quorum": exc.quorum,
            "positions": positions,
            "recused": list(docket.recused),
        }
        await self._finish(docket.verdict_id, status="no_quorum", error=body)
        metrics.QUORUM_FAILURES.labels(docket.panel).inc()
        metrics.VERDICTS.labels(
            "no_quorum", self._metric_category(docket.category), docket.panel
        ).inc()
        await sink.publish(Event(type="no_quorum", verdict_id=docket.verdict_id, detail=str(exc)))
        detail = f"only {exc.valid} juror(s) gave a valid position; the quorum is {exc.quorum}"
        return NoQuorumError(detail, **body)

    async def _finish(self, verdict_id: str, **values: Any) -> None:
        async with session_scope(self._sessionmaker) as session:
            await VerdictRepository(session).update(
                verdict_id, finished_at=datetime.now(UTC), **values
            )

    def _metric_category(self, category: str) -> str:
        """Return a bounded label: configured categories by name, the rest as 'other'."""
        return category if category in self.config.categories else "other"


def _recused(spec: ModelSpec, request: VerdictRequest) -> bool:
    """Return whether a model produced the judged content (or was excluded by the caller)."""
    names = {value.strip().casefold() for value in (*request.exclude_models, *request.authored_by)}
    model = spec.model.casefold()
    return bool(names & {spec.name.casefold(), model, model.split("/", 1)[-1]})


def _count_verdict(verdict: VerdictOut, category: str) -> None:
    metrics.VERDICTS.labels("completed", category, verdict.panel).inc()
    metrics.VERDICT_LATENCY.labels(verdict.panel).observe(verdict.latency_ms / 1000)
    metrics.ROUNDS.labels(verdict.panel).observe(len(verdict.rounds))
    if verdict.judge.fallback:
        metrics.JUDGE_FALLBACKS.labels(verdict.panel).inc()
