"""Every row and UPDATE the verdict record writes, built here and only here.

A verdict's row is inserted once (``new_verdict_row``), each model call once (``call_row``),
and its end is one UPDATE (``completed``, ``ended``, ``requeued``) under a ``Hold``: who may
still write the row. The hold is chosen once, when the verdict starts: ``OwnRow`` for a verdict
this process inserted itself, ``ClaimedRow`` for a queued one a worker claimed, whose outcome
is written only while that worker's claim holds.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BindParameter, String, Table, Update, bindparam, update
from sqlmodel import SQLModel, col

from app.core.errors import ClaimLostError
from app.deliberation.assembly import calibration_out
from app.deliberation.calls import CallOutcome
from app.deliberation.prompts import PROMPT_VERSION
from app.deliberation.schemas import VerdictOut, VerdictStatus
from app.verdicts.record.tables import ModelCall, Verdict
from app.verdicts.record.writer import Change, Row

# The tables the verdict record's group commit (``RecordWriter``) inserts into.
VERDICTS: Table = SQLModel.metadata.tables[Verdict.__tablename__]
MODEL_CALLS: Table = SQLModel.metadata.tables[ModelCall.__tablename__]

# How a deliberation can end without a verdict.
Ending = Literal["failed", "interrupted", "no_quorum"]


@dataclass(frozen=True, slots=True)
class OwnRow:
    """A verdict row this process inserted: its outcome is written by id alone."""

    verdict_id: str

    def change(self, values: Mapping[str, object]) -> Change:
        """Return the UPDATE that sets ``values`` on the row."""
        statement = _update_statement(frozenset(values), claimed=False)
        return Change(statement, _params(values, b_id=self.verdict_id))

    def lost(self) -> Exception:
        """Return what an UPDATE that changed nothing means: the row was never written."""
        return LookupError(self.verdict_id)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A queued verdict's row that ``worker`` claimed: written only while the claim holds."""

    verdict_id: str
    worker: str

    def change(self, values: Mapping[str, object]) -> Change:
        """Return the UPDATE that sets ``values`` while the claim holds; its lease ends."""
        values = {"lease_until": None, **values}
        statement = _update_statement(frozenset(values), claimed=True)
        return Change(statement, _params(values, b_id=self.verdict_id, b_worker=self.worker))

    def lost(self) -> Exception:
        """Return what an UPDATE that changed nothing means: another worker took it over."""
        return ClaimLostError(
            f"verdict '{self.verdict_id}' was taken over by another worker", id=self.verdict_id
        )


Hold = OwnRow | ClaimedRow


def completed(hold: Hold, verdict: VerdictOut, *, at: datetime) -> Change:
    """Return the UPDATE that records a decided verdict and its whole response."""
    sequential = verdict.sequential
    return hold.change(
        {
            "status": "completed",
            "finished_at": at,
            "verdict": verdict.verdict,
            "confidence": verdict.confidence,
            "agreement": verdict.agreement,
            "unanimous": verdict.unanimous,
            "escalate": verdict.escalate,
            "degraded": verdict.degraded,
            "judge_fallback": verdict.judge.fallback,
            "latency_ms": verdict.latency_ms,
            "prompt_tokens": verdict.usage.prompt_tokens,
            "completion_tokens": verdict.usage.completion_tokens,
            "cost_usd": verdict.usage.cost_usd,
            "convened": len(sequential.convened) if sequential is not None else None,
            "convening_stop": sequential.stop if sequential is not None else None,
            "response": verdict.model_dump(mode="json", by_alias=True),
        }
    )


def ended(hold: Hold, status: Ending, *, error: Mapping[str, Any] | None, at: datetime) -> Change:
    """Return the UPDATE that records why a verdict ended without one."""
    return hold.change({"status": status, "finished_at": at, "error": error})


def requeued(hold: ClaimedRow) -> Change:
    """Return the UPDATE that hands a claimed verdict back to the queue, for another worker."""
    return hold.change({"status": "queued", "claimed_by": None})


def held_by(verdict_id: str | BindParameter[str], worker: str | BindParameter[str]) -> list[Any]:
    """Return the conditions under which ``worker``'s claim still holds a verdict (values, or
    bind parameters for a statement built once)."""
    return [
        col(Verdict.id) == verdict_id,
        col(Verdict.status) == "running",
        col(Verdict.claimed_by) == worker,
    ]


def new_verdict_row(
    *,
    verdict_id: str,
    created_at: datetime,
    status: VerdictStatus,
    question: str,
    options: Sequence[str],
    category: str,
    panel: str,
    request: Mapping[str, Any],
    metadata: Mapping[str, Any],
    context: str | None = None,
    weights_version: int | None = None,
    api_key_id: int | None = None,
) -> Row:
    """Return the row that inserts a new verdict.

    Every column is named (the outcome's as their defaults), so that rows batched into one
    executemany have the same keys; keys are column names (``metadata`` holds the caller's).
    """
    values = {
        **_NEW_VERDICT,
        "id": verdict_id,
        "created_at": created_at,
        "status": status,
        "question": question,
        "context": context,
        "options": list(options),
        "category": category,
        "panel": panel,
        "request": dict(request),
        "metadata": dict(metadata),
        "weights_version": weights_version,
        "api_key_id": api_key_id,
    }
    return VERDICTS, values


def call_row(verdict_id: str, outcome: CallOutcome[Any], *, changed: bool) -> Row:
    """Return the row of one juror or judge call."""
    answer = outcome.answer
    parsed = answer.model_dump(mode="json") if answer is not None else None
    position = None
    if parsed is not None:
        position = parsed.get("position", parsed.get("verdict"))
        calibration = calibration_out(outcome) if outcome.role == "judge" else None
        if calibration is not None:
            parsed["label_calibration"] = calibration.model_dump(mode="json")
    failure = outcome.failure
    values = {
        "verdict_id": verdict_id,
        "role": outcome.role,
        "round": outcome.round_number,
        "juror": outcome.spec.name,
        "model": outcome.spec.model,
        "family": outcome.spec.family,
        "prompt_version": PROMPT_VERSION,
        "messages": [{"role": m.role, "content": m.content} for m in outcome.messages],
        "raw_output": outcome.raw_output,
        "parsed": parsed,
        "position": position,
        "confidence": parsed.get("confidence") if parsed else None,
        "changed": changed,
        "attempts": outcome.attempts,
        "latency_ms": outcome.latency_ms,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "failure_kind": failure.kind.value if failure else None,
        "failure_detail": failure.detail if failure else None,
        "started_at": outcome.started_at,
    }
    return MODEL_CALLS, values


# A new verdict's columns: the outcome's are None, the counters zero.
_NEW_VERDICT: dict[str, Any] = {
    **{column.name: None for column in VERDICTS.columns},
    "metadata": {},
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost_usd": 0.0,
    "attempts": 0,
}


def _params(values: Mapping[str, object], **keys: str) -> dict[str, Any]:
    return {**{f"v_{name}": value for name, value in values.items()}, **keys}


@functools.cache
def _update_statement(columns: frozenset[str], *, claimed: bool) -> Update:
    """Return the UPDATE of ``columns``, built once per set of columns and hold.

    Building and hashing an UPDATE with its values inline cost about a millisecond per verdict.
    """
    verdict_id = bindparam("b_id", type_=String)
    conditions = (
        held_by(verdict_id, bindparam("b_worker", type_=String))
        if claimed
        else [col(Verdict.id) == verdict_id]
    )
    # Untyped bind parameters take their column's type (JSON, timezone-aware datetimes).
    return (
        update(VERDICTS)
        .where(*conditions)
        .values({VERDICTS.c[name]: bindparam(f"v_{name}") for name in sorted(columns)})
    )
