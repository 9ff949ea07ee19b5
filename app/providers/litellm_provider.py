"""The real provider: every hosted, Ollama or OpenAI-compatible model through litellm.

This module is the only importer of litellm. Retries are Jury's own (one repair re-ask), so
litellm's are turned off, and every call carries an explicit timeout.
"""

from __future__ import annotations

import os
from typing import Any

import litellm
from litellm import exceptions as llm_errors

from app.core.config import ModelSpec
from app.providers.base import Completion, CompletionRequest
from app.providers.chat import chat_messages, response_format
from app.providers.errors import (
    AuthError,
    BudgetExceededError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
)

litellm.telemetry = False
litellm.suppress_debug_info = True

# Local OpenAI-compatible servers take no key, but the OpenAI client insists on one.
_PLACEHOLDER_KEY = "jury-local-no-key"


class LiteLLMProvider:
    """Call models through ``litellm.acompletion`` and map its errors onto ours."""

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Send one structured-output chat call and return the raw text with usage."""
        try:
            response = await litellm.acompletion(**_call_arguments(spec, request))
        except ProviderError:
            raise
        except Exception as exc:
            raise _map_error(exc) from exc
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return Completion(
            text=choice.message.content or "",
            model=str(getattr(response, "model", None) or spec.model),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=_cost(response),
        )


def _call_arguments(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": spec.model,
        "messages": chat_messages(spec, request),
        "max_tokens": spec.max_tokens,
        "temperature": spec.temperature,
        "timeout": spec.timeout_s,
        "num_retries": 0,
    }
    if spec.api_base is not None:
        arguments["api_base"] = spec.api_base
    if spec.api_key_env is not None:
        arguments["api_key"] = os.environ.get(spec.api_key_env, "")
    elif spec.api_base is not None:
        arguments["api_key"] = _PLACEHOLDER_KEY
    fmt = response_format(spec, request)
    if fmt is not None:
        arguments["response_format"] = fmt
    return arguments


def _cost(response: Any) -> float:
    # litellm has already priced the response (None: it could not). Pricing it a second time
    # cost a tenth of the call's CPU in `jury bench`'s profile, raising for unpriced models.
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict) and "response_cost" in hidden:
        return float(hidden["response_cost"] or 0.0)
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:
        # Unknown prices (local and self-hosted models) cost nothing we can measure.
        return 0.0


def _map_error(exc: Exception) -> ProviderError:
    """Translate a litellm/OpenAI exception into Jury's typed failure."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, llm_errors.BudgetExceededError):
        return BudgetExceededError(detail)
    if isinstance(exc, llm_errors.Timeout | TimeoutError):
        return ProviderTimeoutError(detail)
    if isinstance(exc, llm_errors.RateLimitError):
        return ProviderRateLimitedError(detail)
    if isinstance(exc, llm_errors.AuthenticationError | llm_errors.PermissionDeniedError):
        return AuthError(detail)
    if isinstance(
        exc,
        llm_errors.BadRequestError
        | llm_errors.NotFoundError
        | llm_errors.UnprocessableEntityError
        | llm_errors.PaymentRequiredError,
    ):
        return ProviderRequestError(detail)
    return ProviderServerError(detail)


def missing_credentials(model: str, environ: dict[str, str]) -> list[str]:
    """Return the environment variables litellm says ``model`` needs and ``environ`` lacks."""
    report = litellm.validate_environment(model=model)
    if report.get("keys_in_environment"):
        return []
    return [key for key in report.get("missing_keys", []) if not environ.get(key)]
