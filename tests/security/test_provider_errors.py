"""Provider error text is scrubbed of keys: an upstream that echoes them leaks them nowhere.

A fake OpenAI-compatible upstream on loopback answers every call with an error that echoes the
Authorization header it received (the juror's own key, a canary) and other credential-shaped
canaries. After a verdict, no canary appears in a database row, a response, the verdict's
event stream, the metrics or a log line, while the failures are still recorded with their kind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from prometheus_client import generate_latest
from sqlalchemy import text

from app.core.config import JuryConfig, ModelSpec
from app.core.db import create_engine
from app.core.secrets import scrub
from app.providers.errors import MAX_DETAIL_CHARS, ProviderError
from app.providers.hub import ProviderHub, bounded_detail
from eval.chat_upstreams import chat_upstream
from tests.builders import app_client, juror_request, make_settings, scripted_config, step
from tests.providers.litellm_upstreams import closing_litellm_clients

pytestmark = pytest.mark.anyio

KEY_ENV = "JURY_TEST_CANARY_KEY"
# The juror's own key: no known credential shape, so only knowing it can find it.
OWN_KEY = "canary-own-key-5f3e9a1c7b2d"
# Credential-shaped canaries the upstream adds to its errors; none is a live credential.
ECHOED = {
    "github_token": "ghp_CanaryGitHubToken1111111111111111111",
    "openai_key": "sk-proj-CanaryOpenAIKey2222222222222222",
    "password": "canary-upstream-password-33",
}
CANARIES = (OWN_KEY, *ECHOED.values())


def _leaks(value: str) -> list[str]:
    return [canary for canary in CANARIES if canary in value]


async def _echo_error(request: web.Request) -> web.Response:
    """Refuse the call, echoing what it was sent as a careless upstream or gateway would."""
    authorization = request.headers.get("Authorization", "")
    message = (
        f"Incorrect API key provided: {authorization.removeprefix('Bearer ')}. "
        f"Upstream token {ECHOED['github_token']} / {ECHOED['openai_key']}; "
        f"database password={ECHOED['password']}; echoed header: {authorization}"
    )
    status = 401 if "own-key" in authorization else 500
    return web.json_response({"error": {"message": message, "type": "invalid"}}, status=status)


@asynccontextmanager
async def echoing_upstream() -> AsyncIterator[str]:
    """Serve the echoing upstream on a free loopback port; yield its ``/v1`` base URL."""
    async with chat_upstream(_echo_error) as api_base:
        yield api_base


def _config(api_base: str) -> JuryConfig:
    """Two scripted jurors that answer, and two on the upstream: through litellm, and direct."""
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]},
        extra_jurors=[
            {
                "name": "hosted",
                "model": "openai/leaky-model",
                "family": "family-hosted",
                "api_base": api_base,
                "api_key_env": KEY_ENV,
                "timeout_s": 10,
            },
            {
                "name": "direct",
                "model": "openai/leaky-model",
                "family": "family-direct",
                "api_base": api_base,
                "transport": "openai_compatible",
                "timeout_s": 10,
            },
        ],
        max_rounds=1,
        quorum=2,
    )


async def _database_text(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = ("verdicts", "model_calls")
            rows: list[str] = []
            for table in tables:
                result = await connection.execute(text(f"SELECT * FROM {table}"))
                rows += [json.dumps(list(row), default=str) for row in result]
    finally:
        await engine.dispose()
    return "\n".join(rows)


async def test_an_upstream_echoing_keys_leaks_them_nowhere(
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, OWN_KEY)
    caplog.set_level(logging.DEBUG)
    async with (
        echoing_upstream() as api_base,
        app_client(make_settings(database_url), _config(api_base)) as client,
    ):
        answered = await client.post("/verdict", json={"question": "Ship it?"})
        verdict_id = answered.json()["id"]
        fetched = await client.get(f"/verdicts/{verdict_id}")
        events = await client.get(f"/verdicts/{verdict_id}/events")
        metrics = await client.get("/metrics")

    assert answered.status_code == 200, answered.text
    failures = {
        position["juror"]: (position["failure"]["kind"], position["failure"]["detail"])
        for position in fetched.json()["rounds"][0]["positions"]
        if position["failure"]
    }
    # The failures are on record, with their kind and the upstream's words, minus the keys.
    assert failures["hosted"][0] == "auth"
    assert failures["direct"][0] == "provider_error"
    assert "[REDACTED:" in failures["hosted"][1]
    assert "Incorrect API key provided" in failures["direct"][1]
    for response in (answered, fetched, events, metrics):
        assert _leaks(response.text) == [], response.text
    assert _leaks(await _database_text(database_url)) == []
    assert _leaks(caplog.text) == []
    assert _leaks("".join(capfd.readouterr())) == []
    assert _leaks(generate_latest().decode()) == []


@pytest.mark.parametrize(
    ("detail", "kept"),
    [
        (f"HTTP 401: Incorrect API key provided: {OWN_KEY}.", "Incorrect API key provided: "),
        (f'{{"headers": {{"Authorization": "Bearer {OWN_KEY}"}}}}', "Authorization"),
        (f"https://api.example/v1?key={json.dumps(OWN_KEY)}", "https://api.example/v1"),
        # A provider bounds its text: the bound may fall inside the key.
        (f"HTTP 500: request echoed: api-{OWN_KEY[:12]}", "request echoed"),
        (f"HTTP 502: {ECHOED['github_token']} rejected", "rejected"),
        (f"token: {ECHOED['password']}", "token: "),
    ],
)
def test_scrub_removes_own_keys_in_any_spelling_and_credential_shapes(
    detail: str, kept: str
) -> None:
    scrubbed = scrub(detail, [OWN_KEY])

    assert _leaks(scrubbed) == []
    assert OWN_KEY[:8] not in scrubbed
    assert kept in scrubbed
    assert "[REDACTED:" in scrubbed


@pytest.mark.parametrize(
    "detail",
    [
        "HTTP 404: The model `gpt-5-mini` does not exist or you do not have access to it.",
        "HTTP 400: max_tokens: 4096 is too large; token limit exceeded",
        "RateLimitError: rate limit reached for requests, retry after 20s",
    ],
)
def test_scrub_leaves_plain_error_text_alone(detail: str) -> None:
    assert scrub(detail, [OWN_KEY]) == detail


def test_a_short_configured_key_is_not_scrubbed_out_of_every_word() -> None:
    assert scrub("the request failed", ["e"]) == "the request failed"


# A key Jury did not send, so only its shape (``sk-`` and 16 or more characters) finds it.
CUT_KEY = "sk-CanaryCutKey44444444444444444444"


async def _long_refusal(request: web.Request) -> web.Response:
    """Refuse with the key after as many characters as the model name says (``pad-447``)."""
    body = await request.json()
    padding = int(str(body["model"]).rsplit("-", 1)[-1])
    message = f"{'x' * padding} see {CUT_KEY} for details"
    return web.json_response({"error": {"message": message, "type": "invalid"}}, status=401)


@pytest.mark.parametrize("transport", ["litellm", "openai_compatible"])
async def test_a_key_where_the_length_bound_falls_is_redacted_not_cut(transport: str) -> None:
    # Paddings that put the 500-character bound before, inside and after the key, whatever
    # each transport writes in front of the upstream's message.
    paddings = range(300, 520, 6)
    hub = ProviderHub(scripted_config(jurors={"alpha": [step("approve")]}, quorum=1))
    details: list[str] = []
    async with closing_litellm_clients(chat_upstream(_long_refusal)) as api_base:
        for padding in paddings:
            spec = ModelSpec(
                name="refusing",
                model=f"openai/pad-{padding}",
                family="fake",
                api_base=api_base,
                transport=transport,  # type: ignore[arg-type]
            )
            with pytest.raises(ProviderError) as caught:
                await hub.complete(spec, juror_request())
            details.append(caught.value.detail)
    await hub.aclose()

    assert all(len(detail) <= MAX_DETAIL_CHARS for detail in details)
    assert [detail for detail in details if CUT_KEY[:8] in detail] == []
    assert any("[REDACTED:" in detail for detail in details)
    # No detail ends in a placeholder cut in two.
    assert [detail for detail in details if "[REDACTED:" in detail.rsplit("]", 1)[-1]] == []


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("short", "short"),
        ("a" * 600, "a" * MAX_DETAIL_CHARS),
        ("a" * 490 + "[REDACTED:api_key] more", "a" * 490),
        ("a" * 480 + "[REDACTED:api_key]" + "b" * 50, "a" * 480 + "[REDACTED:api_key]" + "b" * 2),
    ],
)
def test_a_detail_is_cut_to_its_bound_never_through_a_placeholder(
    detail: str, expected: str
) -> None:
    assert bounded_detail(detail) == expected
