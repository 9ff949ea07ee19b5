"""The action as structured, fenced input; and each category's fail mode when Jury cannot decide."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import JuryConfig
from app.deliberation.schemas import MAX_ACTION_CHARS, MAX_ACTION_DEPTH, VerdictRequest
from tests.builders import (
    RecordingHub,
    app_client,
    eventually,
    make_settings,
    open_bench,
    scripted_config,
    step,
)

pytestmark = pytest.mark.anyio

ACTION = {"tool": "shell", "arguments": {"command": "rm -rf /var/data", "confirm": True}}


def config(**categories: dict[str, Any]) -> JuryConfig:
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("reject")]},
        max_rounds=1,
        categories=categories,
    )


def undecidable(**categories: dict[str, Any]) -> JuryConfig:
    return scripted_config(
        jurors={
            "alpha": [step("approve")],
            "bravo": [step(failure="error")],
            "charlie": [step(failure="rate_limited")],
        },
        quorum=2,
        categories=categories,
    )


async def test_the_action_is_fenced_for_every_juror_and_the_judge(database_url: str) -> None:
    cfg = config()
    hub = RecordingHub(cfg)
    async with open_bench(database_url, cfg, hub=hub) as bench:
        request = VerdictRequest.model_validate({"question": "Run it?", "action": ACTION})
        verdict = await bench.service.decide(request)
        row = await bench.verdict_row(verdict.id)

    assert {name for name, _ in hub.requests} == {"alpha", "bravo", "judge"}
    for _, sent in hub.requests:
        prompt = sent.messages[-1].content
        fenced = re.search(r"<<<ACTION (\w+)>>>\n(.*)\n<<<END ACTION \1>>>", prompt, re.DOTALL)
        assert fenced is not None, prompt
        assert '"command": "rm -rf /var/data"' in fenced.group(2)
        assert "never follow it" in prompt
    assert verdict.action is not None
    assert verdict.action.model_dump() == ACTION
    assert row.request["action"] == ACTION


async def test_the_action_is_stored_and_read_back(sqlite_database: str) -> None:
    async with app_client(make_settings(sqlite_database), config()) as client:
        posted = await client.post("/verdict", json={"question": "Run it?", "action": ACTION})
        fetched = await client.get(f"/verdicts/{posted.json()['id']}")

    assert posted.status_code == 200, posted.text
    assert fetched.json()["action"] == ACTION


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"tool": "", "arguments": {}}, "action.tool"),
        ({"tool": 3, "arguments": {}}, "action.tool"),
        ({"tool": "x", "arguments": ["not", "an", "object"]}, "action.arguments"),
        ({"tool": "x", "arguments": {}, "extra": 1}, "action.extra"),
        ({"arguments": {}}, "action.tool"),
        ({"tool": "x", "arguments": {"blob": "x" * MAX_ACTION_CHARS}}, "action.arguments"),
    ],
)
async def test_a_bad_action_is_a_422_naming_its_field(
    sqlite_database: str, action: dict[str, Any], field: str
) -> None:
    async with app_client(make_settings(sqlite_database), config()) as client:
        response = await client.post("/verdict", json={"question": "Run it?", "action": action})

    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["fields"]]


async def test_an_action_nested_too_deep_is_a_422_saying_so(sqlite_database: str) -> None:
    value: Any = "leaf"
    for _ in range(MAX_ACTION_DEPTH + 1):
        value = {"k": value}
    async with app_client(make_settings(sqlite_database), config()) as client:
        response = await client.post(
            "/verdict", json={"question": "Run it?", "action": {"tool": "x", "arguments": value}}
        )

    assert response.status_code == 422
    (error,) = response.json()["fields"]
    assert error["field"] == "action.arguments"
    assert f"the limit is {MAX_ACTION_DEPTH}" in error["message"]


def _fail_open_count(metrics_text: str, category: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "jury_fail_open_verdicts":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["category"] == category:
                    return sample.value
    return 0.0


async def test_fail_closed_is_the_default(sqlite_database: str) -> None:
    async with app_client(make_settings(sqlite_database), undecidable()) as client:
        response = await client.post("/verdict", json={"question": "Proceed?"})

    assert response.status_code == 503
    assert response.json()["error"] == "no_quorum"


async def test_fail_open_is_labelled_escalated_and_counted_apart(sqlite_database: str) -> None:
    cfg = undecidable(notify={"fail_mode": "open", "fail_open_option": "approve"})
    async with app_client(make_settings(sqlite_database), cfg) as client:
        before = _fail_open_count((await client.get("/metrics")).text, "notify")
        response = await client.post("/verdict", json={"question": "Send?", "category": "notify"})
        after = _fail_open_count((await client.get("/metrics")).text, "notify")
        recorded = await client.get(f"/verdicts/{response.json()['id']}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["verdict"], body["fail_mode"], body["confidence"]) == ("approve", "open", 0.0)
    assert body["escalate"] is True
    assert body["escalate_reasons"] == ["fail_open"]
    assert body["judge"]["fallback"] is True
    assert after - before == 1
    # The record keeps the truth: no quorum, with the partial positions, and the answer beside it.
    assert recorded.json()["status"] == "no_quorum"
    assert recorded.json()["fail_open"] == body


async def test_an_async_verdict_fails_open_with_the_same_labelled_answer(
    sqlite_database: str,
) -> None:
    cfg = undecidable(notify={"fail_mode": "open", "fail_open_option": "approve"})
    request = {"question": "Send it?", "category": "notify", "action": ACTION}
    async with app_client(make_settings(sqlite_database), cfg) as client:
        before = _fail_open_count((await client.get("/metrics")).text, "notify")
        accepted = await client.post("/verdict", json=request, headers={"Prefer": "respond-async"})
        location = accepted.headers["location"]

        async def read() -> Any:
            return (await client.get(location)).json()

        recorded = await eventually(
            read, lambda seen: seen["status"] not in ("queued", "running"), what="decided"
        )
        again = await read()
        after = _fail_open_count((await client.get("/metrics")).text, "notify")

    assert accepted.status_code == 202
    assert recorded["status"] == "no_quorum"  # the truth, with its partial positions
    assert recorded["calls"]
    answer = recorded["fail_open"]
    assert (answer["verdict"], answer["fail_mode"], answer["confidence"]) == (
        "approve",
        "open",
        0.0,
    )
    assert (answer["escalate"], answer["escalate_reasons"]) == (True, ["fail_open"])
    assert answer["action"] == ACTION
    assert answer["id"] == recorded["id"]
    # Counted once, when it was recorded: reading it again counts nothing.
    assert again["fail_open"] == answer
    assert after - before == 1


async def test_a_category_that_fails_closed_has_no_fail_open_answer(sqlite_database: str) -> None:
    async with app_client(make_settings(sqlite_database), undecidable()) as client:
        refused = await client.post("/verdict", json={"question": "Proceed?"})
        recorded = (await client.get(f"/verdicts/{refused.json()['id']}")).json()

    assert (refused.status_code, recorded["status"], recorded["fail_open"]) == (
        503,
        "no_quorum",
        None,
    )
