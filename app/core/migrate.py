"""Alembic migrations, configured in code (no alembic.ini at the repository root)."""

from __future__ import annotations

from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config for ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade_sync(database_url: str, revision: str) -> None:
    """Revert migrations down to ``revision`` (blocking)."""
    command.downgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations in a worker thread: Alembic runs its own event loop there."""
    await anyio.to_thread.run_sync(upgrade_sync, database_url, revision)
