"""Migration 0003 (API keys, spend per key per day, verdict owner) keeps the recorded verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from app.core.db import create_engine
from app.migrations.migrate import alembic_config, downgrade_sync, upgrade_sync
from tests.databases import run_sql, sqlite_url

INSERT_VERDICT = (
    "INSERT INTO verdicts (id, created_at, status, question, options, category, panel, request,"
    " metadata, prompt_tokens, completion_tokens, cost_usd) VALUES ('v1', '2026-01-01 00:00:00',"
    " 'completed', 'Ship it?', '[]', 'default', 'default', '{}', '{}', 0, 0, 0)"
)


def _inspect(url: str, work: Any) -> Any:
    async def main() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return anyio.run(main)


def _columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("verdicts")}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _verdict_ids(connection: Connection) -> list[str]:
    return list(connection.execute(text("SELECT id FROM verdicts")).scalars())


def test_0003_adds_keys_and_the_owner_column_and_keeps_verdicts(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "jury.db")
    upgrade_sync(url, "0002")
    run_sql(url, INSERT_VERDICT)

    upgrade_sync(url)
    command.check(alembic_config(url))  # the models and the migrations agree
    assert {"api_keys", "key_spend"} <= _inspect(url, _tables)
    assert "api_key_id" in _inspect(url, _columns)
    assert _inspect(url, _verdict_ids) == ["v1"]

    downgrade_sync(url, "0002")
    assert not {"api_keys", "key_spend"} & _inspect(url, _tables)
    assert "api_key_id" not in _inspect(url, _columns)
    assert _inspect(url, _verdict_ids) == ["v1"]


INSERT_KEY = (
    "INSERT INTO api_keys (name, role, prefix, key_hash, created_at, revoked_at) VALUES "
    "('{name}', 'admin', 'jury_x', '{name}-hash', '{at}', '2026-03-01 00:00:00')"
)


def _keys_since(connection: Connection) -> list[str]:
    return [
        str(at) for at in connection.execute(text("SELECT keys_since FROM auth_state")).scalars()
    ]


def test_0006_remembers_that_keys_existed_in_a_database_that_had_some(tmp_path: Path) -> None:
    with_keys, without = sqlite_url(tmp_path / "keys.db"), sqlite_url(tmp_path / "none.db")
    for url in (with_keys, without):
        upgrade_sync(url, "0005")
    run_sql(with_keys, INSERT_KEY.format(name="second", at="2026-02-01 00:00:00"))
    run_sql(with_keys, INSERT_KEY.format(name="first", at="2026-01-01 00:00:00"))

    for url in (with_keys, without):
        upgrade_sync(url)
        command.check(alembic_config(url))

    # Every key of it revoked, yet the database says keys have existed since the first.
    assert [at[:10] for at in _inspect(with_keys, _keys_since)] == ["2026-01-01"]
    assert _inspect(without, _keys_since) == []
    downgrade_sync(with_keys, "0005")
    assert "auth_state" not in _inspect(with_keys, _tables)
