"""Database engine and sessions: SQLite by default, PostgreSQL in production.

Services never commit: the request's unit of work does (``session_scope``), or, for the
verdict record, the recorder's own short transactions.

What a failed statement means is decided once, in ``database_error``:

- the database cannot be reached or does not answer in time (connection lost, refused,
  timed out, SQLite locked, server shutting down): ``UnavailableError``, 503, retry later;
- a unique or foreign-key constraint refused the row (two requests raced for one name):
  ``ConflictError``, 409;
- a value the database cannot store got past the schemas: ``InvalidRequestError``, 422;
- anything else (a bug of Jury's): ``DatabaseError``, 500.

Every refusal that is not unavailability is logged with what the work was for (``about``: a
verdict's id), the driver's error class and SQL state, never the statement's parameters (they
may hold a caller's data).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic_core import to_json
from sqlalchemy import Connection, Engine, Insert, Update, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import (
    ConflictError,
    DatabaseError,
    InvalidRequestError,
    JuryError,
    UnavailableError,
)

logger = logging.getLogger(__name__)

SessionMaker = async_sessionmaker[AsyncSession]

# What the database work of the current task is for, named in the log of a refused statement.
# What the work is for: a name, or a function naming it when an error is logged (a name
# that costs work to build, such as a batch's verdicts, is built only then).
_subject: ContextVar[str | Callable[[], str] | None] = ContextVar(
    "jury_database_subject", default=None
)

# PostgreSQL SQL state classes (and codes) that mean the server is not there to do the work:
# connection exceptions, insufficient resources, operator intervention (a statement timeout,
# a shutdown), system errors; a missing table means a database Jury has not migrated yet.
_UNAVAILABLE_STATES = ("08", "53", "57", "58", "42P01")
# Integrity constraint violations, and transactions rolled back for a concurrent one.
_CONFLICT_STATES = ("23", "40")
_DATA_STATES = ("22",)  # data exceptions: a value out of range, a NUL in text, bad encoding

# What session_scope and connection_scope turn into typed errors: the driver's own errors,
# the network's, a timeout, and sqlite3's OverflowError for an integer past 64 bits.
DATABASE_FAULTS = (DBAPIError, OSError, TimeoutError, OverflowError)

# The longest one statement, one connection attempt or one wait for a pooled connection may
# take, whatever the database does (a frozen server included): past it the statement fails and
# the request answers 503. Jury's statements take milliseconds; the settings can change it.
DEFAULT_TIMEOUT_S = 5.0


def json_text(value: Any) -> str:
    """Return the text a JSON column stores for ``value``: every engine's serializer.

    pydantic-core's encoder, not ``json.dumps``: a verdict stores each call's prompt and the
    whole response as JSON, 4x faster so (``json.dumps`` was a twentieth of a verdict's CPU in
    ``jury bench``). The same JSON to any reader: compact, non-ASCII as UTF-8, NaN as NaN.
    """
    return to_json(value).decode()


def create_engine(
    url: str, *, echo: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
) -> AsyncEngine:
    """Create the async engine, every statement and connection bounded by ``timeout_s``.

    PostgreSQL: a connect timeout, a client-side command timeout (it holds when the server
    stops answering altogether) and the same server-side ``statement_timeout`` (the server
    stops the work too). SQLite files: WAL mode and a busy timeout of the same length.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo, timeout_s=timeout_s)
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "asyncpg":
        connect_args = {
            "timeout": timeout_s,
            "command_timeout": timeout_s,
            "server_settings": {"statement_timeout": str(int(timeout_s * 1000))},
        }
    return create_async_engine(
        url,
        echo=echo,
        json_serializer=json_text,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=timeout_s,
        connect_args=connect_args,
    )


def _sqlite_engine(url: str, *, echo: bool, timeout_s: float) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # In the URL, so that the blocking engine on the same file (below) waits as long.
    parsed = parsed.update_query_dict({"timeout": str(timeout_s)})
    engine = create_async_engine(parsed, echo=echo, json_serializer=json_text)
    event.listen(engine.sync_engine, "connect", functools.partial(_sqlite_pragmas, timeout_s))
    return engine


def _sqlite_timeout_s(url: URL) -> float:
    value = url.query.get("timeout")
    return float(value) if isinstance(value, str) else DEFAULT_TIMEOUT_S


def _sqlite_pragmas(timeout_s: float, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; the busy timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def threaded_sqlite_engine(engine: AsyncEngine) -> Engine | None:
    """Return a blocking engine on the same SQLite file, for work run in a worker thread.

    aiosqlite hands every DBAPI call (cursor, execute, commit, the pool's reset) to its
    thread and back: five event-loop wake-ups per transaction. Run in one worker thread, a
    whole transaction on this engine is one. None for other databases and in-memory SQLite
    (another connection would see another database).
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    # Each transaction commits or rolls back itself: the pool's reset would be a wasted call.
    sync = sa_create_engine(
        url.set(drivername="sqlite"), pool_reset_on_return=None, json_serializer=json_text
    )
    event.listen(sync, "connect", functools.partial(_sqlite_pragmas, _sqlite_timeout_s(url)))
    return sync


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled once for SQLite, run on the driver's own connection.

    For the verdict record's group commit on a SQLite file, whose statements are few and built
    once (``app/verdicts/record/statements.py``): SQLAlchemy's execution of each (its cache
    key, parameter construction, result set-up) was 40% of a transaction's CPU, measured on
    the bench's rows (0.27 against 0.16 ms for a verdict row and three calls). The SQL is
    SQLAlchemy's, compiled for the dialect; each value goes through its column type's own bind
    processor (JSON text, timezone-aware datetimes), as SQLAlchemy would do; a driver error
    arrives as SQLAlchemy's (``DBAPIError.instance``), so every caller's handling holds. Only
    while no one listens to SQLAlchemy's statement events (``sqlite_driver``).
    """

    sql: str
    names: tuple[str, ...]  # the bound values, in placeholder order
    # (position, bind processor) of each value whose column type converts it; the rest go as
    # they are (text, numbers, None).
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]

    def run(
        self, driver: sqlite3.Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> int:
        """Execute with ``params`` (a sequence of rows: one executemany); return the row count."""
        try:
            if isinstance(params, Mapping):
                cursor = driver.execute(self.sql, self._bind(params))
            else:
                cursor = driver.executemany(self.sql, [self._bind(row) for row in params])
        except sqlite3.Error as exc:
            raise DBAPIError.instance(self.sql, None, exc, sqlite3.Error) from exc
        return cursor.rowcount

    def _bind(self, values: Mapping[str, Any]) -> list[Any]:
        bound = [values[name] for name in self.names]
        for position, convert in self.conversions:
            bound[position] = convert(bound[position])
        return bound


@functools.lru_cache(maxsize=256)
def driver_statement(
    statement: Insert | Update, keys: tuple[str, ...], dialect: Dialect
) -> DriverStatement | None:
    """Return ``statement`` compiled for ``dialect`` with ``keys`` as its values, or None when
    it cannot run as it stands on the driver: SQLAlchemy would compute values of its own (a
    column's client-side default) or bind one the keys do not hold.

    ``keys`` name an INSERT's columns, or an UPDATE's bind parameters (its values are in it).
    """
    column_keys = list(keys) if isinstance(statement, Insert) else None
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    if compiled.insert_prefetch or compiled.update_prefetch:
        return None
    names = tuple(compiled.positiontup)
    if not set(names) <= set(keys):
        return None
    processors = [
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    conversions = tuple((i, process) for i, process in enumerate(processors) if process)
    return DriverStatement(compiled.string, names, conversions)


def statement_on_driver(
    statement: Insert | Update,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    dialect: Dialect,
) -> DriverStatement | None:
    """Return ``statement`` ready to run on the driver with ``params`` (one UPDATE's, or the rows
    of an executemany), or None: rows that name different columns, or ``driver_statement``'s."""
    if isinstance(params, Mapping):
        keys: tuple[str, ...] = tuple(params)
    else:
        keys = tuple(params[0]) if params else ()
        if any(tuple(row) != keys for row in params[1:]):
            return None
    return driver_statement(statement, keys, dialect) if keys else None


# SQLAlchemy's events around each statement: they fire only on its own execution.
_STATEMENT_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)


def sqlite_driver(connection: Connection) -> sqlite3.Connection | None:
    """Return ``connection``'s SQLite driver connection, for ``DriverStatement``; None on
    another driver, or while a listener waits for its statement events (a tracer, a statement
    log, a test's injected fault), which fire only when SQLAlchemy runs the statement."""
    driver = connection.connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        return None
    dispatch = connection.dispatch
    return None if any(getattr(dispatch, name) for name in _STATEMENT_EVENTS) else driver


def sqlite_file(engine: AsyncEngine) -> str | None:
    """Return the path of ``engine``'s SQLite file (None: another database, or in memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return str(Path(url.database).expanduser())


def sqlite_write_refusal(path: str, timeout_s: float) -> str | None:
    """Return why the SQLite file refuses a write now (None: it takes one); blocking.

    Takes the write lock (``BEGIN IMMEDIATE``) on a connection of its own, waiting at most
    ``timeout_s`` for it, and gives it back at once: a lock another connection holds longer
    (a long transaction, another process) means every write waits, then fails. The file is
    opened read-write, never created.
    """
    try:
        connection = sqlite3.connect(
            f"file:{quote(path)}?mode=rw", uri=True, timeout=timeout_s, isolation_level=None
        )
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
    return None


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    """Return the session factory bound to ``engine``."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def connection_scope(sessionmaker: SessionMaker) -> AsyncIterator[AsyncConnection]:
    """Yield a bare connection in a transaction that commits on success, for Core statements.

    No ORM session: a hot-path write (``RecordWriter``) spends a third less CPU without one.
    Errors map as in ``session_scope``.
    """
    engine: AsyncEngine = sessionmaker.kw["bind"]
    try:
        async with engine.begin() as connection:
            yield connection
    except DATABASE_FAULTS as exc:
        raise database_error(exc) from exc


@asynccontextmanager
async def session_scope(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits on success and rolls back on error.

    A database that cannot be reached becomes ``UnavailableError`` (HTTP 503); other
    refusals become the typed errors of ``database_error``.
    """
    try:
        async with sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
    except DATABASE_FAULTS as exc:
        raise database_error(exc) from exc


@contextmanager
def about(subject: str | Callable[[], str]) -> Iterator[None]:
    """Name what the database work in this block is for (``verdict <id>``), for the error log.

    ``subject`` may be a function returning the name: it is called only if an error is logged.
    """
    token = _subject.set(subject)
    try:
        yield
    finally:
        _subject.reset(token)


def database_error(exc: BaseException) -> JuryError:
    """Return the typed error a failed database operation answers; log it unless unavailable."""
    state = _sql_state(exc)
    if _unavailable(exc, state):
        return UnavailableError(f"database unavailable: {type(exc).__name__}")
    reference = _driver_error_name(exc) + (f" (SQL state {state})" if state else "")
    named = _subject.get()
    subject = (named() if callable(named) else named) or "unnamed work"
    # The parameters are left out on purpose: str(exc) would print a caller's data.
    if isinstance(exc, IntegrityError) or _in(state, _CONFLICT_STATES):
        # A race two requests can run into (one name created twice): expected, not a fault.
        logger.warning("database refused the work for %s: %s", subject, reference)
        return ConflictError(
            "the change conflicts with one made at the same time (a name or row that now "
            "exists); read the current state and retry",
            reason=reference,
        )
    logger.error("database refused the work for %s: %s", subject, reference)
    if isinstance(exc, OverflowError) or _in(state, _DATA_STATES) or _refused_value(exc):
        return InvalidRequestError("the database cannot store a value of the request")
    return DatabaseError("the database refused the work; it is logged", reason=reference)


def _unavailable(exc: BaseException, state: str | None) -> bool:
    if isinstance(exc, OSError | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    # SQLite's OperationalError is a lock, a missing file or table, a full disk: all
    # unavailability. The dialect marks a connection it saw drop as invalidated.
    return (
        exc.connection_invalidated
        or isinstance(exc, OperationalError)
        or _in(state, _UNAVAILABLE_STATES)
    )


def _sql_state(exc: BaseException) -> str | None:
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state if isinstance(state, str) else None


def _in(state: str | None, prefixes: tuple[str, ...]) -> bool:
    return state is not None and state.startswith(prefixes)


def _refused_value(exc: BaseException) -> bool:
    """Say whether the driver refused a Python value before sending it (asyncpg's DataError)."""
    return isinstance(getattr(getattr(exc, "orig", None), "__cause__", None), ValueError)


def _driver_error_name(exc: BaseException) -> str:
    driver = getattr(getattr(exc, "orig", None), "__cause__", None) or getattr(exc, "orig", None)
    return type(driver or exc).__name__
