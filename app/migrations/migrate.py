"""Alembic migrations, configured in code (no alembic.ini at the repository root)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config for ``database_url``."""
    # Alembic is imported on use: it costs a second or two at start-up otherwise.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade_sync(database_url: str, revision: str) -> None:
    """Revert migrations down to ``revision`` (blocking)."""
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations in a worker thread: Alembic runs its own event loop there."""
    await anyio.to_thread.run_sync(upgrade_sync, database_url, revision)
