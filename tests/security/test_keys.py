"""API keys: stored hashed, local mode while none exists, revocation, the admin API and CLI."""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy import text
from sqlmodel import select
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.core.db import create_engine, create_sessionmaker
from app.http.app import create_app
from app.security.models import ApiKey, Role
from app.security.principal import hash_key
from tests.builders import make_settings, serving
from tests.security.keys import add_key, bearer

pytestmark = pytest.mark.anyio


async def stored_keys(database_url: str) -> list[ApiKey]:
    """Return every stored key row."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list((await session.exec(select(ApiKey))).all())
    finally:
        await engine.dispose()


async def test_a_key_is_stored_as_its_hash_and_a_prefix(database_url: str) -> None:
    key = await add_key(database_url, "ci-bot", Role.AGENT)

    [row] = await stored_keys(database_url)

    assert key.startswith("jury_")
    assert len(key) >= 40
    assert row.key_hash == hash_key(key) != key
    assert key.startswith(row.prefix)
    assert len(row.prefix) == 12
    assert (row.name, row.role, row.revoked_at) == ("ci-bot", "agent", None)


async def test_local_mode_needs_no_key_until_one_is_created(sqlite_database: str) -> None:
    async with serving(create_app(make_settings(sqlite_database))) as client:
        before = await client.get("/verdicts")
        created = await client.post("/admin/keys", json={"name": "ops", "role": "admin"})
        after = await client.get("/verdicts")
        with_key = await client.get("/verdicts", headers=bearer(created.json()["key"]))

    assert before.status_code == 200
    assert created.status_code == 201, created.text
    assert after.status_code == 401
    assert with_key.status_code == 200


async def test_keyless_requests_answer_only_an_allowed_host(sqlite_database: str) -> None:
    foreign = {"Host": "rebind.evil.example"}
    async with serving(create_app(make_settings(sqlite_database))) as client:
        rebound = await client.get("/verdicts", headers=foreign)
        local = await client.get("/verdicts")
        created = await client.post("/admin/keys", json={"name": "ops", "role": "admin"})
        keyed = await client.get("/verdicts", headers={**foreign, **bearer(created.json()["key"])})

    # Local mode: a page rebinding its name to loopback cannot read the open API.
    assert rebound.status_code == 400
    assert rebound.json()["error"] == "host_not_allowed"
    assert "rebind.evil.example" not in rebound.text
    assert local.status_code == 200
    # With keys, the key is what a rebinding page cannot send: any Host may carry one.
    assert keyed.status_code == 200


async def test_a_revoked_key_is_refused_and_local_mode_does_not_come_back(
    sqlite_database: str,
) -> None:
    admin = await add_key(sqlite_database, "ops", Role.ADMIN)
    agent = await add_key(sqlite_database, "ci-bot", Role.AGENT)
    async with serving(create_app(make_settings(sqlite_database))) as client:
        assert (await client.get("/verdicts", headers=bearer(agent))).status_code == 200
        revoked = await client.post("/admin/keys/ci-bot/revoke", headers=bearer(admin))
        again = await client.post("/admin/keys/ci-bot/revoke", headers=bearer(admin))
        refused = await client.get("/verdicts", headers=bearer(agent))
        await client.post("/admin/keys/ops/revoke", headers=bearer(admin))
        anonymous = await client.get("/verdicts")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert again.status_code == 409
    assert refused.status_code == 401
    # Every key is revoked now, yet the server stays closed: revoking never opens it.
    assert anonymous.status_code == 401


async def _revoke_every_key(database_url: str) -> None:
    """Create two keys through the API in local mode, then revoke both, as an admin would."""
    async with serving(create_app(make_settings(database_url))) as client:
        admin = await client.post("/admin/keys", json={"name": "ops", "role": "admin"})
        key = admin.json()["key"]
        await client.post("/admin/keys", json={"name": "bot", "role": "agent"}, headers=bearer(key))
        for name in ("bot", "ops"):
            revoked = await client.post(f"/admin/keys/{name}/revoke", headers=bearer(key))
            assert revoked.status_code == 200, revoked.text


async def test_revoking_every_key_and_restarting_does_not_reopen_local_mode(
    database_url: str,
) -> None:
    await _revoke_every_key(database_url)

    # A new process: nothing it remembers, only what the database says.
    async with serving(create_app(make_settings(database_url))) as client:
        read = await client.get("/verdicts")
        minted = await client.post("/admin/keys", json={"name": "intruder", "role": "admin"})
        verdict = await client.post("/verdict", json={"question": "Ship?"})

    assert read.status_code == 401
    assert minted.status_code == 401
    assert verdict.status_code == 401
    assert sorted(row.name for row in await stored_keys(database_url)) == ["bot", "ops"]


async def test_removing_every_key_row_does_not_reopen_local_mode_either(
    database_url: str,
) -> None:
    await _revoke_every_key(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM key_spend"))
            await connection.execute(text("DELETE FROM api_keys"))
    finally:
        await engine.dispose()

    async with serving(create_app(make_settings(database_url))) as client:
        read = await client.get("/verdicts")

    assert read.status_code == 401


async def test_an_admin_may_reopen_local_mode_explicitly(database_url: str) -> None:
    await _revoke_every_key(database_url)

    settings = make_settings(database_url, reopen_local_mode=True)
    async with serving(create_app(settings)) as client:
        read = await client.get("/verdicts")
        created = await client.post("/admin/keys", json={"name": "ops2", "role": "admin"})
        closed_again = await client.get("/verdicts")

    assert read.status_code == 200
    assert created.status_code == 201, created.text
    # A key exists again: the setting reopens only a server with no active key.
    assert closed_again.status_code == 401


async def test_require_api_keys_closes_a_server_that_has_no_key(sqlite_database: str) -> None:
    settings = make_settings(sqlite_database, require_api_keys=True)
    async with serving(create_app(settings)) as client:
        response = await client.get("/verdicts")

    assert response.status_code == 401


async def test_the_admin_api_lists_keys_without_the_keys(sqlite_database: str) -> None:
    admin = await add_key(sqlite_database, "ops", Role.ADMIN)
    async with serving(create_app(make_settings(sqlite_database))) as client:
        created = await client.post(
            "/admin/keys", json={"name": "rita", "role": "reviewer"}, headers=bearer(admin)
        )
        duplicate = await client.post(
            "/admin/keys", json={"name": "rita", "role": "agent"}, headers=bearer(admin)
        )
        reserved = await client.post(
            "/admin/keys", json={"name": "system", "role": "agent"}, headers=bearer(admin)
        )
        listed = await client.get("/admin/keys", headers=bearer(admin))

    assert created.status_code == 201
    assert duplicate.status_code == 409
    assert reserved.status_code == 422
    assert [(k["name"], k["role"]) for k in listed.json()] == [
        ("ops", "admin"),
        ("rita", "reviewer"),
    ]
    assert created.json()["key"] not in listed.text
    assert all(
        set(k) == {"id", "name", "role", "prefix", "created_at", "revoked_at"}
        for k in listed.json()
    )


async def test_the_admin_config_view_shows_the_configuration(sqlite_database: str) -> None:
    admin = await add_key(sqlite_database, "ops", Role.ADMIN)
    async with serving(create_app(make_settings(sqlite_database))) as client:
        response = await client.get("/admin/config", headers=bearer(admin))

    assert response.status_code == 200
    body = response.json()
    assert body["default_panel"] == "default"
    assert body["budgets"]["per_verdict_usd"] == 1.0


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def runner(sqlite_database: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a runner whose commands use this test's database."""
    monkeypatch.setenv("JURY_DATABASE_URL", sqlite_database)
    monkeypatch.setenv("JURY_AUTO_MIGRATE", "false")
    return CliRunner()


def test_keys_create_prints_the_key_alone_on_its_last_line(
    runner: CliRunner, sqlite_database: str
) -> None:
    result = runner.invoke(cli, ["keys", "create", "--role", "agent", "--name", "ci-bot"])

    assert result.exit_code == 0, result.output
    *notes, key = result.stdout.rstrip("\n").split("\n")
    assert key.startswith("jury_")
    assert " " not in key
    assert any("created key 1 'ci-bot' (agent)" in line for line in notes)
    assert key not in "\n".join(notes)
    rows = anyio.run(stored_keys, sqlite_database)
    assert [row.key_hash for row in rows] == [hash_key(key)]


def test_keys_list_and_revoke(runner: CliRunner) -> None:
    created = runner.invoke(cli, ["keys", "create", "--role", "reviewer", "--name", "rita"])
    key = created.stdout.rstrip("\n").split("\n")[-1]

    listed = runner.invoke(cli, ["keys", "list"])
    revoked = runner.invoke(cli, ["keys", "revoke", "rita"])
    again = runner.invoke(cli, ["keys", "revoke", "rita"])
    unknown = runner.invoke(cli, ["keys", "revoke", "nobody"])
    after = runner.invoke(cli, ["keys", "list"])

    assert listed.exit_code == 0, listed.output
    assert "rita" in listed.stdout
    assert key[:12] in listed.stdout
    assert key not in listed.stdout
    assert revoked.exit_code == 0
    assert "revoked key 1 'rita' (reviewer)" in revoked.stdout
    assert again.exit_code == 2
    assert "already revoked" in again.output
    assert unknown.exit_code == 2
    assert "no key named or numbered 'nobody'" in unknown.output
    assert "every request is refused until a key is created" in " ".join(after.stdout.split())


def test_keys_create_refuses_a_bad_role_or_name(runner: CliRunner) -> None:
    bad_role = runner.invoke(cli, ["keys", "create", "--role", "root", "--name", "x"])
    bad_name = runner.invoke(cli, ["keys", "create", "--role", "agent", "--name", "a b"])

    assert bad_role.exit_code == 2
    assert bad_name.exit_code == 2
    assert "validation_error: name:" in " ".join(bad_name.output.split())
