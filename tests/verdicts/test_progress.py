"""``GET /verdicts/{id}/events``: a verdict's progress as server-sent events."""

from __future__ import annotations

import asyncio
import json
from contextlib import closing, nullcontext
from typing import Any

import httpx
import pytest
import redis

from app.core.config import JuryConfig, load_config
from app.security.models import Role
from tests.builders import SCRIPTED_CONFIG, app_client, make_settings, scripted_config, step
from tests.security.keys import add_key, bearer
from tests.workers import worker_in_process

pytestmark = pytest.mark.anyio

QUESTION = {"question": "Ship release 4.2?"}
# config/scripted.yaml: a split in round 1, bravo shifts in round 2, charlie dissents.
REFERENCE_FLOW = [
    ("juror_answered", 1),
    ("juror_answered", 1),
    ("juror_answered", 1),
    ("round_finished", 1),
    ("juror_answered", 2),
    ("juror_answered", 2),
    ("juror_answered", 2),
    ("shift", 2),
    ("round_finished", 2),
    ("judge_answered", None),
    ("verdict", None),
]


def reference_config() -> JuryConfig:
    return load_config(SCRIPTED_CONFIG, environ={})


def slow_config() -> JuryConfig:
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=300)],
            "bravo": [step("reject", latency_ms=300), step("approve", latency_ms=300)],
        },
        max_rounds=2,
    )


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Return the events of an SSE body as {"id", "event", "data"}; comments are skipped."""
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        if fields:
            events.append(fields)
    return events


def flow(events: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(event["event"], event["data"].get("round")) for event in events]


def essence(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Return what the events say, without their ids and timings."""
    keys = ("type", "round", "juror", "position", "previous", "failure")
    return [tuple(event["data"].get(key) for key in keys) for event in events]


async def follow(client: httpx.AsyncClient, verdict_id: str, **headers: str) -> httpx.Response:
    return await client.get(f"/verdicts/{verdict_id}/events", headers=headers)


async def test_a_finished_verdict_replays_its_events(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    async with app_client(settings, reference_config()) as client:
        verdict = (await client.post("/verdict", json=QUESTION)).json()
        response = await follow(client, verdict["id"])

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert flow(events) == REFERENCE_FLOW
    shift = events[7]["data"]
    assert (shift["juror"], shift["previous"], shift["position"]) == ("bravo", "reject", "approve")
    last = events[-1]["data"]
    assert (last["verdict_id"], last["position"]) == (verdict["id"], verdict["verdict"])
    assert all(event["id"] for event in events)


async def test_an_expired_log_is_synthesised_from_the_transcript(
    sqlite_database: str, redis_url: str
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_url)
    async with app_client(settings, reference_config()) as client:
        verdict_id = (await client.post("/verdict", json=QUESTION)).json()["id"]
        logged = parse_sse((await follow(client, verdict_id)).text)
        with closing(redis.Redis.from_url(redis_url)) as stored:
            assert stored.exists(f"jury:events:{verdict_id}")
            assert 0 < stored.ttl(f"jury:events:{verdict_id}") <= 86_400
            stored.flushdb()
        synthesised = parse_sse((await follow(client, verdict_id)).text)
        resumed = parse_sse((await follow(client, verdict_id, **{"Last-Event-ID": "s9"})).text)

    assert [event["id"] for event in synthesised] == [f"s{n}" for n in range(1, 12)]
    # The same events; within a round the log has them in the order the jurors answered.
    assert sorted(essence(synthesised), key=repr) == sorted(essence(logged), key=repr)
    assert essence(synthesised)[-2:] == essence(logged)[-2:]
    assert resumed == synthesised[9:]


async def test_last_event_id_resumes_after_that_event(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    async with app_client(settings, reference_config()) as client:
        verdict_id = (await client.post("/verdict", json=QUESTION)).json()["id"]
        everything = parse_sse((await follow(client, verdict_id)).text)
        rest = parse_sse(
            (await follow(client, verdict_id, **{"Last-Event-ID": everything[3]["id"]})).text
        )

    assert rest == everything[4:]


async def test_a_verdict_in_flight_is_streamed_until_its_verdict(
    sqlite_database: str, redis_or_none: str | None
) -> None:
    settings = make_settings(sqlite_database, redis_url=redis_or_none)
    # With Redis, a worker deliberates; without, the app's own queue does.
    worker = worker_in_process(settings, slow_config()) if redis_or_none else nullcontext()
    async with app_client(settings, slow_config()) as client, worker:
        accepted = await client.post("/verdict", json=QUESTION, headers={"Prefer": "respond-async"})
        verdict_id = accepted.json()["id"]
        streamed = asyncio.create_task(follow(client, verdict_id))
        await asyncio.sleep(0.1)
        assert not streamed.done(), "the stream ended before the verdict"
        events = parse_sse((await streamed).text)
        stored = (await client.get(f"/verdicts/{verdict_id}")).json()

    assert accepted.status_code == 202
    assert [event["event"] for event in events] == [
        "juror_answered",
        "juror_answered",
        "round_finished",
        "juror_answered",
        "juror_answered",
        "shift",
        "round_finished",
        "judge_answered",
        "verdict",
    ]
    assert events[-1]["data"]["position"] == stored["verdict"] == "approve"


async def test_a_no_quorum_ends_the_stream(sqlite_database: str) -> None:
    config = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step(failure="error")]}, quorum=2
    )
    async with app_client(make_settings(sqlite_database), config) as client:
        refused = (await client.post("/verdict", json=QUESTION)).json()
        events = parse_sse((await follow(client, refused["id"])).text)

    assert [event["event"] for event in events][-1] == "no_quorum"
    assert {event["data"].get("failure") for event in events[:-1]} == {None, "provider_error"}


async def test_an_agent_follows_only_its_own_verdicts(sqlite_database: str) -> None:
    ann = await add_key(sqlite_database, "ann", Role.AGENT)
    bob = await add_key(sqlite_database, "bob", Role.AGENT)
    async with app_client(make_settings(sqlite_database), reference_config()) as client:
        verdict_id = (await client.post("/verdict", json=QUESTION, headers=bearer(ann))).json()[
            "id"
        ]
        own = await follow(client, verdict_id, **bearer(ann))
        other = await follow(client, verdict_id, **bearer(bob))
        unknown = await follow(client, "no-such-verdict", **bearer(ann))

    assert own.status_code == 200
    assert other.status_code == unknown.status_code == 404
    assert other.json()["error"] == "not_found"
