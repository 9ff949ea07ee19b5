"""Helpers for the test databases, usable from synchronous code (fixtures, migration tests)."""

from __future__ import annotations

from pathlib import Path

import anyio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

# Every table but Alembic's own, whichever migrations created them.
LIST_TABLES = (
    "SELECT tablename FROM pg_tables "
    "WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
)


def sqlite_url(path: Path) -> str:
    """Return the async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _execute(url: str, statements: tuple[str, ...], *, autocommit: bool) -> None:
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = create_async_engine(url, **options)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def run_sql(url: str, *statements: str, autocommit: bool = False) -> None:
    """Run SQL statements on ``url`` (AUTOCOMMIT for CREATE/DROP DATABASE)."""
    anyio.run(lambda: _execute(url, statements, autocommit=autocommit))


async def _truncate_all(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            tables = (await connection.execute(text(LIST_TABLES))).scalars().all()
            if tables:
                names = ", ".join(f'"{table}"' for table in tables)
                await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


def empty_postgres(url: str) -> None:
    """Delete every row of every table of a PostgreSQL database, Alembic's version aside."""
    anyio.run(_truncate_all, url)
