"""The scripted provider: deterministic answers from a config ``script`` block, no model at all.

It stands behind the same interface as the real providers, so a whole deliberation (splits,
shifts, timeouts, invalid output) can be rehearsed by tests, benchmarks and users' own agents.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from app.core.config import ModelSpec, ScriptStep
from app.providers.base import Completion, CompletionRequest, TokenLogprobs
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
            tokens=_label_tokens(step, request),
        )


def _raise_scripted_failure(step: ScriptStep) -> None:
    if step.failure == "error":
        raise ProviderServerError("scripted provider error")
    if step.failure == "rate_limited":
        raise ProviderRateLimitedError("scripted rate limit")
    if step.failure == "auth":
        raise AuthError("scripted authentication failure")
    if step.failure == "crash":
        raise IndexError("scripted crash: list index out of range")


def default_disagreement(request: CompletionRequest) -> str:
    """Return a summary naming every position held, as the protocol asks of a judge.

    The positions are the schema's ``sides`` when the panel split (a calibrated judge's
    verdict enum then holds only the decided option), else every option.
    """
    sides = request.output_schema["properties"].get("sides", {}).get("properties")
    named = list(sides) if sides else request.options()
    return f"Scripted summary of the disagreement between {' and '.join(named)}."


def _quoted_sides(request: CompletionRequest) -> dict[str, str] | None:
    """Name the first juror the schema allows for each side of a quoting judge, else None.

    A quoting judge's sides are enums of juror labels; a writing judge's are free texts.
    """
    properties = request.output_schema["properties"]
    if "sides" not in properties:
        return None
    sides = properties["sides"].get("properties", {})
    if not all("enum" in prop for prop in sides.values()):
        return None
    return {position: prop["enum"][0] for position, prop in sides.items()}


def _label_tokens(step: ScriptStep, request: CompletionRequest) -> tuple[TokenLogprobs, ...] | None:
    """Play the step's ``label_logprobs`` as a server's logprobs: the verdict's first token."""
    labels = step.label_prior if request.purpose == "prior" else None
    labels = labels or step.label_logprobs
    if not request.top_logprobs or labels is None:
        return None
    chosen = max(labels, key=labels.__getitem__)
    return (
        TokenLogprobs(token='{"verdict": "', logprob=0.0, top={'{"verdict": "': 0.0}),
        TokenLogprobs(token=chosen, logprob=labels[chosen], top=dict(labels)),
    )


def _answer(step: ScriptStep, request: CompletionRequest) -> dict[str, Any]:
    if request.call_role == "judge":
        options = request.options()
        # A one-option enum (a calibrated judge's decided verdict) is obeyed, as a server's
        # grammar would make any model obey it.
        verdict = options[0] if len(options) == 1 else step.position
        quoted = _quoted_sides(request)
        if quoted is not None:
            return {"verdict": verdict, "confidence": step.confidence, "sides": quoted}
        return {
            "verdict": verdict,
            "confidence": step.confidence,
            "disagreement": step.disagreement or default_disagreement(request),
            "dissenter_notes": [],
        }
    answer: dict[str, Any] = {
        "position": step.position,
        "confidence": step.confidence,
        "reasoning": step.reasoning,
    }
    # A juror not asked for evidence has no such key, as a server's grammar would enforce.
    if "evidence" in request.output_schema.get("properties", {}):
        answer["evidence"] = step.evidence
    return answer
