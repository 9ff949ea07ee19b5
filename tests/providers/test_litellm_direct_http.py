"""Jury's litellm calls skip the httpx client around litellm's transport, and nothing else.

Real litellm calls to aiohttp upstreams on loopback. What reaches the upstream, what comes
back and every failure must be what litellm's own client path gives; only the path differs,
which a spy on ``httpx.AsyncClient.send`` (it still sends) tells apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import litellm
import pytest
from aiohttp import web
from litellm import exceptions as llm_errors
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

from app.core.config import ModelSpec
from app.providers.errors import ProviderRequestError, ProviderServerError, ProviderTimeoutError
from app.providers.litellm_http import parsed_url, sends_directly
from app.providers.litellm_provider import LiteLLMProvider, _call_arguments, _map_error
from eval.chat_upstreams import CHAT_PATH, loopback_upstream
from eval.perf.upstream import completion
from tests.builders import juror_request
from tests.providers.litellm_upstreams import closing_litellm_clients

pytestmark = pytest.mark.anyio

REDIRECTED_PATH = "/v2/chat/completions"


class Upstream:
    """Answers like a structured-output model and keeps every request it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            }
        )
        _, answer = completion(await request.json(), len(self.requests))
        return web.Response(body=answer, content_type="application/json")


@asynccontextmanager
async def serving(routes: dict[str, Any]) -> AsyncIterator[str]:
    """Serve ``routes``; close litellm's pooled connections to them before they stop."""
    async with closing_litellm_clients(loopback_upstream(routes)) as base:
        yield base


@pytest.fixture
def client_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the requests httpx's client sends (it still sends every one)."""
    sent: list[str] = []
    send = httpx.AsyncClient.send

    async def counted(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        sent.append(str(request.url))
        return await send(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", counted)
    return sent


def spec_on(base: str, *, timeout_s: float = 30.0) -> ModelSpec:
    return ModelSpec(
        name="direct", model="openai/fake-a", family="fake", api_base=base, timeout_s=timeout_s
    )


async def test_a_call_reaches_the_upstream_as_litellm_s_client_sends_it(
    client_sends: list[str],
) -> None:
    upstream = Upstream()
    provider = LiteLLMProvider()
    async with serving({CHAT_PATH: upstream.answer}) as base:
        spec = spec_on(base)
        answer = await provider.complete(spec, juror_request())
        assert client_sends == []  # Jury's call: straight through the transport
        reference = await litellm.acompletion(**_call_arguments(spec, juror_request()))
        assert len(client_sends) == 1  # anyone else's: litellm's client, as before
    direct, through_client = upstream.requests
    assert direct == through_client
    assert direct["headers"]["user-agent"].startswith("litellm/")
    assert direct["headers"]["authorization"].startswith("Bearer ")
    assert answer.text == reference.choices[0].message.content
    assert answer.prompt_tokens == reference.usage.prompt_tokens > 0


async def test_a_redirect_is_followed_as_litellm_s_client_follows_it(
    client_sends: list[str],
) -> None:
    upstream = Upstream()

    async def moved(request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPTemporaryRedirect(REDIRECTED_PATH)

    provider = LiteLLMProvider()
    async with serving({CHAT_PATH: moved, REDIRECTED_PATH: upstream.answer}) as base:
        answer = await provider.complete(spec_on(base), juror_request())
    assert [r["path"] for r in upstream.requests] == [REDIRECTED_PATH]
    assert upstream.requests[0]["method"] == "POST"
    assert answer.text.startswith("{")
    assert len(client_sends) == 1  # the redirect went back to litellm's client, which followed


async def test_a_slow_upstream_is_a_typed_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=500)

    provider = LiteLLMProvider()
    async with serving({CHAT_PATH: slow}) as base:
        with pytest.raises(ProviderTimeoutError) as caught:
            await provider.complete(spec_on(base, timeout_s=0.2), juror_request())
    assert "timed out" in caught.value.detail.lower()


async def test_a_refused_connection_is_retried_once_then_a_typed_failure(
    client_sends: list[str],
) -> None:
    async with serving({}) as base:
        pass  # the port is free again: nothing listens there now
    with pytest.raises(ProviderServerError) as caught:
        await LiteLLMProvider().complete(spec_on(base), juror_request())
    assert "connect" in caught.value.detail.lower()
    assert client_sends == [f"{base}/chat/completions"]  # litellm's retry on a fresh client


async def test_an_error_status_fails_as_it_does_on_litellm_s_client(
    client_sends: list[str],
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        error = {"error": {"message": "refused https://x.test/v1", "type": "x"}}
        return web.json_response(error, status=400)

    async with serving({CHAT_PATH: refuse}) as base:
        spec = spec_on(base)
        with pytest.raises(ProviderRequestError) as direct:
            await LiteLLMProvider().complete(spec, juror_request())
        assert client_sends == []
        with pytest.raises(llm_errors.BadRequestError) as through_client:
            await litellm.acompletion(**_call_arguments(spec, juror_request()))
        assert len(client_sends) == 1
    assert direct.value.detail == _map_error(through_client.value).detail
    assert "refused https://x.test" in direct.value.detail


async def test_a_call_goes_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, client_sends: list[str]
) -> None:
    upstream = Upstream()
    async with serving({CHAT_PATH: upstream.answer}) as base:
        proxy = base.removesuffix("/v1")
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("http_proxy", proxy)
        # A host nobody could resolve: only the proxy can carry the call.
        answer = await LiteLLMProvider().complete(
            spec_on("http://jury-behind-a-proxy.invalid/v1"), juror_request()
        )
    assert answer.text.startswith("{")
    assert upstream.requests[0]["headers"]["host"] == "jury-behind-a-proxy.invalid"
    assert client_sends == []  # the transport, which reads the proxy, sent it directly


def test_only_a_client_with_nothing_to_add_is_bypassed(anyio_backend: str) -> None:
    plain = AsyncHTTPHandler(timeout=5).client
    assert sends_directly(plain)
    hooked = httpx.AsyncClient(transport=plain._transport, event_hooks={"request": [print]})
    with_auth = httpx.AsyncClient(transport=plain._transport, auth=("user", "secret"))
    with_base = httpx.AsyncClient(transport=plain._transport, base_url="http://127.0.0.1:1")
    with_query = httpx.AsyncClient(transport=plain._transport, params={"key": "k"})
    on_httpx_transport = httpx.AsyncClient()
    for client in (hooked, with_auth, with_base, with_query, on_httpx_transport):
        assert not sends_directly(client)


def test_a_url_is_parsed_once_and_stays_the_same(anyio_backend: str) -> None:
    url = "http://127.0.0.1:9/v1/chat/completions?key=a%2Fb"
    assert parsed_url(url) is parsed_url(url)
    assert parsed_url(url) == httpx.URL(url)
    assert str(parsed_url(url)) == url
