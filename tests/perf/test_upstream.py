"""The fake upstream answers valid juror and judge JSON, split by alias, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.deliberation.answers import (
    JUDGE_SCHEMA_NAME,
    JUROR_SCHEMA_NAME,
    judge_schema,
    juror_schema,
    parse_judge_answer,
    parse_juror_answer,
)
from eval.perf.upstream import answer_for, juror_position
from tests.perf.upstream_server import fake_upstream

pytestmark = pytest.mark.anyio

OPTIONS = ("approve", "reject")


def chat(model: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a structured-output chat request as Jury's providers send it."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Ship it?"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        },
    }


@pytest.mark.parametrize(
    ("model", "position"),
    [("fake-a", "approve"), ("openai/fake-b", "approve"), ("fake-c", "reject")],
)
async def test_jurors_answer_valid_json_that_splits_two_to_one(model: str, position: str) -> None:
    async with fake_upstream() as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.post(
            "/chat/completions", json=chat(model, JUROR_SCHEMA_NAME, juror_schema(OPTIONS))
        )

    assert response.status_code == 200
    body = response.json()
    answer = parse_juror_answer(body["choices"][0]["message"]["content"], OPTIONS)
    assert answer.position == position
    assert body["usage"]["completion_tokens"] > 0


async def test_the_judge_answers_a_valid_verdict() -> None:
    async with fake_upstream() as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.post(
            "/chat/completions", json=chat("fake-judge", JUDGE_SCHEMA_NAME, judge_schema(OPTIONS))
        )

    # The panel splits two to one, so the disagreement must name both sides to validate.
    content = response.json()["choices"][0]["message"]["content"]
    answer = parse_judge_answer(content, OPTIONS, ["approve", "approve", "reject"])
    assert answer.verdict == "approve"


async def test_one_connection_serves_many_requests_and_counts_them() -> None:
    request = chat("fake-a", JUROR_SCHEMA_NAME, juror_schema(OPTIONS))
    async with fake_upstream() as base, httpx.AsyncClient(base_url=base) as client:
        for _ in range(3):
            assert (await client.post("/chat/completions", json=request)).status_code == 200
        stats = (await client.get(base.removesuffix("/v1") + "/stats")).json()
        missing = await client.get("/nowhere")

    assert stats["juror"] == 3
    assert missing.status_code == 404


async def test_control_changes_the_latency() -> None:
    async with fake_upstream() as base, httpx.AsyncClient() as client:
        root = base.removesuffix("/v1")
        response = await client.post(
            f"{root}/control", json={"latency_ms": 1000, "dist": "lognormal", "sigma": 0.1}
        )

    assert response.json() == {"latency_ms": 1000.0, "dist": "lognormal", "sigma": 0.1}


def test_without_a_schema_the_prompt_tells_a_judge_from_a_juror() -> None:
    judge = {"model": "m", "messages": [{"role": "user", "content": 'keys "verdict", ...'}]}
    juror = {"model": "m", "messages": [{"role": "user", "content": 'keys "position", ...'}]}

    assert answer_for(judge)[0] == "judge"
    assert answer_for(juror)[0] == "juror"


def test_other_aliases_pick_a_deterministic_option() -> None:
    assert juror_position("x/other", OPTIONS) == juror_position("x/other", OPTIONS)
    assert juror_position("x/other", OPTIONS) in OPTIONS
