"""What the litellm provider turns off: logging nobody reads, price searches that cannot succeed,
pricing models registered at zero cost, INFO logs on every call.

Real litellm calls against the fake OpenAI-compatible upstream on loopback.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from litellm.litellm_core_utils.litellm_logging import Logging as LiteLLMLogging

from app.core.config import ModelSpec
from app.providers.litellm_provider import (
    _CALLBACK_LISTS,
    LITELLM_LOG_ENV,
    LITELLM_LOGGERS,
    LiteLLMProvider,
    _priced_at_zero,
    knows_price,
    logging_wanted,
)
from tests.builders import juror_request
from tests.perf.upstream_server import fake_upstream
from tests.providers.litellm_upstreams import closing_litellm_clients

pytestmark = pytest.mark.anyio

PRICED_MODEL = "openai/gpt-4o-mini"
LOGGING_TASK = "_client_async_logging_helper"


@asynccontextmanager
async def upstream() -> AsyncIterator[str]:
    """Serve the fake upstream; close litellm's pooled connections to it before it stops."""
    async with closing_litellm_clients(fake_upstream()) as base:
        yield base


def unpriced_spec(api_base: str) -> ModelSpec:
    """Return a juror on a model no cost map knows (a fresh name: litellm's map is global)."""
    model = f"openai/jury-unpriced-{secrets.token_hex(4)}-c"
    return ModelSpec(name="unpriced", model=model, family="fake", api_base=api_base)


def logging_tasks() -> list[asyncio.Task[Any]]:
    """Return litellm's pending success-logging tasks (created as the call returns)."""
    return [t for t in asyncio.all_tasks() if LOGGING_TASK in t.get_coro().__qualname__]  # type: ignore[union-attr]


class Recorder(CustomLogger):
    """A litellm callback that keeps the models it saw succeed."""

    def __init__(self) -> None:
        super().__init__()
        self.models: list[str] = []
        self.seen = asyncio.Event()

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.models.append(str(kwargs.get("model")))
        self.seen.set()


async def test_without_callbacks_a_call_queues_no_litellm_logging() -> None:
    assert not logging_wanted()
    async with upstream() as base:
        completion = await LiteLLMProvider().complete(unpriced_spec(base), juror_request())
        pending = logging_tasks()

    assert completion.text
    assert pending == []


@pytest.fixture
def callback_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the test its own copies of litellm's callback lists.

    litellm moves a registered callback into its other lists on the next call: restoring
    ``litellm.callbacks`` alone would leave it registered for every later test.
    """
    for name in _CALLBACK_LISTS:
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))


@pytest.mark.usefixtures("callback_lists")
async def test_a_registered_litellm_callback_still_sees_every_call() -> None:
    recorder = Recorder()
    litellm.callbacks.append(recorder)
    assert logging_wanted()
    async with upstream() as base:
        spec = unpriced_spec(base)
        await LiteLLMProvider().complete(spec, juror_request())
        await asyncio.wait_for(recorder.seen.wait(), timeout=30)

    assert recorder.models == [spec.model.removeprefix("openai/")]


async def test_an_unpriced_model_is_registered_at_zero_cost_on_its_first_call() -> None:
    async with upstream() as base:
        spec = unpriced_spec(base)
        assert not knows_price(spec.model)
        provider = LiteLLMProvider()
        first = await provider.complete(spec, juror_request())
        second = await provider.complete(spec, juror_request())

    assert knows_price(spec.model)
    info = litellm.get_model_info(spec.model)
    assert (info["input_cost_per_token"], info["output_cost_per_token"]) == (0.0, 0.0)
    assert first.cost_usd == second.cost_usd == 0.0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_a_priced_hosted_model_keeps_its_price(anyio_backend: str) -> None:
    assert knows_price("openai/gpt-4o-mini")
    price = litellm.get_model_info("openai/gpt-4o-mini")["input_cost_per_token"]
    assert price is not None
    assert price > 0


async def test_a_call_logs_nothing_below_warning_under_an_info_root_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # the root's level in `jury serve`
    async with upstream() as base:
        provider = LiteLLMProvider()
        caplog.clear()
        await provider.complete(unpriced_spec(base), juror_request())

    chatty = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("LiteLLM") and r.levelno < logging.WARNING
    ]
    assert chatty == []


@pytest.fixture
def litellm_levels() -> Iterator[None]:
    """Put litellm's logger levels back as they were (a logger is process-wide)."""
    levels = {name: logging.getLogger(name).level for name in LITELLM_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("variable", "level"), [(None, logging.WARNING), ("DEBUG", logging.DEBUG), ("bogus", 30)]
)
@pytest.mark.usefixtures("litellm_levels")
def test_litellm_logs_at_warning_unless_litellm_log_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, level: int
) -> None:
    if variable is None:
        monkeypatch.delenv(LITELLM_LOG_ENV, raising=False)
    else:
        monkeypatch.setenv(LITELLM_LOG_ENV, variable)
    for name in LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)

    LiteLLMProvider()

    assert {logging.getLogger(name).level for name in LITELLM_LOGGERS} == {level}


def hosted_spec(api_base: str) -> ModelSpec:
    """Return a juror on a model litellm prices, served by the fake upstream."""
    return ModelSpec(name="gpt", model=PRICED_MODEL, family="openai", api_base=api_base)


async def test_a_priced_hosted_model_is_charged_litellm_s_price() -> None:
    async with upstream() as base:
        completion = await LiteLLMProvider().complete(hosted_spec(base), juror_request())

    info = litellm.get_model_info(PRICED_MODEL)
    input_price, output_price = info["input_cost_per_token"], info["output_cost_per_token"]
    assert input_price is not None
    assert output_price is not None
    expected = completion.prompt_tokens * input_price + completion.completion_tokens * output_price
    assert completion.prompt_tokens > 0
    assert completion.cost_usd > 0
    assert completion.cost_usd == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_a_zero_priced_call_is_answered_without_litellm_s_calculation(
    anyio_backend: str,
) -> None:
    LiteLLMProvider()  # installs the shortcut
    not_a_logging_object: Any = object()  # litellm's own calculation would fail on it

    with _priced_at_zero(True):
        cost = LiteLLMLogging.response_cost_calculator(not_a_logging_object, result=None)
    with pytest.raises(AttributeError):
        LiteLLMLogging.response_cost_calculator(not_a_logging_object, result=None)

    assert cost == 0.0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_the_shortcut_is_installed_once(anyio_backend: str) -> None:
    LiteLLMProvider()
    installed = LiteLLMLogging.response_cost_calculator
    LiteLLMProvider()

    assert LiteLLMLogging.response_cost_calculator is installed


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.usefixtures("callback_lists")
def test_a_registered_callback_keeps_litellm_s_calculation_for_zero_priced_calls(
    anyio_backend: str,
) -> None:
    litellm.callbacks.append(Recorder())
    LiteLLMProvider()
    not_a_logging_object: Any = object()

    with _priced_at_zero(True), pytest.raises(AttributeError):
        LiteLLMLogging.response_cost_calculator(not_a_logging_object, result=None)


async def test_only_models_registered_at_zero_cost_take_the_shortcut() -> None:
    async with upstream() as base:
        provider = LiteLLMProvider()
        unpriced = unpriced_spec(base)
        await provider.complete(unpriced, juror_request())
        await provider.complete(hosted_spec(base), juror_request())

    assert provider.priced_at_zero(unpriced.model)
    assert not provider.priced_at_zero(PRICED_MODEL)
