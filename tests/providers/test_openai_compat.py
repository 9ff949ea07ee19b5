"""The direct OpenAI-compatible provider: same request as litellm's, same typed failures."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.config import ModelSpec
from app.deliberation.answers import JUROR_SCHEMA_NAME, parse_juror_answer
from app.providers.errors import (
    RAW_DETAIL_CHARS,
    AuthError,
    FailureKind,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeoutError,
)
from app.providers.hub import ProviderHub
from app.providers.openai_compat import (
    OpenAICompatibleProvider,
    parse_completion,
    request_body,
    status_error,
)
from tests.builders import juror_request, scripted_config, step
from tests.perf.upstream_server import fake_upstream

pytestmark = pytest.mark.anyio

OPTIONS = ("approve", "reject")


def spec(**overrides: Any) -> ModelSpec:
    """Return a juror on a keyless OpenAI-compatible server."""
    values: dict[str, Any] = {
        "name": "fake-c",
        "model": "openai/fake-c",
        "family": "fake",
        "api_base": "http://127.0.0.1:9/v1",
        "transport": "openai_compatible",
        "timeout_s": 5,
        **overrides,
    }
    return ModelSpec(**values)


async def test_a_call_returns_the_models_text_and_usage() -> None:
    provider = OpenAICompatibleProvider()
    try:
        async with fake_upstream() as base:
            completion = await provider.complete(spec(api_base=base), juror_request())
    finally:
        await provider.aclose()

    assert parse_juror_answer(completion.text, OPTIONS).position == "reject"
    assert completion.model == "fake-c"
    assert completion.prompt_tokens > 0
    assert completion.cost_usd == 0.0


def test_the_body_is_the_litellm_request_without_the_provider_prefix() -> None:
    body = request_body(spec(max_tokens=64, temperature=0.2), juror_request())

    assert body["model"] == "fake-c"
    assert body["messages"][1] == {"role": "user", "content": "Ok?"}
    assert (body["max_tokens"], body["temperature"]) == (64, 0.2)
    assert body["response_format"]["json_schema"]["name"] == JUROR_SCHEMA_NAME
    assert "frequency_penalty" not in body


def test_a_frequency_penalty_is_sent_only_by_the_direct_transport() -> None:
    assert request_body(spec(frequency_penalty=0.5), juror_request())["frequency_penalty"] == 0.5
    with pytest.raises(ValueError, match="frequency_penalty needs transport openai_compatible"):
        spec(transport="litellm", frequency_penalty=0.5)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (408, ProviderTimeoutError),
        (429, ProviderRateLimitedError),
        (401, AuthError),
        (403, AuthError),
        (400, ProviderRequestError),
        (404, ProviderRequestError),
        (422, ProviderRequestError),
        (500, ProviderServerError),
        (502, ProviderServerError),
        (503, ProviderServerError),
    ],
)
def test_http_errors_map_onto_the_typed_failures(
    status: int, expected: type[ProviderError]
) -> None:
    error = status_error(status, "x" * 5_000)

    assert type(error) is expected
    assert error.detail.startswith(f"HTTP {status}")
    # Bounded here, cut to MAX_DETAIL_CHARS by the hub once scrubbed.
    assert len(error.detail) == RAW_DETAIL_CHARS


def test_a_body_that_is_not_a_chat_completion_is_a_server_error() -> None:
    with pytest.raises(ProviderServerError, match="not a chat completion"):
        parse_completion(spec(), b'{"choices": []}')


async def test_a_refused_connection_is_a_server_error() -> None:
    provider = OpenAICompatibleProvider()
    try:
        with pytest.raises(ProviderServerError) as caught:
            await provider.complete(spec(api_base="http://127.0.0.1:1/v1"), juror_request())
    finally:
        await provider.aclose()

    assert caught.value.kind == FailureKind.PROVIDER_ERROR


async def test_a_slow_server_is_a_timeout() -> None:
    provider = OpenAICompatibleProvider()
    try:
        async with fake_upstream(latency_ms=2_000) as base:
            with pytest.raises(ProviderTimeoutError):
                await provider.complete(spec(api_base=base, timeout_s=0.2), juror_request())
    finally:
        await provider.aclose()


async def test_the_hub_routes_openai_compatible_models_to_the_direct_provider() -> None:
    config = scripted_config(jurors={"alpha": [step("approve")], "bravo": [step("reject")]})
    hub = ProviderHub(config)
    try:
        async with fake_upstream() as base:
            completion = await hub.complete(spec(api_base=base), juror_request())
    finally:
        await hub.aclose()

    assert completion.model == "fake-c"


@pytest.mark.parametrize(
    "overrides",
    [{"api_base": None}, {"api_key_env": "OPENAI_API_KEY"}],
    ids=["no api_base", "a paid endpoint"],
)
def test_the_config_admits_the_direct_transport_only_for_keyless_servers(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="openai_compatible needs an api_base and no api_key_env"):
        spec(**overrides)
