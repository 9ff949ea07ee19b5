"""Migration 0002 (trust tables): from an empty database, down and up again, on both engines."""

from __future__ import annotations

import anyio
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from app.core.db import create_engine
from app.migrations.migrate import alembic_config, downgrade_sync, upgrade_sync

TRUST_TABLES = {
    "outcomes",
    "weights_versions",
    "weights_activations",
    "trust_proposals",
    "audit_log",
}


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def tables(url: str) -> set[str]:
    """Return the table names of a database."""

    async def read() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_table_names)
        finally:
            await engine.dispose()

    return anyio.run(read)


def _round_trip(url: str) -> None:
    upgrade_sync(url)
    assert tables(url) >= TRUST_TABLES | {"verdicts", "model_calls"}
    # The models and the migrations describe the same schema.
    command.check(alembic_config(url))
    downgrade_sync(url, "0001")
    assert not tables(url) & TRUST_TABLES
    assert "verdicts" in tables(url)
    upgrade_sync(url)
    assert tables(url) >= TRUST_TABLES


def test_trust_migration_round_trip(empty_database: str) -> None:
    _round_trip(empty_database)
