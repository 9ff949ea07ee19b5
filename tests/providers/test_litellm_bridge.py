"""Jury's calls reach the endpoint litellm routes them to, with litellm's Responses API question
asked once per model (``install_bridge_memo``).

Real litellm calls against a loopback server that records the paths it is asked for.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import litellm
import litellm.main as litellm_main
import pytest
from aiohttp import web

from app.core.config import ModelSpec
from app.providers.errors import ProviderError
from app.providers.litellm_provider import LiteLLMProvider, install_bridge_memo
from eval.chat_upstreams import CHAT_PATH, loopback_upstream
from tests.builders import juror_request
from tests.providers.litellm_upstreams import closing_litellm_clients

pytestmark = pytest.mark.anyio

RESPONSES_PATH = "/v1/responses"


@asynccontextmanager
async def recording_upstream(paths: list[str]) -> AsyncIterator[str]:
    """Serve both endpoints on a free loopback port, refusing every call; record the paths."""

    async def refuse(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.json_response({"error": {"message": "refused", "type": "x"}}, status=500)

    routes = {CHAT_PATH: refuse, RESPONSES_PATH: refuse}
    async with closing_litellm_clients(loopback_upstream(routes)) as api_base:
        yield api_base


def _fresh_model() -> str:
    return f"openai/jury-bridge-{secrets.token_hex(4)}"


def _register(model: str, mode: str) -> None:
    litellm.register_model(
        {
            model: {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "litellm_provider": "openai",
                "mode": mode,
            }
        }
    )


async def _call_twice(provider: LiteLLMProvider, model: str, base: str) -> None:
    spec = ModelSpec(name="bridged", model=model, family="fake", api_base=base)
    for _ in range(2):
        with pytest.raises(ProviderError):
            await provider.complete(spec, juror_request())


async def test_a_chat_model_goes_to_chat_completions_on_every_call() -> None:
    paths: list[str] = []
    async with recording_upstream(paths) as base:
        await _call_twice(LiteLLMProvider(), _fresh_model(), base)
    assert paths == [CHAT_PATH, CHAT_PATH]


async def test_a_model_litellm_bridges_goes_to_the_responses_api_on_every_call() -> None:
    model = _fresh_model()
    _register(model, "responses")
    paths: list[str] = []
    async with recording_upstream(paths) as base:
        await _call_twice(LiteLLMProvider(), model, base)
    assert paths == [RESPONSES_PATH, RESPONSES_PATH]


async def test_a_model_re_registered_for_the_responses_api_is_routed_there_at_once() -> None:
    model = _fresh_model()
    _register(model, "chat")
    provider = LiteLLMProvider()
    paths: list[str] = []
    async with recording_upstream(paths) as base:
        await _call_twice(provider, model, base)
        _register(model, "responses")
        await _call_twice(provider, model, base)
    assert paths == [CHAT_PATH, CHAT_PATH, RESPONSES_PATH, RESPONSES_PATH]


def test_the_memo_is_installed_once(anyio_backend: str) -> None:
    LiteLLMProvider()
    installed = litellm_main.responses_api_bridge_check
    install_bridge_memo()
    assert litellm_main.responses_api_bridge_check is installed
