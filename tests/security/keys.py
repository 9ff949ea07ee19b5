"""Builders of the security tests: keys stored straight in a test database, auth headers."""

from __future__ import annotations

from collections.abc import Mapping

from app.core.db import create_engine, create_sessionmaker, session_scope
from app.security.models import Role
from app.security.schemas import KeyCreate, KeyCreated
from app.security.service import KeyService


async def create_key(database_url: str, name: str, role: Role | str) -> KeyCreated:
    """Create an API key in the database and return it with its id."""
    engine = create_engine(database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            return await KeyService(session).create(KeyCreate(name=name, role=Role(role)))
    finally:
        await engine.dispose()


async def add_key(database_url: str, name: str, role: Role | str) -> str:
    """Create an API key in the database and return the key itself."""
    return (await create_key(database_url, name, role)).key


async def add_keys(database_url: str, roles: Mapping[str, Role]) -> dict[str, str]:
    """Create one key per name and return them by name."""
    return {name: await add_key(database_url, name, role) for name, role in roles.items()}


def bearer(key: str) -> dict[str, str]:
    """Return the header that presents ``key``."""
    return {"Authorization": f"Bearer {key}"}
