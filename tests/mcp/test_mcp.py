"""Jury's MCP server, driven by the MCP SDK's own client: over stdio (spawning ``jury mcp``),
over streamable HTTP (``jury serve``'s ``/mcp``, on a real socket) and in-process."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from app.core.config import JuryConfig, load_config
from app.http.app import create_app
from app.http.mcp.server import KeyCallers, RuntimeRef, build_server
from app.runtime import open_runtime
from app.security.models import Role
from eval.perf.procs import free_port
from tests.builders import SCRIPTED_CONFIG, make_settings, scripted_config, step
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio

TOOLS = {"request_verdict", "get_verdict", "report_outcome", "list_panels", "trust_weights"}
QUESTION = {"question": "Ship release 4.2 to production?", "category": "deploy"}


def reference_config() -> JuryConfig:
    return load_config(SCRIPTED_CONFIG, environ={})


def slow_config() -> JuryConfig:
    """A panel whose verdict outlasts a zero wait: each juror takes half a second."""
    return scripted_config(
        jurors={
            "alpha": [step("approve", latency_ms=500)],
            "bravo": [step("approve", latency_ms=500)],
        },
        max_rounds=1,
    )


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result
    return dict(result.structured_content)


class Progress:
    """Collect the progress notifications of one tool call."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append(message or "")


# --- stdio: `jury mcp` as the agent's host starts it ---------------------------------------


def jury_mcp(database_url: str, key: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-c", "from app.cli.main import main; main()", "mcp"],
        env={
            "JURY_CONFIG": str(SCRIPTED_CONFIG),
            "JURY_DATABASE_URL": database_url,
            "JURY_AUTO_MIGRATE": "false",
            "JURY_API_KEY": key,
        },
    )


async def test_stdio_lists_the_tools_and_deliberates(sqlite_database: str) -> None:
    agent = await add_key(sqlite_database, "desk-agent", Role.AGENT)
    progress = Progress()
    async with Client(jury_mcp(sqlite_database, agent)) as client:
        listed = (await client.list_tools()).tools
        answered = await client.call_tool(
            "request_verdict", {**QUESTION, "wait_s": 30}, progress_callback=progress
        )
        panels = await client.call_tool("list_panels", {})
        refused = await client.call_tool("trust_weights", {})

    assert {tool.name for tool in listed} == TOOLS
    for tool in listed:
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None
        assert tool.output_schema["type"] == "object"
    request_schema = next(t for t in listed if t.name == "request_verdict").input_schema
    assert {"question", "context", "options", "action", "wait_s"} <= set(
        request_schema["properties"]
    )
    reply = structured(answered)
    assert reply["status"] == "completed"
    verdict = reply["verdict"]
    assert (verdict["verdict"], verdict["confidence"]) == ("approve", 0.82)
    assert [(s["juror"], s["from"], s["to"]) for s in verdict["shifts"]] == [
        ("bravo", "reject", "approve")
    ]
    assert any('"type":"verdict"' in message for message in progress.messages)
    assert structured(panels)["panels"][0]["jurors"][0]["name"] == "alpha"
    assert refused.is_error
    assert structured(refused)["error"] == "forbidden"


async def test_stdio_refuses_to_start_with_an_unknown_key(sqlite_database: str) -> None:
    await add_key(sqlite_database, "someone", Role.AGENT)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK reports a closed pipe its own way
        async with Client(jury_mcp(sqlite_database, "jury_not-a-key")) as client:
            await client.list_tools()


# --- streamable HTTP: /mcp on `jury serve` ---------------------------------------------------


@asynccontextmanager
async def serving_http(database_url: str, config: JuryConfig) -> AsyncIterator[str]:
    """Serve the whole app on a loopback port; yield its base URL."""
    port = free_port()
    app = create_app(make_settings(database_url), config=config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        # uvicorn says it is listening with a flag, not an event.
        while not server.started:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


@asynccontextmanager
async def over_http(base: str, key: str | None) -> AsyncIterator[Client]:
    """Connect the SDK's client to /mcp, presenting ``key`` as REST clients do."""
    headers = bearer(key) if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http:
        transport = streamable_http_client(f"{base}/mcp", http_client=http)
        async with Client(transport) as client:
            yield client


async def test_http_verdict_outlasting_the_wait_is_fetched_not_repeated(
    sqlite_database: str,
) -> None:
    agent = await add_key(sqlite_database, "agent", Role.AGENT)
    progress = Progress()
    async with serving_http(sqlite_database, slow_config()) as base:
        async with over_http(base, agent) as client:
            first = structured(
                await client.call_tool("request_verdict", {"question": "Proceed?", "wait_s": 0})
            )
            fetched = await client.call_tool(
                "get_verdict", {"id": first["id"], "wait_s": 30}, progress_callback=progress
            )
        async with httpx.AsyncClient(base_url=base, headers=bearer(agent)) as rest:
            recorded = await rest.get(f"/verdicts/{first['id']}")
            listed = await rest.get("/verdicts")

    assert (first["status"], first["verdict"]) == ("pending", None)
    reply = structured(fetched)
    assert reply["status"] == "completed"
    assert reply["verdict"]["id"] == first["id"]
    assert reply["verdict"]["verdict"] == "approve"
    assert any('"type":"juror_answered"' in message for message in progress.messages)
    assert recorded.json()["id"] == first["id"]
    assert listed.json()["total"] == 1  # deliberated once


async def test_http_keys_and_roles_are_the_rest_apis(sqlite_database: str) -> None:
    agent = await add_key(sqlite_database, "agent", Role.AGENT)
    reviewer = await add_key(sqlite_database, "reviewer", Role.REVIEWER)
    async with serving_http(sqlite_database, reference_config()) as base:
        async with over_http(base, agent) as client:
            agent_weights = await client.call_tool("trust_weights", {})
            answered = structured(await client.call_tool("request_verdict", QUESTION))
            outcome = await client.call_tool(
                "report_outcome",
                {"verdict_id": answered["id"], "correct_option": "approve", "source": "agent"},
            )
        async with over_http(base, reviewer) as client:
            reviewer_weights = await client.call_tool("trust_weights", {})
            reviewer_ask = await client.call_tool("request_verdict", QUESTION)
        async with over_http(base, None) as client:
            anonymous = await client.call_tool("list_panels", {})

    assert agent_weights.is_error
    assert structured(agent_weights)["error"] == "forbidden"
    assert answered["status"] == "completed"
    assert not outcome.is_error, outcome
    assert structured(outcome)["recorded_by"] == "agent"  # the key's name
    assert not reviewer_weights.is_error
    assert structured(reviewer_weights)["version"] is None
    assert structured(reviewer_ask)["error"] == "forbidden"
    assert structured(anonymous)["error"] == "unauthorized"


# --- errors, in-process --------------------------------------------------------------------


@asynccontextmanager
async def in_process(database_url: str, config: JuryConfig) -> AsyncIterator[Client]:
    runtime_ref = RuntimeRef()
    server = build_server(runtime_ref, KeyCallers(runtime_ref, None))
    async with open_runtime(make_settings(database_url), config=config, run_queue=True) as rt:
        runtime_ref.set(rt)
        async with Client(server) as client:
            yield client


async def test_errors_carry_the_rest_codes_and_name_fields(sqlite_database: str) -> None:
    undecidable = scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step(failure="error")]}, quorum=2
    )
    async with in_process(sqlite_database, undecidable) as client:
        no_quorum = await client.call_tool("request_verdict", {"question": "Proceed?"})
        bad_type = await client.call_tool("request_verdict", {"question": 3})
        bad_action = await client.call_tool(
            "request_verdict", {"question": "Run?", "action": {"tool": "x", "arguments": [1]}}
        )
        unknown = await client.call_tool("get_verdict", {"id": "no-such-verdict"})

    assert no_quorum.is_error
    assert (structured(no_quorum)["error"], structured(no_quorum)["quorum"]) == ("no_quorum", 2)
    for result, field in ((bad_type, "question"), (bad_action, "action.arguments")):
        assert result.is_error
        body = structured(result)
        assert body["error"] == "validation_error"
        assert field in [f["field"] for f in body["fields"]]
        assert "input_value" not in result.content[0].model_dump_json()
    assert structured(unknown)["error"] == "not_found"
