"""Shared fixtures: the anyio backend, the test databases (SQLite and PostgreSQL) and Redis.

Isolation. The verdict service commits its own short transactions (the running row, then each
model call as it completes, then the outcome), so that a crash mid-verdict leaves every finished
call on record. One rolled-back outer transaction per test cannot contain that, so instead:

- SQLite: every test gets a fresh database file under its ``tmp_path``, copied from a template
  migrated once per session (migrating each file would cost a quarter of a second per test);
- PostgreSQL: one throwaway database per session, migrated to head once, and every table
  emptied (TRUNCATE) before each test that uses it.

The builders the tests use live in importable modules (``tests/builders.py``,
``tests/databases.py``), not here: a conftest is a plugin, not a module to import from.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.exc import DBAPIError

from app.migrations.migrate import upgrade_sync
from tests.databases import empty_postgres, run_sql, sqlite_url, with_database
from tests.redis_servers import REDIS_URL, flush
from tests.services import ServiceError, ensure_postgres, ensure_redis

# Importing litellm must never reach for the network (it would fetch its price map): the app sets
# this in app.core.settings, but a test may import the litellm provider before that module.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# The server the PostgreSQL tests use; each session works in a database of its own on it.
POSTGRES_URL = os.environ.get(
    "JURY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run the async tests on asyncio, the loop the service runs on."""
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file migrated to head, to be copied by each test."""
    path = tmp_path_factory.mktemp("template") / "jury.db"
    upgrade_sync(sqlite_url(path))
    return path


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> str:
    """Return the URL of a fresh, migrated SQLite file of this test's own."""
    path = tmp_path / "jury.db"
    shutil.copyfile(sqlite_template, path)
    return sqlite_url(path)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """Return the PostgreSQL server URL, started if it is down; fail clearly if it cannot be."""
    try:
        ensure_postgres(POSTGRES_URL)
        run_sql(POSTGRES_URL, "SELECT 1")
    except (OSError, DBAPIError, ServiceError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(exc).__name__}); start it, "
            'set JURY_TEST_POSTGRES_URL, or deselect these tests with -m "not postgres"'
        )
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_session_database(postgres_server: str) -> Iterator[str]:
    """Create a throwaway database for this test session and migrate it to head.

    A database of its own keeps concurrent test runs on one server from emptying each other's.
    """
    name = f"jury_test_{os.getpid()}_{secrets.token_hex(3)}"
    run_sql(postgres_server, f'CREATE DATABASE "{name}"', autocommit=True)
    url = with_database(postgres_server, name)
    try:
        upgrade_sync(url)
        yield url
    finally:
        run_sql(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)


@pytest.fixture
def postgres_database(postgres_session_database: str) -> str:
    """Return the session's PostgreSQL database, emptied of every row."""
    empty_postgres(postgres_session_database)
    return postgres_session_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Return a fresh, migrated database: a SQLite file, then PostgreSQL."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a database with no tables at all."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "empty.db")
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"jury_migrate_{secrets.token_hex(4)}"
    run_sql(server, f'CREATE DATABASE "{name}"', autocommit=True)
    try:
        yield with_database(server, name)
    finally:
        run_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """Return the shared Redis server's test URL, the server started if it is down."""
    try:
        ensure_redis(REDIS_URL)
    except ServiceError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}); start it or set JURY_TEST_REDIS_URL"
        )
    return REDIS_URL


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """Return the URL of the shared Redis server's test database, emptied."""
    try:
        flush(redis_server_url)
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {redis_server_url} ({type(exc).__name__}); start it or "
            "set JURY_TEST_REDIS_URL"
        )
    return redis_server_url


@pytest.fixture(params=["memory", "redis"])
def redis_or_none(request: pytest.FixtureRequest) -> str | None:
    """Return None (in-process equivalents), then the shared Redis test database's URL."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url
