"""One model call under a deadline, with one repair re-ask for invalid output.

Every call ends in a ``CallOutcome``: a validated answer, or a typed failure. Nothing is
swallowed and nothing is turned into a default answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import anyio

from app.core.clock import Deadline, utcnow
from app.core.config import ModelSpec
from app.deliberation import prompts
from app.deliberation.calibration import LabelCalibration
from app.deliberation.schemas import Failure
from app.providers.base import CallRole, Completion, CompletionRequest, Message
from app.providers.errors import (
    FailureKind,
    InvalidOutputError,
    ProviderError,
    ProviderTimeoutError,
)
from app.providers.hub import ProviderHub

AnswerT = TypeVar("AnswerT")

MAX_ATTEMPTS = 2  # the first answer and one repair re-ask


@dataclass(slots=True)
class CallOutcome(Generic[AnswerT]):
    """What one juror or judge call produced, with everything needed to record it."""

    spec: ModelSpec
    role: CallRole
    round_number: int
    messages: tuple[Message, ...]
    started_at: datetime
    answer: AnswerT | None = None
    failure: Failure | None = None
    raw_output: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    # A calibrated judge only: what its label calibration saw and decided (``calibration``).
    calibration: LabelCalibration | None = None
    calibration_skipped: str | None = None

    @property
    def ok(self) -> bool:
        """Return whether the call produced a valid answer."""
        return self.answer is not None


@dataclass(frozen=True, slots=True)
class CallPlan(Generic[AnswerT]):
    """Everything needed to make one structured call."""

    spec: ModelSpec
    role: CallRole
    round_number: int
    messages: tuple[Message, ...]
    schema_name: str
    schema: dict[str, Any]
    parse: Callable[[str], AnswerT]
    metadata: Mapping[str, Any] = field(default_factory=dict)


async def call_model(
    hub: ProviderHub, plan: CallPlan[AnswerT], *, deadline: Deadline
) -> CallOutcome[AnswerT]:
    """Make the call, re-ask once on invalid output, and never outlive ``deadline``."""
    outcome: CallOutcome[AnswerT] = CallOutcome(
        spec=plan.spec,
        role=plan.role,
        round_number=plan.round_number,
        messages=plan.messages,
        started_at=utcnow(),
    )
    started = time.perf_counter()
    messages = plan.messages
    try:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            outcome.attempts = attempt
            text = await _attempt(hub, plan, messages, attempt, outcome, deadline=deadline)
            outcome.raw_output = text
            try:
                outcome.answer = plan.parse(text)
                return outcome
            except InvalidOutputError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                messages = prompts.repair(plan.messages, text, exc.detail)
    except ProviderError as exc:
        outcome.failure = Failure(kind=exc.kind, detail=exc.detail)
    finally:
        outcome.latency_ms = (time.perf_counter() - started) * 1000
    return outcome


async def _attempt(
    hub: ProviderHub,
    plan: CallPlan[AnswerT],
    messages: tuple[Message, ...],
    attempt: int,
    outcome: CallOutcome[AnswerT],
    *,
    deadline: Deadline,
) -> str:
    """Send one request within the call's timeout and the verdict's deadline."""
    request = CompletionRequest(
        messages=messages,
        schema_name=plan.schema_name,
        output_schema=plan.schema,
        call_role=plan.role,
        round_number=plan.round_number,
        attempt=attempt,
        metadata=dict(plan.metadata),
    )
    completion = await complete_within(hub, plan.spec, request, deadline=deadline)
    outcome.prompt_tokens += completion.prompt_tokens
    outcome.completion_tokens += completion.completion_tokens
    outcome.cost_usd += completion.cost_usd
    return completion.text


async def complete_within(
    hub: ProviderHub, spec: ModelSpec, request: CompletionRequest, *, deadline: Deadline
) -> Completion:
    """Send ``request`` within ``spec``'s per-call timeout and the verdict's deadline."""
    now = anyio.current_time()
    timeout = min(spec.timeout_s, deadline.at - now)
    if timeout <= 0:
        raise _timeout("the verdict's deadline was reached before the call", spec)
    # ``fail_after``, without its two generator-based context managers and three backend
    # lookups per call: one cancel scope whose deadline is the call's.
    try:
        with anyio.CancelScope(deadline=now + timeout) as scope:
            completion = await hub.complete(spec, request)
        timed_out = scope.cancelled_caught
    except TimeoutError:  # as under ``fail_after``, a bare timeout from below is one too
        timed_out = True
    if timed_out:
        limit = "its per-call timeout" if timeout == spec.timeout_s else "the deadline"
        raise _timeout(f"no answer within {timeout:.2f}s ({limit})", spec) from None
    return completion


def _timeout(detail: str, spec: ModelSpec) -> ProviderError:
    return ProviderTimeoutError(f"{spec.name}: {detail}")


def failure_of(outcome: CallOutcome[Any]) -> FailureKind | None:
    """Return the failure kind of an outcome, or None when it succeeded."""
    return outcome.failure.kind if outcome.failure is not None else None
