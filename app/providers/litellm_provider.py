"""The real provider: every hosted, Ollama or OpenAI-compatible model through litellm.

This module and its HTTP path (litellm_http.py) are the only importers of litellm. Retries are
Jury's own (one repair re-ask), so litellm's are turned off, and every call carries an explicit
timeout.

What Jury turns off, because it spends CPU on every call for nothing Jury reads (measured in
`jury bench`'s transport comparison and with cProfile, see eval/reports/perf):

- litellm's success logging. After each call litellm builds a standard logging payload,
  prices the response a second time and queues both for its callbacks, even when no callback
  is registered. Jury registers none (its own record and metrics are the log), so while none
  is, each call runs as one of litellm's internal calls, which skip that logging. Register a
  litellm callback and the logging comes back for every later call.
- Pricing lookups that cannot succeed. litellm prices every response; for a model its cost
  map does not know (a self-hosted or fake one) it walks every provider and region variant and
  records a zero-cost diagnostic, each call. Such a model costs nothing Jury can measure, so on
  its first call it is registered at zero cost, and later calls find it at once.
- Pricing a model Jury registered at zero cost. Even registered, litellm prices each of its
  responses in full (model info twice, tiered and cached-token rates, a zero-cost diagnostic)
  to arrive at 0.0: a fifth of a call's CPU inside litellm, with no setting to skip it. While
  no litellm callback is registered, a call to such a model answers litellm's cost question
  with 0.0 at once (``install_zero_price_shortcut``). A model litellm prices keeps litellm's
  full calculation, so its cost stays litellm's.
- The OpenAI SDK under ``openai/...`` models. By default litellm sends those through the
  ``openai`` package, which walks every request parameter (the messages, the whole JSON schema)
  against its TypedDict annotations and builds its own response objects before litellm
  converts them again: a third of a call's CPU. ``EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER``
  sends them through litellm's own HTTP handler instead, the one its Anthropic, Gemini and
  other hosted providers use (same request transform, same error mapping): 4.0 against 2.6 ms
  of CPU per call on the bench's fake upstream. Set the variable to ``false`` to keep the SDK.
- litellm's INFO logs. Its loggers (``LiteLLM``, ``LiteLLM Router``, ``LiteLLM Proxy``) have no
  level of their own, so they log at the root logger's, INFO in ``jury serve``: two records per
  call ("LiteLLM completion() model= ...", "Wrapper: Completed Call"), each written by
  litellm's own handler and again by the root's (the MCP server's rich console handler, which
  lays out every line). Measured in ``jury bench``: a third of the litellm transport's CPU per
  verdict, half of it in the thread where litellm prepares each request. Their level is
  WARNING, or what ``LITELLM_LOG`` says when the operator sets it.
- Asking twice per call whether a model goes to the Responses API. ``completion()`` runs
  ``responses_api_bridge_check`` twice per call, each a full model-info lookup (8% of a call's
  instructions under callgrind). For Jury's calls (no tools, web search or reasoning options)
  its answer depends only on the model, provider, base URL and settings, so each is asked once
  and remembered (``install_bridge_memo``); every other call asks litellm each time.
- The httpx client around litellm's aiohttp transport. Each request litellm makes itself is
  built and sent by an ``httpx.AsyncClient`` that, for a chat completion, adds nothing but
  default headers: 7% of a call's instructions. Jury's plain POSTs go through the transport
  directly, as the client would send them (``litellm_http.install_direct_post``); anything
  the client would handle (a redirect, streaming, a proxy mount, auth, hooks) stays litellm's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import litellm
import litellm.main as litellm_main
from litellm import exceptions as llm_errors
from litellm._internal_context import is_internal_call
from litellm.litellm_core_utils.litellm_logging import Logging as LiteLLMLogging

from app.core.config import ModelSpec
from app.providers.base import Completion, CompletionRequest
from app.providers.chat import chat_messages, response_format
from app.providers.errors import (
    RAW_DETAIL_CHARS,
    AuthError,
    BudgetExceededError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
    status_failure,
)
from app.providers.litellm_http import install_direct_post

logger = logging.getLogger("jury.providers")

litellm.telemetry = False
litellm.suppress_debug_info = True

# litellm reads it at every call; the provider sets it unless the operator has (see above).
OPENAI_HTTP_HANDLER_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"
# litellm's loggers, by their public names, and the variable that sets litellm's log level.
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
LITELLM_LOG_ENV = "LITELLM_LOG"
# Local OpenAI-compatible servers take no key, but the OpenAI client insists on one.
_PLACEHOLDER_KEY = "jury-local-no-key"
# Every list litellm reads callbacks from: while all are empty, its logging has no reader.
_CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "service_callback",
    "_async_input_callback",
    "_async_success_callback",
    "_async_failure_callback",
)


class LiteLLMProvider:
    """Call models through ``litellm.acompletion`` and map its errors onto ours."""

    def __init__(self) -> None:
        self._priced: set[str] = set()  # models whose price litellm has (or was given)
        self._zero_priced: set[str] = set()  # the models this provider registered at zero
        os.environ.setdefault(OPENAI_HTTP_HANDLER_ENV, "true")
        quiet_litellm_logs()
        install_zero_price_shortcut()
        install_bridge_memo()
        install_direct_post(_JURY_CALL)

    async def complete(self, spec: ModelSpec, request: CompletionRequest) -> Completion:
        """Send one structured-output chat call and return the raw text with usage."""
        self._ensure_priced(spec.model)
        try:
            with (
                _without_unread_logging(),
                _priced_at_zero(self.priced_at_zero(spec.model)),
                _marked(_JURY_CALL),
            ):
                response = await litellm.acompletion(**_call_arguments(spec, request))
        except ProviderError:
            raise
        except Exception as exc:
            raise _map_error(exc) from exc
        return _completion_of(spec, response)

    def warm_up(self, models: Sequence[str]) -> None:
        """Run litellm's first-call set-up for ``models`` now: blocking, meant for a thread.

        A mock call per model (litellm answers it itself, no network) runs the lazy imports
        and lookups a first real call would, a tenth of a second or more of CPU each.
        """
        for model in models:
            self._ensure_priced(model)
            try:
                with _without_unread_logging():
                    litellm.completion(
                        model=model,
                        messages=[{"role": "user", "content": "warm-up"}],
                        mock_response="{}",
                        api_key=_PLACEHOLDER_KEY,
                    )
            except Exception as exc:
                # Only a shortcut was lost: the first real call sets itself up.
                logger.debug("litellm warm-up of %s failed: %s", model, type(exc).__name__)

    def priced_at_zero(self, model: str) -> bool:
        """Return whether this provider registered ``model`` at zero cost (litellm had no price)."""
        return model in self._zero_priced

    def _ensure_priced(self, model: str) -> None:
        """Register a model litellm cannot price at zero cost, once per model."""
        if model in self._priced:
            return
        if not knows_price(model):
            register_zero_price(model)
            self._zero_priced.add(model)
        self._priced.add(model)


def knows_price(model: str) -> bool:
    """Return whether litellm's cost map prices ``model`` (a provider prefix included)."""
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return False
    return info.get("input_cost_per_token") is not None


def register_zero_price(model: str) -> None:
    """Tell litellm that ``model`` costs nothing, so that it stops searching for its price."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    _BRIDGE_ANSWERS.clear()  # a model's info changes: so may litellm's answer for it
    litellm.register_model(
        {
            model: {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "cache_creation_input_token_cost": 0.0,
                "cache_read_input_token_cost": 0.0,
                "litellm_provider": provider,
                "mode": "chat",
            }
        }
    )


def quiet_litellm_logs() -> None:
    """Log litellm's warnings and errors only, unless ``LITELLM_LOG`` names another level."""
    level = os.environ.get(LITELLM_LOG_ENV, "").upper() or "WARNING"
    if not isinstance(logging.getLevelName(level), int):
        level = "WARNING"  # litellm itself would refuse the name; Jury's calls need not
    for name in LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(level)


def logging_wanted() -> bool:
    """Return whether any litellm callback is registered (someone reads litellm's logging)."""
    return any(getattr(litellm, name, None) for name in _CALLBACK_LISTS)


@contextmanager
def _without_unread_logging() -> Iterator[None]:
    """Run the call as a litellm internal call, skipping its logging, while nobody reads it."""
    if logging_wanted():
        yield
        return
    token = is_internal_call.set(True)
    try:
        yield
    finally:
        is_internal_call.reset(token)


# Set for the duration of a call whose model Jury registered at zero cost, while no litellm
# callback is registered; litellm copies the context into the thread it prepares calls in.
_ZERO_PRICED_CALL: ContextVar[bool] = ContextVar("jury_zero_priced_call", default=False)
_SHORTCUT_MARK = "_jury_zero_price_shortcut"


@contextmanager
def _marked(mark: ContextVar[bool]) -> Iterator[None]:
    """Set ``mark`` for the calls made inside (litellm's thread gets a copy of the context)."""
    token = mark.set(True)
    try:
        yield
    finally:
        mark.reset(token)


def _priced_at_zero(zero_priced: bool) -> AbstractContextManager[None]:
    """Mark the call as one to a zero-priced model, unless someone reads litellm's logging."""
    if not zero_priced or logging_wanted():
        return nullcontext()
    return _marked(_ZERO_PRICED_CALL)


def install_zero_price_shortcut() -> None:
    """Answer litellm's cost question with 0.0 at once for a zero-priced call, once per process.

    litellm has no switch to skip pricing, and registering a zero price does not shorten it:
    ``Logging.response_cost_calculator`` (which sets ``response_cost`` on every response)
    still resolves the model's info, walks its rate tables and records a zero-cost
    diagnostic. Only calls marked by ``_priced_at_zero`` are answered here; every other call,
    in Jury or elsewhere in the process, runs litellm's own calculation unchanged.
    """
    litellm_calculation = LiteLLMLogging.response_cost_calculator
    if getattr(litellm_calculation, _SHORTCUT_MARK, False):
        return

    def response_cost_calculator(self: LiteLLMLogging, *args: Any, **kwargs: Any) -> float | None:
        if _ZERO_PRICED_CALL.get():
            return 0.0
        return litellm_calculation(self, *args, **kwargs)

    setattr(response_cost_calculator, _SHORTCUT_MARK, True)
    LiteLLMLogging.response_cost_calculator = response_cost_calculator  # type: ignore[method-assign]


# Set for the duration of one of Jury's calls; copied with the context into litellm's thread.
_JURY_CALL: ContextVar[bool] = ContextVar("jury_litellm_call", default=False)
_BRIDGE_MARK = "_jury_bridge_memo"
# litellm's answers for Jury's calls: (model info, model) by model, provider, base URL, settings.
_BRIDGE_ANSWERS: dict[tuple[object, ...], tuple[dict[str, Any], str]] = {}


def install_bridge_memo() -> None:
    """Ask litellm once per model whether Jury's calls to it go to the Responses API.

    ``completion()`` asks twice per call (``responses_api_bridge_check``), each time resolving
    the model's info. The answer to a call without tools, web search or reasoning options (all
    of Jury's) depends on the model, provider and base URL, litellm's global routing switch
    and base URL, the OpenAI base URL variables and the cost map (its size and the model's
    registered mode), which are the memo's key; the memo is emptied when the provider registers
    a model. Any other call is litellm's own.
    """
    litellm_check = litellm_main.responses_api_bridge_check
    if getattr(litellm_check, _BRIDGE_MARK, False):
        return

    def responses_api_bridge_check(
        model: str,
        custom_llm_provider: str,
        web_search_options: Any = None,
        tools: Any = None,
        reasoning_effort: Any = None,
        reasoning_summary: Any = None,
        api_base: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        plain = (web_search_options, tools, reasoning_effort, reasoning_summary) == (None,) * 4
        if not (plain and _JURY_CALL.get()):
            return litellm_check(
                model,
                custom_llm_provider,
                web_search_options=web_search_options,
                tools=tools,
                reasoning_effort=reasoning_effort,
                reasoning_summary=reasoning_summary,
                api_base=api_base,
            )
        key = _bridge_key(model, custom_llm_provider, api_base)
        answer = _BRIDGE_ANSWERS.get(key)
        if answer is None:
            info, routed = litellm_check(model, custom_llm_provider, api_base=api_base)
            answer = _BRIDGE_ANSWERS[key] = (dict(info), routed)
        return dict(answer[0]), answer[1]

    setattr(responses_api_bridge_check, _BRIDGE_MARK, True)
    litellm_main.responses_api_bridge_check = responses_api_bridge_check


def _bridge_key(model: str, provider: str, api_base: str | None) -> tuple[object, ...]:
    return (
        model,
        provider,
        api_base,
        litellm.route_all_chat_openai_to_responses,
        litellm.api_base,
        os.environ.get("OPENAI_BASE_URL"),
        os.environ.get("OPENAI_API_BASE"),
        id(litellm.model_cost),
        len(litellm.model_cost),
        _registered_mode(model),
        _registered_mode(f"{provider}/{model}"),
    )


def _registered_mode(name: str) -> object:
    entry = litellm.model_cost.get(name)
    return entry.get("mode") if isinstance(entry, dict) else None


def _call_arguments(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": spec.model,
        "messages": chat_messages(spec, request.messages),
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


def _completion_of(spec: ModelSpec, response: Any) -> Completion:
    """Read litellm's answer, or raise ``ProviderServerError`` for one that is not a completion.

    litellm passes some odd answers through as objects (``choices: []`` is one): reading them
    must fail this call, typed, not the verdict.
    """
    try:
        message = response.choices[0].message
        usage = getattr(response, "usage", None)
        return Completion(
            text=message.content or "",
            model=str(getattr(response, "model", None) or spec.model),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=_cost(response),
        )
    except (IndexError, AttributeError, TypeError, ValueError) as exc:
        detail = f"{spec.name}: not a chat completion ({type(exc).__name__}): {response!r}"
        raise ProviderServerError(detail[:RAW_DETAIL_CHARS]) from exc


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


def _without_traceback(text: str) -> str:
    """Return ``text`` before the Python traceback litellm writes into some messages.

    ("Invalid response object Traceback (most recent call last): File …/litellm/…"): the
    server's file paths and litellm's internals say nothing about the upstream's fault.
    """
    return text.split("Traceback (most recent call last)", 1)[0].rstrip()


def _map_error(exc: Exception) -> ProviderError:
    """Translate a litellm/OpenAI exception into Jury's typed failure."""
    detail = _without_traceback(f"{type(exc).__name__}: {exc}")[:RAW_DETAIL_CHARS]
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
    status = getattr(exc, "status_code", None)
    if isinstance(exc, llm_errors.APIError) and isinstance(status, int):
        # What litellm left generic (a 403 from an OpenAI-compatible server) by its status.
        return status_failure(status, detail)
    return ProviderServerError(detail)


def missing_credentials(model: str, environ: dict[str, str]) -> list[str]:
    """Return the environment variables litellm says ``model`` needs and ``environ`` lacks."""
    report = litellm.validate_environment(model=model)
    if report.get("keys_in_environment"):
        return []
    return [key for key in report.get("missing_keys", []) if not environ.get(key)]


def known_price_per_mtok(model: str) -> float | None:
    """Return litellm's list price of ``model`` in USD per million tokens (the mean of its
    input and output prices), or None when its cost map does not know the model."""
    entry = litellm.model_cost.get(model) or litellm.model_cost.get(model.split("/", 1)[-1])
    if not isinstance(entry, dict):
        return None
    prices = [entry.get("input_cost_per_token"), entry.get("output_cost_per_token")]
    known = [float(p) for p in prices if isinstance(p, int | float)]
    return sum(known) / len(known) * 1_000_000 if known else None
