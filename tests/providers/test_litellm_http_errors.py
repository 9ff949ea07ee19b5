"""litellm's failures over real HTTP map onto Jury's typed errors, on the path the provider sets.

The provider sends ``openai/...`` models through litellm's own HTTP handler rather than the
OpenAI SDK (``OPENAI_HTTP_HANDLER_ENV``); the mapping tested in test_litellm_provider.py starts
from litellm's exceptions, these start from an upstream's status codes on loopback.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from app.core.config import ModelSpec
from app.providers.errors import (
    AuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderServerError,
)
from app.providers.litellm_provider import OPENAI_HTTP_HANDLER_ENV, LiteLLMProvider
from eval.chat_upstreams import chat_upstream
from tests.builders import juror_request
from tests.providers.litellm_upstreams import closing_litellm_clients

pytestmark = pytest.mark.anyio


async def _refuse(request: web.Request) -> web.Response:
    """Answer with the status the model name asks for (``openai/status-429``)."""
    body = await request.json()
    status = int(str(body["model"]).rsplit("-", 1)[-1])
    error = {"error": {"message": f"refused {status}", "type": "x"}}
    return web.json_response(error, status=status)


@asynccontextmanager
async def refusing_upstream() -> AsyncIterator[str]:
    """Serve the refusing upstream on a free loopback port; yield its ``/v1`` base URL."""
    async with closing_litellm_clients(chat_upstream(_refuse)) as api_base:
        yield api_base


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ProviderRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, ProviderRequestError),
        (422, ProviderRequestError),
        (429, ProviderRateLimitedError),
        (500, ProviderServerError),
        (503, ProviderServerError),
    ],
)
async def test_upstream_statuses_map_onto_typed_failures(
    status: int, expected: type[ProviderError]
) -> None:
    provider = LiteLLMProvider()
    assert os.environ[OPENAI_HTTP_HANDLER_ENV] == "true"
    async with refusing_upstream() as base:
        spec = ModelSpec(
            name="refusing", model=f"openai/status-{status}", family="fake", api_base=base
        )
        with pytest.raises(ProviderError) as caught:
            await provider.complete(spec, juror_request())
    assert type(caught.value) is expected
    assert f"refused {status}" in caught.value.detail


async def _odd_answer(request: web.Request) -> web.Response:
    """Answer 200 with what the model name asks for: a body that is not a chat completion."""
    body = await request.json()
    shapes: dict[str, object] = {
        "no-choices": {"id": "x", "object": "chat.completion", "choices": []},
        "null-choice": {"id": "x", "object": "chat.completion", "choices": [None]},
        "number-content": {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": 42}}],
        },
    }
    return web.json_response(shapes[str(body["model"]).removeprefix("openai/")])


@pytest.mark.parametrize(
    "model", ["openai/no-choices", "openai/null-choice", "openai/number-content"]
)
async def test_a_200_that_is_not_a_chat_completion_is_a_server_error_without_a_traceback(
    model: str,
) -> None:
    provider = LiteLLMProvider()
    async with closing_litellm_clients(chat_upstream(_odd_answer)) as base:
        spec = ModelSpec(name="odd", model=model, family="fake", api_base=base)
        with pytest.raises(ProviderError) as caught:
            await provider.complete(spec, juror_request())

    assert type(caught.value) is ProviderServerError
    assert "500 Internal Server Error" not in caught.value.detail  # the upstream answered 200
    assert "Traceback" not in caught.value.detail
    assert "site-packages" not in caught.value.detail
