"""Fixtures of the trust workflow tests: their own databases, isolated from other suites.

- SQLite: a file per test, copied from a template migrated once per session;
- PostgreSQL: a throwaway database of this session's own (``jury_trust_<pid>_<hex>``), migrated
  once, with the tables emptied before each test.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.migrate import upgrade_sync

TABLES_CHILD_FIRST = (
    "audit_log",
    "weights_activations",
    "weights_versions",
    "trust_proposals",
    "outcomes",
    "model_calls",
    "verdicts",
)
TRUST_POSTGRES_URL = os.environ.get(
    "JURY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run the async tests on asyncio, the loop the service runs on."""
    return "asyncio"


def sqlite_url(path: Path) -> str:
    """Return the async URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def trust_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file migrated to head, copied by each test."""
    path = tmp_path_factory.mktemp("trust-template") / "jury.db"
    upgrade_sync(sqlite_url(path))
    return path


@pytest.fixture
def trust_sqlite(trust_sqlite_template: Path, tmp_path: Path) -> str:
    """Return the URL of a fresh, migrated SQLite database of this test's own."""
    path = tmp_path / "jury.db"
    shutil.copyfile(trust_sqlite_template, path)
    return sqlite_url(path)


async def _execute(url: str, *statements: str, autocommit: bool = False) -> None:
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = create_async_engine(url, **options)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def run_sql(url: str, *statements: str, autocommit: bool = False) -> None:
    """Run SQL on ``url`` from synchronous code."""
    anyio.run(lambda: _execute(url, *statements, autocommit=autocommit))


def on_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database of the same server."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def trust_postgres_server() -> str:
    """Return the PostgreSQL server URL, or fail saying how to run without it."""
    try:
        run_sql(TRUST_POSTGRES_URL, "SELECT 1")
    except (OSError, DBAPIError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {TRUST_POSTGRES_URL} ({type(exc).__name__}); "
            'start it, set JURY_TEST_POSTGRES_URL, or deselect with -m "not postgres"'
        )
    return TRUST_POSTGRES_URL


@contextmanager
def _throwaway_database(server: str) -> Iterator[str]:
    name = f"jury_trust_{os.getpid()}_{secrets.token_hex(3)}"
    run_sql(server, f'CREATE DATABASE "{name}"', autocommit=True)
    try:
        yield on_database(server, name)
    finally:
        run_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)


@pytest.fixture
def empty_postgres(trust_postgres_server: str) -> Iterator[str]:
    """Return an empty PostgreSQL database of this test's own (dropped afterwards)."""
    with _throwaway_database(trust_postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def trust_postgres_migrated(trust_postgres_server: str) -> Iterator[str]:
    """Return a PostgreSQL database of this session's own, migrated to head."""
    with _throwaway_database(trust_postgres_server) as url:
        upgrade_sync(url)
        yield url


@pytest.fixture
def trust_postgres(trust_postgres_migrated: str) -> str:
    """Return the session's PostgreSQL database with every table emptied."""
    # DELETE in foreign-key order: on a handful of rows it is much faster than TRUNCATE.
    run_sql(trust_postgres_migrated, *(f"DELETE FROM {table}" for table in TABLES_CHILD_FIRST))
    return trust_postgres_migrated


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def trust_database(request: pytest.FixtureRequest) -> str:
    """Return a fresh, migrated database: a SQLite file, then PostgreSQL."""
    fixture = "trust_sqlite" if request.param == "sqlite" else "trust_postgres"
    url: str = request.getfixturevalue(fixture)
    return url
