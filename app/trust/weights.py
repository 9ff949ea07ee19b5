"""Weight proposals from trust statistics, and the model-drift guard on a weights table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.deliberation.vote import (
    ALL_CATEGORIES,
    NEUTRAL_WEIGHT,
    VoteResult,
    WeightsTable,
    effective_weight,
    weight_for,
    weighted_vote,
)
from app.trust.scoring import BetaAccuracy
from app.trust.statistics import JurorCellStats, TrustStats

__all__ = [
    "NEUTRAL_WEIGHT",
    "DriftReason",
    "DriftResult",
    "DroppedWeights",
    "KeptReason",
    "ProposedWeights",
    "VoteResult",
    "WeightCell",
    "WeightsTable",
    "drop_drifted",
    "log_odds_weight",
    "propose_weights",
    "weight_for",
    "weighted_vote",
]

# Used for the "*" cell when the caller gives no option count for it: the default options are
# ["yes", "no"].
DEFAULT_OPTIONS_COUNT = 2


class KeptReason(StrEnum):
    """Why a cell keeps its active weight instead of taking the proposed one."""

    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class WeightCell(BaseModel):
    """One proposed weight (juror, category) with the evidence behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    juror: str
    model: str
    category: str
    n: int = Field(ge=0, description="verdicts with a valid final position")
    accuracy: BetaAccuracy
    options_count: int
    raw_weight: float = Field(description="log-odds weight of the posterior mean; may be < 0")
    shrunk_weight: float | None = Field(description="after shrinkage toward the global weight")
    active: float = Field(description="effective weight under the active table")
    proposed: float = Field(description="effective weight under the proposed table")
    change: float
    kept: KeptReason | None = None


class ProposedWeights(BaseModel):
    """A weights proposal: the full proposed table plus per-cell evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: dict[str, dict[str, float]]
    models: dict[str, str] = Field(description="juror name -> model id the weights belong to")
    cells: tuple[WeightCell, ...]
    min_evidence: int
    shrinkage: float


def log_odds_weight(accuracy: float, options_count: int) -> float:
    """Return log(p/(1-p)) + log(k-1): the optimal vote weight of an independent juror."""
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"accuracy must lie strictly in (0, 1), got {accuracy}")
    if options_count < 2:
        raise ValueError(f"need at least 2 options, got {options_count}")
    return math.log(accuracy / (1.0 - accuracy)) + math.log(options_count - 1)


def shrink(raw: float, global_weight: float, *, n: int, shrinkage: float) -> float:
    """Shrink a category weight toward the global one: (n*raw + s*global) / (n + s)."""
    return (n * raw + shrinkage * global_weight) / (n + shrinkage)


def _models_by_name(stats: TrustStats, current_models: Mapping[str, str] | None) -> dict[str, str]:
    """Pick the model id per juror name; refuse to merge evidence across models silently."""
    models: dict[str, set[str]] = {}
    for cell in stats.jurors:
        models.setdefault(cell.juror, set()).add(cell.model)
    if current_models is not None:
        return {name: current_models[name] for name in models if name in current_models}
    ambiguous = sorted(name for name, ids in models.items() if len(ids) > 1)
    if ambiguous:
        raise ValueError(f"jurors with several model ids, pass current_models: {ambiguous}")
    return {name: next(iter(ids)) for name, ids in models.items()}


def _options_count(counts: Mapping[str, int], category: str) -> int:
    """Return the number of options in a category; "*" defaults to the yes/no pair."""
    if category == ALL_CATEGORIES:
        return counts.get(ALL_CATEGORIES, DEFAULT_OPTIONS_COUNT)
    if category not in counts:
        raise ValueError(f"options_count_by_category has no entry for {category!r}")
    return counts[category]


def _cell(
    stat: JurorCellStats,
    *,
    k: int,
    global_raw: float | None,
    min_evidence: int,
    shrinkage: float,
    current: WeightsTable,
) -> WeightCell:
    """Build one proposal cell; `proposed` and `change` are set once the table is built."""
    raw = log_odds_weight(stat.final.mean, k)
    enough = stat.final.n >= min_evidence
    shrunk: float | None = None
    if enough:
        # The "*" cell itself (and a category whose juror has no global weight) is not shrunk.
        shrunk = raw
        if stat.category != ALL_CATEGORIES and global_raw is not None:
            shrunk = shrink(raw, global_raw, n=stat.final.n, shrinkage=shrinkage)
    active = effective_weight(weight_for(current, stat.category, stat.juror))
    return WeightCell(
        juror=stat.juror,
        model=stat.model,
        category=stat.category,
        n=stat.final.n,
        accuracy=stat.final,
        options_count=k,
        raw_weight=raw,
        shrunk_weight=shrunk,
        active=active,
        proposed=active,
        change=0.0,
        kept=None if enough else KeptReason.INSUFFICIENT_EVIDENCE,
    )


def _with_proposed(cell: WeightCell, table: WeightsTable) -> WeightCell:
    """Fill in the effective proposed weight and its change against the active one."""
    proposed = effective_weight(weight_for(table, cell.category, cell.juror))
    return cell.model_copy(update={"proposed": proposed, "change": proposed - cell.active})


def _global_raw(
    usable: list[JurorCellStats], counts: Mapping[str, int], min_evidence: int
) -> dict[str, float]:
    """Return each juror's raw "*" weight where the "*" cell has enough evidence."""
    return {
        c.juror: log_odds_weight(c.final.mean, _options_count(counts, c.category))
        for c in usable
        if c.category == ALL_CATEGORIES and c.final.n >= min_evidence
    }


def _proposed_table(current: WeightsTable, cells: list[WeightCell]) -> dict[str, dict[str, float]]:
    """Overlay the cells with enough evidence on a copy of the active table."""
    table = {category: dict(weights) for category, weights in current.items()}
    for cell in cells:
        if cell.shrunk_weight is not None:
            # Stored clipped at 0, as weighted_vote would clip anyway; raw_weight keeps the sign.
            table.setdefault(cell.category, {})[cell.juror] = effective_weight(cell.shrunk_weight)
    return table


def propose_weights(
    stats: TrustStats,
    *,
    options_count_by_category: Mapping[str, int],
    min_evidence: int,
    shrinkage: float,
    current: WeightsTable,
    current_models: Mapping[str, str] | None = None,
) -> ProposedWeights:
    """Propose log-odds weights per juror and category from final-position accuracy."""
    # A cell below min_evidence keeps what `current` has: an explicit entry stays, an absent
    # one keeps falling back to "*". `current_models` (juror name -> configured model id)
    # picks the current model's evidence when the record holds several model ids for a name.
    if min_evidence < 0 or shrinkage < 0:
        raise ValueError("min_evidence and shrinkage must be >= 0")
    models = _models_by_name(stats, current_models)
    usable = [c for c in stats.jurors if models.get(c.juror) == c.model]
    global_raw = _global_raw(usable, options_count_by_category, min_evidence)
    cells = [
        _cell(
            stat,
            k=_options_count(options_count_by_category, stat.category),
            global_raw=global_raw.get(stat.juror),
            min_evidence=min_evidence,
            shrinkage=shrinkage,
            current=current,
        )
        for stat in usable
    ]
    table = _proposed_table(current, cells)
    return ProposedWeights(
        table=table,
        models=models,
        cells=tuple(_with_proposed(cell, table) for cell in cells),
        min_evidence=min_evidence,
        shrinkage=shrinkage,
    )


class DriftReason(StrEnum):
    """Why weights of a juror were dropped from a table."""

    MODEL_CHANGED = "model_changed"
    NOT_IN_CONFIG = "not_in_config"
    MODEL_UNKNOWN = "model_unknown"


class DroppedWeights(BaseModel):
    """The weights of one juror that were dropped, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    juror: str
    reason: DriftReason
    recorded_model: str | None
    current_model: str | None
    weights: dict[str, float] = Field(description="category -> dropped weight")


class DriftResult(BaseModel):
    """A weights table with drifted jurors removed, and the report of what was removed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: dict[str, dict[str, float]]
    dropped: tuple[DroppedWeights, ...]


def _drift_reason(recorded: str | None, current: str | None) -> DriftReason | None:
    """Classify a juror's (recorded, configured) model ids; None when the weights still hold."""
    if current is None:
        return DriftReason.NOT_IN_CONFIG
    if recorded is None:
        return DriftReason.MODEL_UNKNOWN
    return None if recorded == current else DriftReason.MODEL_CHANGED


def drop_drifted(
    table: WeightsTable,
    *,
    recorded_models: Mapping[str, str],
    current_models: Mapping[str, str],
) -> DriftResult:
    """Drop every weight whose juror's model id changed (or cannot be checked) and report it."""
    # A dropped juror falls back to neutral 1.0 until evidence about its new model is approved:
    # learned trust must not carry over silently to a different model.
    names = sorted({juror for weights in table.values() for juror in weights})
    reasons = {
        name: _drift_reason(recorded_models.get(name), current_models.get(name)) for name in names
    }
    kept = {
        category: {j: w for j, w in weights.items() if reasons[j] is None}
        for category, weights in table.items()
    }
    dropped = tuple(
        DroppedWeights(
            juror=name,
            reason=reason,
            recorded_model=recorded_models.get(name),
            current_model=current_models.get(name),
            weights={c: w[name] for c, w in table.items() if name in w},
        )
        for name, reason in reasons.items()
        if reason is not None
    )
    return DriftResult(table={c: w for c, w in kept.items() if w}, dropped=dropped)
