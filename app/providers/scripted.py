"""The scripted provider: deterministic answers from a config ``script`` block, no model at all.

It stands behind the same interface as the real providers, so a whole deliberation (splits,
shifts, timeouts, invalid output) can be rehearsed by tests, benchmarks and users' own agents.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from app.core.config import ModelSpec, ScriptStep
from app.providers.base import Completion, CompletionRequest
from app.providers.errors import AuthError, ProviderRateLimitedError, ProviderServerError

INVALID_TEXT = "I think the answer is probably fine, but I cannot say more."


class ScriptedProvider:
    """Answer each call with the step of the model's script for that round."""

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Play the scripted step: wait its latency, then fail or answer as scripted."""
        if spec.script is None:
            raise ProviderServerError(f"'{spec.name}' has no script")
        step = spec.script.step(request.round_number)
        if step.failure == "timeout":
            # Never answer: the caller's deadline must fire, exactly as with a hung provider.
            await anyio.sleep_forever()
        await anyio.sleep(step.latency_ms / 1000)
        _raise_scripted_failure(step)
        invalid = step.failure == "invalid_output" or (
            step.failure == "invalid_once" and request.attempt == 1
        )
        text = INVALID_TEXT if invalid else json.dumps(_answer(step, request))
        return Completion(
            text=text,
            model=spec.model,
            prompt_tokens=step.prompt_tokens,
            completion_tokens=step.completion_tokens,
            cost_usd=step.cost_usd,
        )


def _raise_scripted_failure(step: ScriptStep) -> None:
    if step.failure == "error":
        raise ProviderServerError("scripted provider error")
    if step.failure == "rate_limited":
        raise ProviderRateLimitedError("scripted rate limit")
    if step.failure == "auth":
        raise AuthError("scripted authentication failure")


def default_disagreement(request: CompletionRequest) -> str:
    """Return a summary naming every option, as the protocol asks of a judge's disagreement."""
    return f"Scripted summary of the disagreement between {' and '.join(request.options())}."


def _answer(step: ScriptStep, request: CompletionRequest) -> dict[str, Any]:
    if request.call_role == "judge":
        return {
            "verdict": step.position,
            "confidence": step.confidence,
            "disagreement": step.disagreement or default_disagreement(request),
            "dissenter_notes": [],
        }
    return {
        "position": step.position,
        "confidence": step.confidence,
        "reasoning": step.reasoning,
        "evidence": step.evidence,
    }
