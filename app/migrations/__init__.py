"""Alembic migrations and the helper that imports every table."""
