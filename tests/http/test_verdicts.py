"""The verdict HTTP API over ASGI, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import JuryConfig, load_config
from app.core.db import create_engine, create_sessionmaker
from app.http.app import create_app
from app.security.ratelimit import RateLimiter
from app.verdicts.idempotency import IdempotencyKeys
from app.verdicts.intake import Intake
from app.verdicts.reads import VerdictReads
from app.verdicts.service import VerdictService
from tests.builders import (
    SCRIPTED_CONFIG,
    app_client,
    make_settings,
    scripted_config,
    serving,
    step,
    stored_calls,
)

pytestmark = pytest.mark.anyio


def reference_config() -> JuryConfig:
    """Return config/scripted.yaml: a split, a shift by bravo and a dissent by charlie."""
    return load_config(SCRIPTED_CONFIG, environ={})


def fast_config() -> JuryConfig:
    """Return a quick scripted config with two panels whose judges disagree."""
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=1)],
            "bravo": [step("approve", latency_ms=1)],
            "charlie": [step("reject", latency_ms=1)],
        },
        extra_judges={"strict_judge": [step("reject", confidence=0.8)]},
        extra_panels={"strict": {"jurors": ["alpha", "bravo", "charlie"], "judge": "strict_judge"}},
        max_rounds=1,
        categories={"deploy": {}, "factual": {}},
    )


def failing_config() -> JuryConfig:
    """Return a config whose panel cannot reach its quorum of 2."""
    return scripted_config(
        jurors={
            "alpha": [step("approve", reasoning="It looks fine to me.")],
            "bravo": [step(failure="error")],
            "charlie": [step(failure="rate_limited")],
        },
        quorum=2,
    )


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client on an app running config/scripted.yaml on the test database."""
    async with app_client(make_settings(database_url), reference_config()) as client:
        yield client


@pytest.fixture
async def sqlite_client(sqlite_database: str) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client for requests refused before the database is touched (SQLite only)."""
    async with app_client(make_settings(sqlite_database), reference_config()) as client:
        yield client


# --- POST /verdict and GET /verdicts/{id} ---------------------------------------------------


async def test_post_verdict_deliberates_and_records(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/verdict",
        json={
            "question": "Ship release 4.2 to production?",
            "context": "The diff adds a staged rollout.",
            "category": "deploy",
            "metadata": {"ticket": "OPS-42"},
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "approve"
    assert body["status"] == "completed"
    assert body["confidence"] == 0.82
    assert body["options"] == ["approve", "reject"]
    assert body["unanimous"] is False
    assert body["stop_reason"] == "max_rounds"
    assert [r["number"] for r in body["rounds"]] == [1, 2]
    assert [{p["juror"]: p["position"] for p in r["positions"]} for r in body["rounds"]] == [
        {"alpha": "approve", "bravo": "reject", "charlie": "reject"},
        {"alpha": "approve", "bravo": "approve", "charlie": "reject"},
    ]
    assert [(s["juror"], s["round"], s["from"], s["to"]) for s in body["shifts"]] == [
        ("bravo", 2, "reject", "approve")
    ]
    assert [(d["juror"], d["position"]) for d in body["dissent"]] == [("charlie", "reject")]
    assert body["dissent"][0]["reasoning"].startswith("Friday-evening deploys")
    assert body["baselines"] == {
        "round1_majority": "reject",
        "final_majority": "approve",
        "weighted_vote": "approve",
        "judge": "approve",
    }
    assert body["judge"]["fallback"] is False
    assert body["degraded"] is False
    assert body["failures"] == []
    assert body["metadata"] == {"ticket": "OPS-42"}
    assert body["usage"]["calls"] == 7
    position = body["rounds"][0]["positions"][0]
    assert {"juror", "model", "family", "position", "confidence", "reasoning", "changed"} <= set(
        position
    )
    assert {"latency_ms", "tokens", "failure"} <= set(position)
    # The deploy category is critical in the reference config, but the panel is split.
    assert "unanimous_on_critical" not in body["escalate_reasons"]

    fetched = await client.get(f"/verdicts/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body

    calls = await stored_calls(database_url, body["id"])
    assert len(calls) == 7
    assert sorted((c.role, c.round, c.juror) for c in calls) == [
        ("judge", 1, "judge"),
        ("juror", 1, "alpha"),
        ("juror", 1, "bravo"),
        ("juror", 1, "charlie"),
        ("juror", 2, "alpha"),
        ("juror", 2, "bravo"),
        ("juror", 2, "charlie"),
    ]
    assert all(c.prompt_version and c.messages for c in calls)
    assert all(c.failure_kind is None and c.raw_output for c in calls)


async def test_unknown_verdict_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/verdicts/does-not-exist")

    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found"
    assert body["id"] == "does-not-exist"
    assert "does-not-exist" in body["detail"]


# --- GET /verdicts --------------------------------------------------------------------------


async def _post(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/verdict", json={"question": "Proceed?", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/verdicts", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_list_pages_newest_first(database_url: str) -> None:
    async with app_client(make_settings(database_url), fast_config()) as client:
        created = [(await _post(client, category="deploy"))["id"] for _ in range(3)]
        newest_first = created[::-1]

        everything = await client.get("/verdicts")
        first = await client.get("/verdicts", params={"limit": 2})
        second = await client.get("/verdicts", params={"limit": 2, "offset": 2})
        beyond = await client.get("/verdicts", params={"offset": 5})

    page = everything.json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 50, 0)
    assert [item["id"] for item in page["items"]] == newest_first
    item = page["items"][0]
    assert (item["status"], item["verdict"], item["category"], item["panel"]) == (
        "completed",
        "approve",
        "deploy",
        "default",
    )
    assert [i["id"] for i in first.json()["items"]] == newest_first[:2]
    assert [i["id"] for i in second.json()["items"]] == newest_first[2:]
    assert first.json()["total"] == second.json()["total"] == 3
    assert beyond.json()["items"] == []


async def test_list_filters_by_category_verdict_and_status(database_url: str) -> None:
    async with app_client(make_settings(database_url), fast_config()) as client:
        deploy_approve = (await _post(client, category="deploy"))["id"]
        factual_approve = (await _post(client, category="factual"))["id"]
        deploy_reject = (await _post(client, category="deploy", panel="strict"))["id"]

        assert set(await _ids(client, category="deploy")) == {deploy_approve, deploy_reject}
        assert await _ids(client, category="factual") == [factual_approve]
        assert await _ids(client, verdict="reject") == [deploy_reject]
        assert await _ids(client, category="deploy", verdict="approve") == [deploy_approve]
        assert await _ids(client, category="finance") == []
        assert len(await _ids(client, status="completed")) == 3
        assert await _ids(client, status="no_quorum") == []


async def test_list_filters_by_time(database_url: str) -> None:
    async with app_client(make_settings(database_url), fast_config()) as client:
        first = await _post(client)
        second = await _post(client)
        third = await _post(client)
        cut = datetime.fromisoformat(second["created_at"])

        since = await _ids(client, since=cut.isoformat())
        until = await _ids(client, until=cut.isoformat())
        # The same instants written in other time zones select the same verdicts.
        east = timezone(timedelta(hours=5, minutes=30))
        west = timezone(timedelta(hours=-7))
        since_east = await _ids(client, since=cut.astimezone(east).isoformat())
        until_west = await _ids(client, until=cut.astimezone(west).isoformat())
        later = await _ids(client, since=(cut + timedelta(days=1)).isoformat())
        listed = (await client.get("/verdicts")).json()["items"]

    assert since == since_east == [third["id"], second["id"]]
    assert until == until_west == [first["id"]]
    assert later == []
    # Listed times are the recorded ones, in UTC, on every database.
    assert [datetime.fromisoformat(i["created_at"]) for i in listed] == [
        datetime.fromisoformat(v["created_at"]) for v in (third, second, first)
    ]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"since": "yesterday"}]
)
async def test_list_rejects_bad_paging(
    sqlite_client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await sqlite_client.get("/verdicts", params=params)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [f["field"] for f in body["fields"]] == list(params)


# --- request validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "question", "Field required"),
        ({"question": "   "}, "question", "question must not be blank"),
        ({"question": "Ship?", "options": ["approve"]}, "options", "2 to 10 labels"),
        ({"question": "Ship?", "options": ["Yes", "yes"]}, "options", "distinct"),
        ({"question": "Ship?", "options": [str(i) for i in range(11)]}, "options", "2 to 10"),
        ({"question": "Ship?", "max_rounds": 0}, "max_rounds", "greater than or equal to 1"),
        ({"question": "Ship?", "deadline_s": -1}, "deadline_s", "greater than or equal to 1"),
        ({"question": "Ship?", "deadline_s": 0.5}, "deadline_s", "greater than or equal to 1"),
        ({"question": "Ship?", "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
async def test_invalid_request_names_the_field(
    sqlite_client: httpx.AsyncClient, payload: dict[str, Any], field: str, message: str
) -> None:
    response = await sqlite_client.post("/verdict", json=payload)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [f["field"] for f in body["fields"]] == [field]
    assert message in body["fields"][0]["message"]
    assert field in body["detail"]


async def test_unknown_panel_is_422_naming_it(sqlite_client: httpx.AsyncClient) -> None:
    response = await sqlite_client.post("/verdict", json={"question": "Ship?", "panel": "nope"})

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["field"] == "panel"
    assert "'nope'" in body["detail"]
    assert "default" in body["detail"]  # the known panels are listed


async def test_malformed_json_is_422(sqlite_client: httpx.AsyncClient) -> None:
    response = await sqlite_client.post(
        "/verdict", content=b'{"question": ', headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


# --- size limits ----------------------------------------------------------------------------


def _limited(database_url: str) -> Any:
    settings = make_settings(
        database_url, max_question_chars=50, max_context_chars=100, max_body_bytes=2_000
    )
    return app_client(settings, fast_config())


@pytest.mark.parametrize(
    ("payload", "field", "limit"),
    [
        ({"question": "q" * 51}, "question", 50),
        ({"question": "Ship?", "context": "c" * 101}, "context", 100),
    ],
)
async def test_oversize_field_is_413(
    database_url: str, payload: dict[str, Any], field: str, limit: int
) -> None:
    async with _limited(database_url) as client:
        response = await client.post("/verdict", json=payload)
        listed = (await client.get("/verdicts")).json()

    assert response.status_code == 413
    body = response.json()
    assert (body["error"], body["field"], body["limit"]) == ("payload_too_large", field, limit)
    assert listed["total"] == 0  # refused before anything was recorded


async def test_fields_at_their_limits_are_accepted(database_url: str) -> None:
    async with _limited(database_url) as client:
        response = await client.post("/verdict", json={"question": "q" * 50, "context": "c" * 100})

    assert response.status_code == 200, response.text


async def test_oversize_body_is_413(database_url: str) -> None:
    payload = {"question": "Ship?", "metadata": {"padding": "x" * 3_000}}
    async with _limited(database_url) as client:
        response = await client.post("/verdict", json=payload)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.json()["limit"] == 2_000


async def test_oversize_streamed_body_is_413(database_url: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"question": "Ship?", "metadata": {"padding": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}}'

    async with _limited(database_url) as client:
        # No Content-Length: only counting the bytes as they arrive can catch it.
        response = await client.post(
            "/verdict", content=chunks(), headers={"content-type": "application/json"}
        )

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


# --- no quorum ------------------------------------------------------------------------------


async def test_no_quorum_is_503_with_partial_positions(database_url: str) -> None:
    async with app_client(make_settings(database_url), failing_config()) as client:
        response = await client.post("/verdict", json={"question": "Ship?"})
        fetched = await client.get(f"/verdicts/{response.json()['id']}")
        listed = await client.get("/verdicts", params={"status": "no_quorum"})

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "no_quorum"
    assert (body["valid"], body["quorum"]) == (1, 2)
    assert "quorum" in body["detail"]
    assert {p["juror"]: (p["failure"] or {}).get("kind") for p in body["positions"]} == {
        "alpha": None,
        "bravo": "provider_error",
        "charlie": "rate_limited",
    }
    assert fetched.status_code == 200
    record = fetched.json()
    assert record["status"] == "no_quorum"
    assert record["id"] == body["id"]
    assert sorted((c["juror"], c["failure_kind"]) for c in record["calls"]) == [
        ("alpha", None),
        ("bravo", "provider_error"),
        ("charlie", "rate_limited"),
    ]
    assert record["error"]["positions"] == body["positions"]
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]


# --- operations -----------------------------------------------------------------------------


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "providers": "ok", "redis": "not configured"},
    }


async def test_unreachable_database_is_not_ready_and_refuses_verdicts(sqlite_database: str) -> None:
    app = create_app(make_settings(sqlite_database), config=fast_config())
    # Nothing listens on port 1 of loopback: every connection is refused at once.
    unreachable = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    try:
        async with serving(app) as client:
            runtime = app.state.runtime
            broken = VerdictService(
                config=runtime.config,
                hub=runtime.hub,
                sessionmaker=create_sessionmaker(unreachable),
                settings=runtime.settings,
            )
            intake = Intake(
                config=runtime.config,
                verdicts=broken,
                queue=runtime.queue,
                limiter=RateLimiter(0, None),
                keys=IdempotencyKeys(None, ttl_s=60),
                reads=VerdictReads(create_sessionmaker(unreachable), runtime.config),
            )
            app.state.runtime = replace(runtime, engine=unreachable, intake=intake)
            ready = await client.get("/readyz")
            verdict = await client.post("/verdict", json={"question": "Ship?"})
    finally:
        await unreachable.dispose()

    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert verdict.status_code == 503
    assert verdict.json()["error"] == "unavailable"


def _verdicts_counted(metrics_text: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "jury_verdicts_total" and sample.labels == labels:
                return sample.value
    return 0.0


async def test_metrics_count_verdicts(client: httpx.AsyncClient) -> None:
    labels = {"status": "completed", "category": "deploy", "panel": "default"}
    before = await client.get("/metrics")
    await _post(client, category="deploy")
    after = await client.get("/metrics")

    assert after.status_code == 200
    assert "jury_verdicts_total" in after.text
    assert "jury_juror_latency_seconds_bucket" in after.text
    counted = _verdicts_counted(after.text, **labels) - _verdicts_counted(before.text, **labels)
    assert counted == 1


async def test_openapi_documents_the_verdict_routes(sqlite_client: httpx.AsyncClient) -> None:
    response = await sqlite_client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/verdict"]
    assert {"200", "413", "422", "503"} <= set(paths["/verdict"]["post"]["responses"])
    assert "get" in paths["/verdicts/{verdict_id}"]
    assert "404" in paths["/verdicts/{verdict_id}"]["get"]["responses"]
    assert "get" in paths["/verdicts"]
