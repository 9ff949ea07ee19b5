"""Request preparation: check a verdict request, seat its panel, read the trust settings.

``VerdictPreparation.prepare`` turns one ``VerdictRequest`` into one ``PreparedVerdict``: what
is recorded about the verdict (its ``Docket``), what the protocol needs to run it (its
``Hearing``), the request itself and the API key that asks. The use cases take that one object
from here on.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.core.clock import Deadline, utcnow
from app.core.config import JuryConfig, ModelSpec, Panel
from app.core.errors import InvalidRequestError, PayloadTooLargeError
from app.core.settings import Settings
from app.deliberation.assembly import ConfidenceMap, Docket, RiskBound
from app.deliberation.budget import RoundBudget
from app.deliberation.prompts import Case
from app.deliberation.protocol import Hearing
from app.deliberation.schemas import VerdictRequest, VerdictSource
from app.deliberation.sequential import SequentialPlan, convening_order
from app.providers.pricing import call_cost
from app.security.redaction import redacted_kinds, screen
from app.verdicts.record.tables import Verdict


class WeightsSource(Protocol):
    """Where the weighted vote takes its approved juror weights from."""

    async def active(self, category: str) -> tuple[int | None, Mapping[str, float]]:
        """Return the active weights version and the juror weights for a category."""
        ...


class CalibrationSource(Protocol):
    """Where the verdict confidence takes its approved calibration map from."""

    async def calibration(
        self, category: str, *, version: int | None, judge: ModelSpec | None
    ) -> ConfidenceMap | None:
        """Return the map of a weights version for a category and judge (None: no judge)."""
        ...


class RuleSource(Protocol):
    """Where a verdict takes its category's approved verdict source and risk threshold from."""

    async def rule(self, category: str, *, version: int | None) -> tuple[VerdictSource, RiskBound]:
        """Return the verdict source and the risk bound of a weights version for a category."""
        ...


class NeutralWeights:
    """Every juror weighs the same: the state before any weights are approved."""

    async def active(self, category: str) -> tuple[int | None, Mapping[str, float]]:
        """Return no version and no weights (neutral)."""
        return None, {}


@dataclass(frozen=True, slots=True)
class PreparedVerdict:
    """One verdict request, checked and seated: all a verdict needs before its first call."""

    request: VerdictRequest
    docket: Docket
    hearing: Hearing
    api_key_id: int | None

    @property
    def verdict_id(self) -> str:
        """Return the verdict's id."""
        return self.docket.verdict_id


class VerdictPreparation:
    """Prepare verdict requests under the process's config, limits and trust settings."""

    def __init__(
        self,
        *,
        config: JuryConfig,
        settings: Settings,
        weights: WeightsSource | None = None,
        calibration: CalibrationSource | None = None,
        rules: RuleSource | None = None,
    ) -> None:
        self._config = config
        self._settings = settings
        self._weights = weights or NeutralWeights()
        self._calibration = calibration
        self._rules = rules

    async def prepare(
        self,
        request: VerdictRequest,
        *,
        api_key_id: int | None,
        verdict_id: str | None = None,
        created_at: datetime | None = None,
    ) -> PreparedVerdict:
        """Check the request, seat the panel and read the trust settings in force.

        Secrets in the input are redacted first (``app.security.redaction``): the prepared
        request, the one recorded and deliberated, holds only their placeholders.

        Raises ``PayloadTooLargeError`` for an oversized field, ``InvalidRequestError``
        for an unknown panel and ``SecretInInputError`` for a secret its category refuses.
        """
        request = screen(request, self._config.policy(request.category))
        self._check_sizes(request)
        panel_name, panel = self._panel(request.panel)
        jurors, recused = self._seat(panel, request)
        judge = self._config.judge_for(panel)
        judge_recused = judge is not None and recused_from(judge, request)
        version, weights = await self._weights.active(request.category)
        source, risk = await self._rule_of(request.category, version)
        docket = Docket(
            verdict_id=verdict_id or str(uuid.uuid4()),
            created_at=created_at or utcnow(),
            question=request.question,
            options=tuple(request.options or self._config.protocol.default_options),
            category=request.category,
            panel=panel_name,
            judge=judge,
            judge_recused=judge_recused,
            recused=tuple(recused),
            policy=self._config.policy(request.category),
            weights=weights,
            weights_version=version,
            metadata=request.metadata,
            calibration=await self._calibration_of(request.category, version, judge),
            verdict_source=source,
            risk=risk,
            action=request.action,
            redacted=tuple(redacted_kinds(request)),
        )
        hearing = self._hearing(request, panel, jurors, None if judge_recused else judge, docket)
        return PreparedVerdict(
            request=request, docket=docket, hearing=hearing, api_key_id=api_key_id
        )

    async def prepare_queued(self, row: Verdict) -> PreparedVerdict:
        """Prepare a queued verdict from its recorded row, under its own id and key."""
        return await self.prepare(
            VerdictRequest.model_validate(row.request),
            api_key_id=row.api_key_id,
            verdict_id=row.id,
            created_at=row.created_at,
        )

    async def _rule_of(self, category: str, version: int | None) -> tuple[VerdictSource, RiskBound]:
        """Return the category's approved source and risk bound (config alpha/delta without)."""
        if self._rules is not None:
            return await self._rules.rule(category, version=version)
        policy = self._config.policy(category)
        return "judge", RiskBound(alpha=policy.risk_alpha, delta=policy.risk_delta)

    async def _calibration_of(
        self, category: str, version: int | None, judge: ModelSpec | None
    ) -> ConfidenceMap | None:
        if self._calibration is None:
            return None
        return await self._calibration.calibration(category, version=version, judge=judge)

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
        panel_name = name or self._config.default_panel
        panel = self._config.panels.get(panel_name)
        if panel is None:
            known = ", ".join(sorted(self._config.panels))
            raise InvalidRequestError(
                f"unknown panel '{panel_name}' (known: {known})", field="panel"
            )
        return panel_name, panel

    def _seat(self, panel: Panel, request: VerdictRequest) -> tuple[list[ModelSpec], list[str]]:
        """Return the sitting jurors and the names of those recused from this verdict."""
        members = [self._config.juror(name) for name in panel.jurors]
        recused = [m.name for m in members if recused_from(m, request)]
        return [m for m in members if m.name not in recused], recused

    def _hearing(
        self,
        request: VerdictRequest,
        panel: Panel,
        jurors: Sequence[ModelSpec],
        judge: ModelSpec | None,
        docket: Docket,
    ) -> Hearing:
        return Hearing(
            case=Case(
                question=request.question,
                options=docket.options,
                context=request.context,
                nonce=secrets.token_hex(6),
                metadata=request.metadata,
                action=request.action.rendered() if request.action is not None else None,
            ),
            jurors=tuple(jurors),
            judge=judge,
            max_rounds=request.max_rounds or self._config.max_rounds(panel),
            quorum=self._config.quorum(panel),
            early_stop=self._config.protocol.early_stop == "unanimous",
            deadline=Deadline.after(deadline_s(request, self._config)),
            seed=docket.verdict_id,
            budget=self._round_budget(),
            sequential=sequential_plan(jurors, docket),
        )

    def _round_budget(self) -> RoundBudget | None:
        budgets = self._config.budgets
        if budgets.per_verdict_tokens is None and budgets.per_verdict_usd is None:
            return None
        return RoundBudget(tokens=budgets.per_verdict_tokens, usd=budgets.per_verdict_usd)


def sequential_plan(jurors: Sequence[ModelSpec], docket: Docket) -> SequentialPlan | None:
    """Return how a sequential verdict convenes its jurors (None: its category sits them all).

    The stop target is the category's approved guaranteed-risk threshold where one exists and
    it is the higher bar: the confidence from which its verdicts are trusted without a human.
    It never lowers the policy's target: the threshold was chosen on whole-panel confidences
    (a threshold of 0 covers every whole-panel verdict), and would stop a partial panel on a
    tie. Reusing it for a partial panel's posterior is a consistent bar, not a carried-over
    guarantee.
    """
    policy = docket.policy
    if not policy.sequential:
        return None
    threshold = docket.risk.threshold if docket.risk is not None else None
    from_risk = threshold is not None and threshold > policy.sequential_target
    costs = {juror.name: call_cost(juror) for juror in jurors}
    return SequentialPlan(
        order=convening_order([juror.name for juror in jurors], costs, docket.weights),
        weights=docket.weights,
        target=threshold if from_risk and threshold is not None else policy.sequential_target,
        target_source="risk" if from_risk else "policy",
    )


def deadline_s(request: VerdictRequest, config: JuryConfig) -> float:
    """Return a verdict's overall time budget: the request's, else the config's."""
    return request.deadline_s or config.protocol.deadline_s


def recused_from(spec: ModelSpec, request: VerdictRequest) -> bool:
    """Return whether a model produced the judged content (or was excluded by the caller)."""
    names = {value.strip().casefold() for value in (*request.exclude_models, *request.authored_by)}
    model = spec.model.casefold()
    return bool(names & {spec.name.casefold(), model, model.split("/", 1)[-1]})
