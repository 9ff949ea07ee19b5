"""Import every table module so SQLModel's metadata is complete (Alembic, tests)."""

from __future__ import annotations


def import_all_tables() -> None:
    """Import the modules that define tables."""
