"""``jury serve``: one uvicorn process, or ``--workers N`` of them on one socket.

Why uvicorn's own workers and not granian or gunicorn: it is the server Jury already runs, so
one and two workers differ only in the number of processes (the bench's ratio measures
scaling, not a server swap); it adds no dependency; and its supervisor restarts a worker that
dies. Each worker is a whole Jury process: its own event loop, runtime, database pool and
record writer, sharing one listening socket the kernel hands connections from.

What a worker keeps to itself, and why ``--workers > 1`` needs Redis (``JURY_REDIS_URL``):
without Redis, idempotency keys, per-key rate limits, SSE progress events and the queue of
asynchronous verdicts are in-process equivalents, so a retry, an event stream or a limit would
depend on which worker the connection reached. With Redis they are shared. The verdict record,
trust weights, API keys and the spend ledger live in the database; the API-key and
trust-weight caches are per process and bounded by their TTLs (``JURY_AUTH_CACHE_S``,
``JURY_TRUST_CACHE_S``), as with replicas. Local model servers: each worker holds its own
limiter, so two workers may decode on one local server at once.

The schema is migrated once, here, before the workers start: workers migrating the same
database at once would race.
"""

from __future__ import annotations

import functools
import math
import os

import anyio

from app.core.errors import ConfigError
from app.core.settings import Settings

# The ASGI factory each worker process imports (workers are spawned, not forked).
APP_FACTORY = "app.http.app:create_app"
# How long the supervisor waits for a worker's health-check answer before it restarts it.
# uvicorn's 5 s default kills workers that are still importing on a loaded machine: a spawned
# worker re-imports the CLI before it can answer, measured at up to 45 s with load 14 on 2 cores.
WORKER_HEALTHCHECK_S = 120


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse a worker count that cannot work: below 1, or above 1 without Redis."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"--workers {workers} needs JURY_REDIS_URL: without Redis, idempotency keys, rate "
            "limits, SSE progress and the verdict queue are per process, so they would depend "
            "on which worker a connection reached"
        )


def worker_environment(settings: Settings) -> dict[str, str]:
    """Return what every worker's ``Settings()`` must read: this config, no second migration."""
    environment = {"JURY_CONFIG": str(settings.config.resolve()), "JURY_AUTO_MIGRATE": "false"}
    if settings.reopen_local_mode:
        # The flag may have come from the command line, which the workers do not see.
        environment["JURY_REOPEN_LOCAL_MODE"] = "true"
    return environment


def run_server(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve the API on ``host:port`` with ``workers`` processes (1: this one)."""
    import uvicorn

    check_workers(settings, workers)
    serve = functools.partial(
        uvicorn.run,
        host=host,
        port=port,
        log_level="info",
        access_log=settings.access_log,
        # Requests still running after the grace are cancelled: their verdicts are recorded
        # as interrupted before the lifespan closes the database.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )
    if workers == 1:
        from app.http.app import create_app

        serve(create_app(settings))
        return
    if settings.auto_migrate:
        from app.migrations.migrate import upgrade

        anyio.run(upgrade, settings.resolved_database_url())
    os.environ.update(worker_environment(settings))
    serve(
        APP_FACTORY,
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )
