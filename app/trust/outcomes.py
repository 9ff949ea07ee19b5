"""Outcomes: what turned out to be right for a verdict, kept with its history."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.clock import as_utc
from app.core.errors import ConflictError, InvalidRequestError, NotFoundError
from app.trust.models import Outcome
from app.trust.repository import TrustRepository, VerdictHead
from app.trust.schemas import OutcomeCreate, OutcomeHistory, OutcomeOut
from app.trust.service import TrustService


class OutcomeService:
    """Record outcomes (a second one only as an explicit correction) and read their history.

    Each recorded outcome also runs the rollback check, in the same unit of work.
    """

    def __init__(self, trust: TrustService) -> None:
        self._trust = trust
        self._repo: TrustRepository = trust.repository

    async def record(self, verdict_id: str, body: OutcomeCreate, *, actor: str) -> OutcomeOut:
        """Record the correct option of a completed verdict."""
        verdict = await self._completed(verdict_id)
        option = _canonical_option(body.correct_option, verdict.options)
        history = await self._repo.outcomes(verdict_id)
        previous = history[-1] if history else None
        _check_correction(verdict_id, body.corrects, previous)
        row = await self._repo.add_outcome(
            Outcome(
                verdict_id=verdict_id,
                revision=previous.revision + 1 if previous else 1,
                correct_option=option,
                source=body.source.value,
                note=body.note,
                recorded_by=actor,
                supersedes_id=previous.id if previous else None,
            )
        )
        await self._trust.record_audit(
            actor,
            "outcome.corrected" if previous else "outcome.recorded",
            f"verdict:{verdict_id}",
            reason=body.note,
            outcome_id=row.id,
            correct_option=option,
            source=body.source.value,
            verdict=verdict.verdict,
            previous_option=previous.correct_option if previous else None,
            supersedes_id=row.supersedes_id,
        )
        rollback = await self._trust.check_rollback()
        out = outcome_out(row)
        return out.model_copy(update={"rollback_proposal_id": rollback.id if rollback else None})

    async def history(self, verdict_id: str) -> OutcomeHistory:
        """Return every outcome of a verdict, the one in force first."""
        if await self._repo.verdict(verdict_id) is None:
            raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
        rows = await self._repo.outcomes(verdict_id)
        items = [
            outcome_out(row).model_copy(update={"corrected": index < len(rows) - 1})
            for index, row in enumerate(rows)
        ]
        items.reverse()
        return OutcomeHistory(
            verdict_id=verdict_id, current=items[0] if items else None, items=items
        )

    async def _completed(self, verdict_id: str) -> VerdictHead:
        verdict = await self._repo.verdict(verdict_id)
        if verdict is None:
            raise NotFoundError(f"verdict '{verdict_id}' not found", id=verdict_id)
        if verdict.status != "completed" or verdict.verdict is None:
            raise ConflictError(
                f"verdict '{verdict_id}' is {verdict.status}: only a decided verdict has an "
                "outcome",
                id=verdict_id,
                status=verdict.status,
            )
        return verdict


def _canonical_option(given: str, options: Sequence[str]) -> str:
    """Return the verdict's own label for ``given`` (case-insensitive), or raise 422."""
    for option in options:
        if option.casefold() == given.casefold():
            return option
    raise InvalidRequestError(
        f"'{given}' is not one of the verdict's options: {', '.join(options)}",
        field="correct_option",
        options=list(options),
    )


def _check_correction(
    verdict_id: str, corrects: bool | int | None, previous: Outcome | None
) -> None:
    """Allow a second outcome only as an explicit correction of the one in force."""
    if previous is None:
        if corrects is not None:
            raise ConflictError(f"verdict '{verdict_id}' has no outcome to correct", id=verdict_id)
        return
    if corrects is None:
        raise ConflictError(
            f"verdict '{verdict_id}' already has an outcome ({previous.correct_option}); "
            'send "corrects": true to replace it',
            id=verdict_id,
            outcome_id=previous.id,
            correct_option=previous.correct_option,
        )
    if not isinstance(corrects, bool) and corrects != previous.id:
        raise ConflictError(
            f"outcome {corrects} is not the one in force for verdict '{verdict_id}' "
            f"(that is {previous.id})",
            id=verdict_id,
            outcome_id=previous.id,
        )


def outcome_out(row: Outcome) -> OutcomeOut:
    """Render a stored outcome."""
    return OutcomeOut.model_validate(row).model_copy(
        update={"recorded_at": as_utc(row.recorded_at)}
    )
