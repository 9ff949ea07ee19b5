"""Bad input is a 4xx naming the field, on SQLite and on PostgreSQL (issue 13, item 5).

Integers past what a column holds, JSON nested too deep, NaN and infinities, NUL characters,
a deadline too short to work, a body that is not JSON, and two requests racing for one name:
each gets a 4xx that says which field, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
import typer
from sqlalchemy import text

from app.cli.keys import run_with_keys
from app.core.bounds import MAX_DB_INT, MAX_JSON_DEPTH
from app.core.config import load_config
from app.core.db import about, create_engine, create_sessionmaker, session_scope
from app.core.errors import ConflictError, DatabaseError, InvalidRequestError
from app.security.models import Role
from app.security.schemas import KeyCreate, KeyCreated
from tests.builders import SCRIPTED_CONFIG, app_client, make_settings

pytestmark = pytest.mark.anyio

TOO_BIG = [2**31, 2**63]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client on config/scripted.yaml in local mode, on the test database."""
    config = load_config(SCRIPTED_CONFIG, environ={})
    async with app_client(make_settings(database_url), config) as client:
        yield client


def refused_fields(response: httpx.Response) -> list[str]:
    """Return the fields a 422 names, after checking it is one."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    return [field["field"] for field in body["fields"]]


async def recorded_verdicts(client: httpx.AsyncClient) -> int:
    """Return how many verdicts the record holds."""
    total: int = (await client.get("/verdicts")).json()["total"]
    return total


def nested(depth: int) -> dict[str, Any]:
    """Return a JSON object nested ``depth`` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# --- integers ------------------------------------------------------------------------------


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/trust/proposals/{n}", None, "proposal_id"),
        ("POST", "/trust/proposals/{n}/approve", {"reviewer": "r", "comment": "c"}, "proposal_id"),
        ("POST", "/trust/proposals/{n}/reject", {"reviewer": "r", "comment": "c"}, "proposal_id"),
        ("GET", "/verdicts?offset={n}", None, "offset"),
        ("GET", "/trust/proposals?offset={n}", None, "offset"),
        ("GET", "/trust/audit?offset={n}", None, "offset"),
        (
            "POST",
            "/trust/weights/rollback",
            {"version": "{n}", "reviewer": "r", "comment": "c"},
            "version",
        ),
    ],
)
async def test_an_integer_past_the_columns_is_a_422_naming_it(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
    number: int,
) -> None:
    payload = {k: number if v == "{n}" else v for k, v in body.items()} if body else None
    response = await client.request(method, path.format(n=number), json=payload)

    assert refused_fields(response) == [field]
    assert "less than or equal to 2147483647" in response.json()["detail"]


@pytest.mark.parametrize("number", TOO_BIG)
async def test_an_outcome_correcting_an_impossible_id_is_a_422(
    client: httpx.AsyncClient, number: int
) -> None:
    body = {"correct_option": "approve", "source": "reviewer", "corrects": number}
    response = await client.post("/verdicts/some-verdict/outcome", json=body)

    # Either a boolean or an id, and the number is neither.
    assert set(refused_fields(response)) == {"corrects.bool", "corrects.constrained-int"}


@pytest.mark.parametrize("number", [*TOO_BIG, MAX_DB_INT])
async def test_revoking_a_key_by_an_impossible_number_finds_none(
    client: httpx.AsyncClient, number: int
) -> None:
    response = await client.post(f"/admin/keys/{number}/revoke")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# --- JSON: depth, NaN, NUL, syntax ---------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 500])
async def test_metadata_nested_too_deep_is_a_422(client: httpx.AsyncClient, depth: int) -> None:
    response = await client.post("/verdict", json={"question": "Ship?", "metadata": nested(depth)})

    assert refused_fields(response) == ["metadata"]
    assert f"deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]
    assert await recorded_verdicts(client) == 0


async def test_metadata_at_the_depth_limit_is_stored(client: httpx.AsyncClient) -> None:
    metadata = nested(MAX_JSON_DEPTH)
    response = await client.post("/verdict", json={"question": "Ship?", "metadata": metadata})

    assert response.status_code == 200, response.text
    stored = await client.get(f"/verdicts/{response.json()['id']}")
    assert stored.json()["metadata"] == metadata


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"question": "Ship?", "metadata": {"x": NaN}}', "metadata"),
        (b'{"question": "Ship?", "metadata": {"x": [1, Infinity]}}', "metadata"),
        (b'{"question": "Ship?", "metadata": {"x": -Infinity}}', "metadata"),
        (b'{"question": "Ship?", "deadline_s": NaN}', "deadline_s"),
        (b'{"question": "Ship?", "action": {"tool": "t", "arguments": {"n": NaN}}}', "action"),
    ],
)
async def test_nan_and_infinity_are_refused_not_stored_as_null(
    client: httpx.AsyncClient, raw: bytes, field: str
) -> None:
    response = await client.post(
        "/verdict", content=raw, headers={"content-type": "application/json"}
    )

    fields = refused_fields(response)
    assert fields[0].split(".")[0] == field
    assert await recorded_verdicts(client) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": "Ship\x00it?"}, "question"),
        ({"question": "Ship?", "context": "a\x00b"}, "context"),
        ({"question": "Ship?", "metadata": {"ticket": "OPS\x00"}}, "metadata"),
        ({"question": "Ship?", "metadata": {"tic\x00ket": "OPS"}}, "metadata"),
        ({"question": "Ship?", "options": ["app\x00rove", "reject"]}, "options"),
        ({"question": "Ship?", "category": "de\x00ploy"}, "category"),
        ({"question": "Ship?", "action": {"tool": "sh\x00", "arguments": {}}}, "action.tool"),
        ({"question": "Ship?", "action": {"tool": "sh", "arguments": {"c": "\x00"}}}, "action"),
    ],
)
async def test_a_nul_character_in_a_body_is_a_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/verdict", json=body)

    assert refused_fields(response)[0].startswith(field)
    assert "NUL" in response.json()["detail"]
    assert await recorded_verdicts(client) == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/admin/keys", {"name": "a", "role": "agent", "x\x00": 1}, "x\x00"),
        ("POST", "/trust/proposals/1/approve", {"reviewer": "r\x00", "comment": "c"}, "reviewer"),
        ("GET", "/verdicts?category=de%00ploy", None, "category"),
        ("GET", "/verdicts?status=%00", None, "status"),
        ("GET", "/verdicts/abc%00def", None, "path"),
        ("GET", "/trust/audit?subject=proposal%001", None, "subject"),
    ],
)
async def test_a_nul_character_anywhere_else_is_a_4xx_too(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    response = await client.request(method, path, json=body)

    assert refused_fields(response)[0] == field


async def test_a_deadline_below_the_minimum_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/verdict", json={"question": "Ship?", "deadline_s": 0.001})

    assert refused_fields(response) == ["deadline_s"]
    assert await recorded_verdicts(client) == 0


async def test_a_body_that_is_not_json_is_named_as_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/verdict", content=b'{"question": "q",,}', headers={"content-type": "application/json"}
    )

    assert refused_fields(response) == ["body"]
    assert "not valid JSON at character 17" in response.json()["detail"]


async def test_a_body_that_is_not_utf8_is_named_as_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/verdict",
        content=b'{"question": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )

    assert refused_fields(response) == ["body"]
    assert "not valid UTF-8 at byte 14" in response.json()["detail"]
    assert await recorded_verdicts(client) == 0


async def test_an_unknown_status_filter_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    await client.post("/verdict", json={"question": "Ship?"})

    refused = await client.get("/verdicts?status=done")
    completed = await client.get("/verdicts?status=completed")

    assert refused_fields(refused) == ["status"]
    assert "'completed'" in refused.json()["detail"]
    assert completed.json()["total"] == 1


async def test_a_time_window_that_ends_before_it_starts_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/verdict", json={"question": "Ship?"})

    swapped = await client.get("/verdicts?since=2026-12-09T00:00:00Z&until=2026-12-01T00:00:00Z")
    # A naive time is UTC, as the record's are: the same instant is an empty window too.
    empty = await client.get("/verdicts?since=2026-12-01T00:00:00Z&until=2026-12-01T00:00:00")
    ordered = await client.get("/verdicts?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z")

    assert refused_fields(swapped) == ["until"]
    assert "must be later than since" in swapped.json()["detail"]
    assert refused_fields(empty) == ["until"]
    assert ordered.json()["total"] == 1


async def test_unknown_routes_answer_the_error_body(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no-such-route")
    wrong_method = await client.delete("/verdicts")

    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "Not Found"}
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


# --- integrity races -----------------------------------------------------------------------


async def test_thirty_api_requests_for_one_key_name_give_one_201_and_409s(
    client: httpx.AsyncClient,
) -> None:
    statuses: list[int] = []

    async def create() -> None:
        response = await client.post("/admin/keys", json={"name": "same", "role": "admin"})
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(30):
            group.start_soon(create)

    assert sorted(statuses) == [201] + [409] * 29


async def test_thirty_cli_creates_of_one_key_name_give_one_key_and_conflicts(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url)
    body = KeyCreate(name="same", role=Role.ADMIN)

    def create(_n: int) -> str:
        # What `jury keys create` runs: its own engine and event loop, one unit of work.
        try:
            created = run_with_keys(settings, lambda keys: keys.create(body))
        except typer.Exit as exit_:
            return f"exit {exit_.exit_code}"
        assert isinstance(created, KeyCreated)
        return "created"

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(create, range(30)))
    printed = capsys.readouterr().err

    assert sorted(results) == ["created"] + ["exit 2"] * 29
    assert sum(line.startswith("conflict:") for line in printed.splitlines()) == 29
    assert "unavailable" not in printed


# --- what a refused statement becomes ------------------------------------------------------


async def refusal_of(database_url: str, statement: str) -> Exception:
    """Run ``statement`` in a unit of work and return the typed error it ends in."""
    engine = create_engine(database_url)
    try:
        with about("verdict v-42"):
            async with session_scope(create_sessionmaker(engine)) as session:
                connection = await session.connection()
                await connection.execute(text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError(f"{statement!r} succeeded")


async def test_a_unique_violation_is_a_conflict(database_url: str) -> None:
    insert_twice = (
        "INSERT INTO api_keys (name, role, key_hash, prefix, created_at) "
        "VALUES ('k', 'admin', 'h1', 'p1', CURRENT_TIMESTAMP), "
        "('k', 'admin', 'h2', 'p2', CURRENT_TIMESTAMP)"
    )

    assert isinstance(await refusal_of(database_url, insert_twice), ConflictError)


@pytest.mark.postgres
async def test_postgres_data_errors_are_422_and_other_refusals_500_and_logged(
    postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    out_of_range = await refusal_of(postgres_database, "SELECT 2147483647::int4 + 1")
    no_column = await refusal_of(postgres_database, "SELECT no_such_column FROM verdicts")
    logged = [r.getMessage() for r in caplog.records if r.name == "app.core.db"]

    assert isinstance(out_of_range, InvalidRequestError)
    assert isinstance(no_column, DatabaseError)
    assert no_column.status_code == 500
    assert logged == [
        "database refused the work for verdict v-42: NumericValueOutOfRangeError (SQL state 22003)",
        "database refused the work for verdict v-42: UndefinedColumnError (SQL state 42703)",
    ]
