"""The trust settings in force, as verdicts see them: weights after the drift guard, and maps.

``TrustSource`` is what ``VerdictService`` reads before each verdict (it implements both its
``WeightsSource`` and ``CalibrationSource`` protocols).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.clock import Monotonic, monotonic
from app.core.config import NO_JUDGE, JuryConfig, ModelSpec
from app.core.db import SessionMaker, session_scope
from app.core.errors import DatabaseError, UnavailableError
from app.deliberation.assembly import RiskBound
from app.deliberation.schemas import VerdictSource
from app.deliberation.vote import ALL_CATEGORIES, WeightsTable, weight_for
from app.trust.calibration import CalibrationMap
from app.trust.repository import ActiveState, TrustRepository
from app.trust.weights import DriftResult, DroppedWeights, drop_drifted

logger = logging.getLogger("jury.trust")


def juror_models(config: JuryConfig) -> dict[str, str]:
    """Return the configured model id of every juror."""
    return {spec.name: spec.model for spec in config.jurors}


def judge_models(config: JuryConfig) -> dict[str, str]:
    """Return the configured model id of every judge ("none" too, for judge-less panels)."""
    models = {spec.name: spec.model for spec in config.judges}
    if any(panel.judge == NO_JUDGE for panel in config.panels.values()):
        # A judge-less panel's verdict confidence is the vote's, calibrated under "none".
        models[NO_JUDGE] = NO_JUDGE
    return models


def judge_identity(judge: ModelSpec | None) -> tuple[str, str]:
    """Return the (name, model) a verdict confidence is calibrated under."""
    return (judge.name, judge.model) if judge is not None else (NO_JUDGE, NO_JUDGE)


@dataclass(frozen=True, slots=True)
class Effective:
    """The active version's weights that still apply, and the maps, under the config."""

    version: int | None
    weights: dict[str, dict[str, float]]
    models: dict[str, str]
    dropped: tuple[DroppedWeights, ...]
    calibration: dict[str, CalibrationMap]
    calibration_models: dict[str, str]
    # {category: {"rule", "verdict_source", "risk"}}: the rules chosen by evidence.
    rules: dict[str, Any] = field(default_factory=dict)


def effective(state: ActiveState, config: JuryConfig) -> Effective:
    """Apply the drift guard: weights learned for another model id do not carry over."""
    row = state.version
    if row is None:
        return Effective(None, {}, {}, (), {}, {})
    guarded: DriftResult = drop_drifted(
        row.weights, recorded_models=row.models, current_models=juror_models(config)
    )
    return Effective(
        version=row.version,
        weights=guarded.table,
        models=dict(row.models),
        dropped=guarded.dropped,
        calibration=maps_of(row.calibration),
        calibration_models=dict(row.calibration_models),
        rules=dict(row.rules),
    )


def maps_of(stored: Mapping[str, object]) -> dict[str, CalibrationMap]:
    """Validate stored calibration maps."""
    return {category: CalibrationMap.model_validate(m) for category, m in stored.items()}


def resolve(table: WeightsTable, category: str) -> dict[str, float]:
    """Return every juror's weight in a category (category, then "*"; others neutral)."""
    names = {juror for weights in table.values() for juror in weights}
    return {name: weight_for(table, category, name) for name in sorted(names)}


def calibration_for(
    current: Effective, category: str, judge: ModelSpec | None
) -> CalibrationMap | None:
    """Return the category's map (or the "*" one) when it was fitted for this judge model."""
    name, model = judge_identity(judge)
    if current.calibration_models.get(name) != model:
        return None
    return current.calibration.get(category) or current.calibration.get(ALL_CATEGORIES)


def rule_for(
    current: Effective, category: str, config: JuryConfig
) -> tuple[VerdictSource, RiskBound]:
    """Return a category's approved verdict source and risk threshold (or "*"'s, or none).

    Alpha and delta are the config's; a threshold approved for other values does not apply.
    """
    policy = config.policy(category)
    rule = current.rules.get(category) or current.rules.get(ALL_CATEGORIES) or {}
    source: VerdictSource = (
        "weighted_vote" if rule.get("verdict_source") == "weighted_vote" else "judge"
    )
    risk = rule.get("risk") or {}
    same = risk.get("alpha") == policy.risk_alpha and risk.get("delta") == policy.risk_delta
    return source, RiskBound(
        alpha=policy.risk_alpha,
        delta=policy.risk_delta,
        threshold=risk.get("threshold") if same else None,
        n=int(risk.get("n", 0)) if same else 0,
    )


class TrustSource:
    """Read the active weights and calibration for each verdict, reused for ``cache_s``.

    Every verdict needs them, and they change only when a reviewer approves or rolls back:
    reading them once per ``cache_s`` takes two queries off each verdict. ``invalidate`` (called
    after an approval or rollback in this process) makes the next verdict read them again.
    """

    def __init__(
        self,
        sessionmaker: SessionMaker,
        config: JuryConfig,
        *,
        cache_s: float = 0.0,
        clock: Monotonic = monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._config = config
        self._cache_s = cache_s
        self._clock = clock
        self._cached: Effective | None = None
        self._read_at = 0.0
        # Bumped by ``invalidate``: a read that started before it must not be kept.
        self._generation = 0
        # Versions never change once approved: their maps are kept for the process's life.
        self._versions: dict[int, Effective] = {}

    def invalidate(self) -> None:
        """Forget the cached state: the next verdict reads the active version again."""
        self._generation += 1
        self._cached = None

    async def current(self) -> Effective:
        """Return the effective trust settings now (at most ``cache_s`` old)."""
        cached = self._cached
        if cached is not None and self._clock() - self._read_at < self._cache_s:
            return cached
        generation, read_at = self._generation, self._clock()
        async with session_scope(self._sessionmaker) as session:
            state = await TrustRepository(session).active()
        current = effective(state, self._config)
        if generation == self._generation:
            self._cached, self._read_at = current, read_at
        return current

    async def active(self, category: str) -> tuple[int | None, Mapping[str, float]]:
        """Return the active version and the jurors' weights in ``category``."""
        current = await self.current()
        return current.version, resolve(current.weights, category)

    async def calibration(
        self, category: str, *, version: int | None, judge: ModelSpec | None
    ) -> CalibrationMap | None:
        """Return the calibration map of ``version`` for a category and judge, if any."""
        stored = await self._stored(version)
        return calibration_for(stored, category, judge) if stored is not None else None

    async def rule(self, category: str, *, version: int | None) -> tuple[VerdictSource, RiskBound]:
        """Return the verdict source and risk threshold of ``version`` for a category."""
        stored = await self._stored(version)
        empty = Effective(None, {}, {}, (), {}, {})
        return rule_for(stored if stored is not None else empty, category, self._config)

    async def _stored(self, version: int | None) -> Effective | None:
        if version is None:
            return None
        stored = self._versions.get(version)
        if stored is None:
            stored = await self._version(version)
            if stored is None:
                return None
            self._versions[version] = stored
        return stored

    async def _version(self, version: int) -> Effective | None:
        async with session_scope(self._sessionmaker) as session:
            row = await TrustRepository(session).version(version)
        if row is None:
            return None
        # Versions are immutable, so reading by number gives the map of the weights just used.
        return effective(ActiveState(activation=None, version=row), self._config)

    async def report_drift(self) -> tuple[DroppedWeights, ...]:
        """Log, at start-up, every active weight that no longer applies."""
        try:
            current = await self.current()
        except (UnavailableError, DatabaseError) as exc:
            # A database that is down at start-up is /readyz's to report, not a reason to die.
            logger.warning("trust weights not checked for model drift: %s", exc.detail)
            return ()
        for dropped in current.dropped:
            logger.warning(
                "trust weights of juror %s do not apply (%s): learned for %s, configured %s; "
                "it votes with the neutral weight until weights for its model are approved",
                dropped.juror,
                dropped.reason.value,
                dropped.recorded_model,
                dropped.current_model,
            )
        return current.dropped
