"""What a reviewer must read before deciding a proposal, in the order they must read it.

The review page and ``jury trust show`` both lead with this: per category, what changes and the
evidence of each cell (n, accuracy and its interval), the candidate-rule comparison when the
proposal carries one; then the replay with its interval; then (after the decision form) the
flipped verdicts, a page at a time, each with its question, category and who was right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.trust.replay import Flip
from app.trust.schemas import ProposalOut, ReplayOut
from app.trust.scoring import wilson_interval
from app.verdicts.record.tables import Verdict

FLIPS_PER_PAGE = 20
# Evidence keys shown by the summary and the charts rather than as raw evidence.
SUMMARISED = frozenset({"cells", "fits", "reliability", "selection"})
RIGHT_SIDE = {
    "active": "the active weights",
    "proposed": "the proposed weights",
    "neither": "neither",
}


@dataclass(frozen=True, slots=True)
class Share:
    """Successes out of n, with the share and its Wilson 95% interval (None when n is 0)."""

    successes: int
    n: int
    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, successes: int, n: int) -> Share:
        """Return the share of ``successes`` in ``n``."""
        if n == 0:
            return cls(successes, 0, None, None, None)
        low, high = wilson_interval(successes, n)
        return cls(successes, n, successes / n, low, high)

    def text(self) -> str:
        """Return '0.650 [0.43, 0.82] (13/20)', or '—' without observations."""
        if self.value is None or self.low is None or self.high is None:
            return "—"
        return f"{self.value:.3f} [{self.low:.2f}, {self.high:.2f}] ({self.successes}/{self.n})"


@dataclass(frozen=True, slots=True)
class CellChange:
    """One juror's weight in one category, before and after, with the evidence for it."""

    juror: str
    model: str
    n: int
    accuracy: str  # mean [interval] (successes/n), as evidence states it
    mean: float | None
    low: float | None
    high: float | None
    active: float
    proposed: float
    kept: str | None

    @property
    def changed(self) -> bool:
        """Return whether the proposal moves this weight."""
        return abs(self.proposed - self.active) > 1e-12


@dataclass(frozen=True, slots=True)
class CategoryChange:
    """What a proposal changes in one category."""

    category: str
    cells: list[CellChange] = field(default_factory=list)
    note: str | None = None  # a calibration fit or a rollback's reason, in words

    @property
    def changed(self) -> int:
        """Return how many weights of this category move."""
        return sum(cell.changed for cell in self.cells)


@dataclass(frozen=True, slots=True)
class Comparison:
    """A table of candidate rules compared by cross-validation, as the proposal stores it."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True, slots=True)
class DecisionSummary:
    """The decision's facts, first things first."""

    headline: str
    categories: list[CategoryChange]
    active: Share
    proposed: Share
    flips: int
    flips_to_right: int
    flips_to_wrong: int
    comparisons: list[Comparison]
    calibration: tuple[float | None, float | None] | None  # ECE active, proposed

    @property
    def flips_neither(self) -> int:
        """Return the flips where both sides were wrong."""
        return self.flips - self.flips_to_right - self.flips_to_wrong


def _cell(raw: Mapping[str, Any]) -> CellChange:
    accuracy = raw.get("accuracy")
    if isinstance(accuracy, Mapping):
        text = (
            f"{accuracy['mean']:.3f} [{accuracy['lower']:.2f}, {accuracy['upper']:.2f}] "
            f"({accuracy['successes']}/{accuracy['n']})"
        )
        mean, low, high = accuracy["mean"], accuracy["lower"], accuracy["upper"]
    else:  # agreement-only cells estimate an accuracy with no interval
        mean = float(accuracy) if isinstance(accuracy, int | float) else None
        text, low, high = ("—" if mean is None else f"{mean:.3f} (agreement only)"), None, None
    active = float(raw.get("active", raw.get("weight", 0.0)))
    return CellChange(
        juror=str(raw["juror"]),
        model=str(raw.get("model", "")),
        n=int(raw.get("n", 0)),
        accuracy=text,
        mean=mean,
        low=low,
        high=high,
        active=active,
        proposed=float(raw.get("proposed", raw.get("weight", active))),
        kept=str(raw["kept"]) if raw.get("kept") else None,
    )


def _weight_categories(proposal: ProposalOut) -> list[CategoryChange]:
    """Group the evidence cells by category; without cells, the bare weight changes."""
    by_category: dict[str, list[CellChange]] = {}
    cells = proposal.evidence.get("cells") or []
    changes = {(c.category, c.juror): c for c in proposal.changes}
    for raw in cells:
        cell = _cell(raw)
        change = changes.get((str(raw["category"]), cell.juror))
        if change is not None:  # the effective weights, as the replay used them
            cell = replace(cell, active=change.active, proposed=change.proposed)
        by_category.setdefault(str(raw["category"]), []).append(cell)
    if not cells:
        for change in proposal.changes:
            bare = CellChange(
                juror=change.juror,
                model="",
                n=0,
                accuracy="—",
                mean=None,
                low=None,
                high=None,
                active=change.active,
                proposed=change.proposed,
                kept=None,
            )
            by_category.setdefault(change.category, []).append(bare)
    for category in proposal.selection:
        by_category.setdefault(category, [])
    return [
        CategoryChange(category, cells, _rule_note(proposal, category))
        for category, cells in sorted(by_category.items())
    ]


def _calibration_categories(proposal: ProposalOut) -> list[CategoryChange]:
    fits: Mapping[str, Mapping[str, Any]] = proposal.evidence.get("fits") or {}
    result = []
    for category, fit in sorted(fits.items()):
        before, after = fit.get("ece_before"), fit.get("ece_after")
        if fit.get("map") is None:
            note = f"no map: {fit.get('n', 0)} verdicts, fewer than {fit.get('min_evidence')}"
        else:
            note = (
                f"map fitted on {fit.get('n', 0)} verdicts; ECE "
                f"{_num(before)} → {_num(after)} (on the fitting data)"
            )
        result.append(CategoryChange(category, note=note))
    return result


def _num(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.3f}"


def _comparisons(proposal: ProposalOut) -> list[Comparison]:
    """Render each category's cross-validated comparison of candidate rules as a table."""
    tables = []
    for category, selection in sorted(proposal.selection.items()):
        rows = [
            [
                candidate.rule + (" (chosen)" if candidate.rule == selection.chosen else ""),
                f"{candidate.accuracy:.3f} [{candidate.low:.2f}, {candidate.high:.2f}]",
                str(candidate.n),
            ]
            for candidate in selection.candidates
        ]
        title = (
            f"Candidate rules, {category}: {selection.chosen} chosen (verdict from "
            f"{selection.verdict_source}); best single juror {selection.best_single}; "
            f"{selection.folds}-fold CV"
        )
        tables.append(Comparison(title, ["Rule", "CV accuracy [95% interval]", "n"], rows))
    return tables


def _rule_note(proposal: ProposalOut, category: str) -> str | None:
    """Return the rule a category would follow, with its cross-validated accuracy."""
    selection = proposal.selection.get(category)
    if selection is None:
        return None
    chosen = next((c for c in selection.candidates if c.rule == selection.chosen), None)
    score = ""
    if chosen is not None:
        interval = f"[{chosen.low:.2f}, {chosen.high:.2f}]"
        score = f", CV accuracy {chosen.accuracy:.3f} {interval} (n={chosen.n})"
    risk = selection.risk
    guarantee = (
        f"; risk ≤ {risk.alpha:g} above confidence {risk.threshold:.2f}"
        if risk.threshold is not None
        else "; no risk guarantee yet"
    )
    return f"rule → {selection.chosen}, verdict from {selection.verdict_source}{score}{guarantee}"


def _headline(proposal: ProposalOut, categories: list[CategoryChange], replay: ReplayOut) -> str:
    if proposal.kind.value == "calibration":
        fitted = [c.category for c in categories if c.note and c.note.startswith("map")]
        what = f"Calibrates the verdict confidence in {len(fitted)} categories"
    elif proposal.kind.value == "rollback":
        what = f"Restores version {proposal.target_version or 'neutral'}"
    else:
        moved = sum(c.changed for c in categories)
        touched = sum(1 for c in categories if c.changed)
        what = f"Changes {moved} weights in {touched} categories"
    if replay.n == 0:
        return f"{what}; no recorded verdict with an outcome to replay."
    active = Share.of(replay.correct_active, replay.n)
    proposed = Share.of(replay.correct_proposed, replay.n)
    if replay.ece_active is not None:
        return (
            f"{what}; on {replay.n} verdicts with outcomes, calibration error (ECE) "
            f"{_num(replay.ece_active)} → {_num(replay.ece_proposed)}."
        )
    return (
        f"{what}; replayed on {replay.n} verdicts with outcomes, accuracy "
        f"{active.text()} → {proposed.text()}; {len(replay.flips)} decisions flip."
    )


def decision_summary(proposal: ProposalOut) -> DecisionSummary:
    """Return what the reviewer must read first about ``proposal``."""
    if proposal.kind.value == "calibration":
        categories = _calibration_categories(proposal)
    else:
        categories = _weight_categories(proposal)
        reason = proposal.reason if proposal.kind.value == "rollback" else None
        if reason and categories and categories[0].note is None:
            categories[0] = CategoryChange(categories[0].category, categories[0].cells, reason)
    replay = proposal.replay
    return DecisionSummary(
        headline=_headline(proposal, categories, replay),
        categories=categories,
        active=Share.of(replay.correct_active, replay.n),
        proposed=Share.of(replay.correct_proposed, replay.n),
        flips=len(replay.flips),
        flips_to_right=sum(f.correct_side == "proposed" for f in replay.flips),
        flips_to_wrong=sum(f.correct_side == "active" for f in replay.flips),
        comparisons=_comparisons(proposal),
        calibration=(replay.ece_active, replay.ece_proposed)
        if replay.ece_active is not None
        else None,
    )


@dataclass(frozen=True, slots=True)
class FlipRow:
    """A flipped verdict as the reviewer reads it."""

    flip: Flip
    question: str | None  # None: the verdict is no longer on record

    @property
    def right(self) -> str:
        """Return who was right, in words."""
        return RIGHT_SIDE[self.flip.correct_side]


@dataclass(frozen=True, slots=True)
class FlipPage:
    """One page of flipped verdicts."""

    rows: list[FlipRow]
    offset: int
    total: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """Return where the next page starts, or None on the last page."""
        following = self.offset + self.limit
        return following if following < self.total else None

    @property
    def previous_offset(self) -> int | None:
        """Return where the previous page starts, or None on the first page."""
        return max(self.offset - self.limit, 0) if self.offset > 0 else None


async def flip_page(
    session: AsyncSession, flips: Sequence[Flip], *, offset: int = 0, limit: int = FLIPS_PER_PAGE
) -> FlipPage:
    """Return one page of flips, each with its verdict's question (one query for the page)."""
    shown = list(flips[offset : offset + limit])
    ids = [flip.verdict_id for flip in shown]
    questions: dict[str, str] = {}
    if ids:
        statement = select(Verdict.id, Verdict.question).where(col(Verdict.id).in_(ids))
        questions = dict((await session.exec(statement)).all())
    rows = [FlipRow(flip, questions.get(flip.verdict_id)) for flip in shown]
    return FlipPage(rows=rows, offset=offset, total=len(flips), limit=limit)
