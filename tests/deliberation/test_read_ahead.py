"""A local judge's server reads the judge's prompt ahead while the jurors deliberate.

The judge here is a local model reached over loopback (a fake OpenAI-compatible upstream that
keeps every request it is sent); the jurors are scripted. What is checked is what the server
is asked: each read-ahead is a prefix of the judge's call, so its prompt cache is reused.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from app.core.config import JuryConfig
from app.deliberation.protocol import deliberate
from app.providers.hub import ProviderHub
from eval.chat_upstreams import chat_upstream
from tests.builders import scripted_config, step

from .test_protocol import GUARD_S, Notes, hearing

pytestmark = pytest.mark.anyio

JUDGE_ANSWER = {
    "verdict": "approve",
    "confidence": 0.9,
    "disagreement": "The jurors agreed.",
    "dissenter_notes": [],
}


def _completion(content: str) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }


@asynccontextmanager
async def judge_upstream(
    *, read_ahead_status: int = 200
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """Serve a local judge that keeps what it is sent; read-aheads answer ``read_ahead_status``."""
    received: list[dict[str, Any]] = []

    async def answer(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        received.append(body)
        if "response_format" not in body:
            if read_ahead_status != 200:
                return web.json_response({"error": {"message": "down"}}, status=read_ahead_status)
            return web.json_response(_completion("{"))
        return web.json_response(_completion(json.dumps(JUDGE_ANSWER)))

    handler: Callable[[web.Request], Awaitable[web.Response]] = answer
    async with chat_upstream(handler) as api_base:
        yield api_base, received


def local_judge_config(api_base: str) -> JuryConfig:
    """Scripted jurors split in round 1 and agreeing in round 2; a local judge at ``api_base``."""
    return scripted_config(
        jurors={
            "a": [step("approve"), step("approve")],
            "b": [step("approve"), step("approve")],
            "c": [step("reject"), step("approve")],
        },
        judge_overrides={
            "model": "openai/local-judge",
            "script": None,
            "local": {"catalog": "qwen2.5-coder-1.5b", "port": 8599},
            "api_base": api_base,
            "transport": "openai_compatible",
            "structured_output": "json_object_schema",
        },
    )


async def _deliberate(config: JuryConfig) -> Notes:
    notes = Notes()
    hub = ProviderHub(config)
    try:
        with anyio.fail_after(GUARD_S):
            transcript = await deliberate(hub, hearing(config), notes)
    finally:
        await hub.aclose()
    assert transcript.judge is not None
    return notes


def _user_turn(body: dict[str, Any]) -> str:
    (user,) = [m["content"] for m in body["messages"] if m["role"] == "user"]
    return str(user)


async def test_each_read_ahead_is_a_prefix_of_the_judges_call() -> None:
    async with judge_upstream() as (api_base, received):
        notes = await _deliberate(local_judge_config(api_base))

    assert notes.judged[0].answer is not None
    (call,) = [body for body in received if "response_format" in body]
    read_aheads = [body for body in received if "response_format" not in body]
    # One before round 1 and one before round 2; none after the last round.
    assert len(read_aheads) == 2
    assert all(body["max_tokens"] == 1 for body in read_aheads)
    openings = sorted((_user_turn(body) for body in read_aheads), key=len)
    assert openings[0].endswith("Round 1:\n")
    assert openings[1].endswith("Round 2:\n")
    assert "Juror A: approve" in openings[1] or "Juror A: reject" in openings[1]
    for opening in openings:
        assert _user_turn(call).startswith(opening)
    assert {m["content"] for b in read_aheads for m in b["messages"] if m["role"] == "system"} == {
        next(m["content"] for m in call["messages"] if m["role"] == "system")
    }


async def test_a_failed_read_ahead_is_counted_and_the_verdict_goes_on() -> None:
    def failed() -> float:
        sample = REGISTRY.get_sample_value(
            "jury_judge_read_aheads_total", {"judge": "judge", "outcome": "provider_error"}
        )
        return sample or 0.0

    before = failed()
    async with judge_upstream(read_ahead_status=500) as (api_base, received):
        notes = await _deliberate(local_judge_config(api_base))

    judged = notes.judged[0]
    assert judged.answer is not None
    assert judged.answer.verdict == "approve"
    assert len(received) == 3
    assert failed() - before == 2


async def test_a_scripted_or_hosted_judge_is_never_read_ahead() -> None:
    config = scripted_config(jurors={"a": [step("approve")], "b": [step("reject")]})
    judge = config.judge_for(config.panels["default"])
    assert judge is not None
    hub = ProviderHub(config)
    try:
        assert not hub.reads_ahead(judge)
        hosted = judge.model_copy(update={"model": "openai/gpt-4o-mini", "script": None})
        assert not hub.reads_ahead(hosted)
    finally:
        await hub.aclose()
