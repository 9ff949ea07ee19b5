"""Alembic migrations: empty → head → base on SQLite and PostgreSQL, and head matches the models.

These tests run migrations themselves, so each works in a database of its own: a new SQLite file,
or a PostgreSQL database created for the test and dropped after it (the shared test database
stays at head for the other tests).
"""

from __future__ import annotations

from typing import Any

import anyio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app.core.db import create_engine
from app.migrations.migrate import alembic_config, downgrade_sync, upgrade_sync
from app.migrations.tables import import_all_tables


def _inspect(url: str, work: Any) -> Any:
    async def main() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return anyio.run(main)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _model_tables() -> set[str]:
    import_all_tables()
    return set(SQLModel.metadata.tables)


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_upgrade_to_head_matches_the_models(empty_database: str) -> None:
    assert _inspect(empty_database, _tables) == set()

    upgrade_sync(empty_database)

    assert _inspect(empty_database, _tables) == _model_tables() | {"alembic_version"}
    assert _inspect(empty_database, _revision) == _head(empty_database)
    # Autogenerate would write nothing: the migrations and the models agree.
    assert _inspect(empty_database, _differences) == []


def test_downgrade_to_base_removes_everything(empty_database: str) -> None:
    upgrade_sync(empty_database)

    downgrade_sync(empty_database, "base")

    assert _inspect(empty_database, _tables) == {"alembic_version"}
    assert _inspect(empty_database, _revision) is None
    assert len(_inspect(empty_database, _differences)) >= len(_model_tables())
    # And back up again: nothing was left behind (an index, a type) to collide with.
    upgrade_sync(empty_database)
    assert _inspect(empty_database, _differences) == []


def test_every_revision_steps_down_and_up(empty_database: str) -> None:
    revisions = list(ScriptDirectory.from_config(alembic_config(empty_database)).walk_revisions())
    upgrade_sync(empty_database)

    for revision in revisions:  # newest first
        assert _inspect(empty_database, _revision) == revision.revision
        downgrade_sync(empty_database, "-1")
    assert _inspect(empty_database, _revision) is None
    for revision in reversed(revisions):
        upgrade_sync(empty_database, "+1")
        assert _inspect(empty_database, _revision) == revision.revision
