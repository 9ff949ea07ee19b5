"""Operational endpoints: liveness, readiness, Prometheus metrics.

They need no API key, on purpose: orchestrator probes and Prometheus scrapers carry none, and
none of them reveals a verdict, a question or a key (metrics are labelled only by configured
names and enums). Keep them off the public interface with the network, not with keys.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from app.core import metrics as core_metrics
from app.core.db import sqlite_file, sqlite_write_refusal
from app.core.errors import UnavailableError
from app.http.deps import RuntimeDep
from app.runtime import Runtime

router = APIRouter(tags=["operations"])

# A probe that hangs is worse than one that fails: an orchestrator's own timeout is about this.
READY_TIMEOUT_S = 0.5
# How long SQLite's write lock may be held by another connection before writes count as refused.
WRITE_PROBE_S = 0.2


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Say the process is alive."""
    return {"status": "ok"}


class Readiness(BaseModel):
    """Whether the process can serve verdicts, and the check of each dependency."""

    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, str]


@router.get(
    "/readyz",
    responses={
        503: {
            "model": Readiness,
            "description": "The database does not answer or refuses writes, or the providers "
            "are still starting.",
        }
    },
)
async def readyz(runtime: RuntimeDep, response: Response) -> Readiness:
    """Say whether the process can serve verdicts: its database must answer and take writes,
    and its providers must be loaded (litellm loads in the background after start-up).

    Redis is not needed to serve verdicts: without it the process is ``degraded`` (still 200),
    with in-process rate limits, idempotency keys, progress events and queue.
    """
    checks = {
        "database": await _database(runtime),
        "providers": runtime.hub.readiness(),
        "redis": await _redis(runtime),
    }
    ready = checks["database"] == "ok" and checks["providers"] == "ok"
    status: Literal["ready", "degraded", "unavailable"] = "ready" if ready else "unavailable"
    if ready and checks["redis"] not in ("ok", "not configured"):
        status = "degraded"
    response.status_code = 200 if ready else 503
    return Readiness(status=status, checks=checks)


async def _database(runtime: Runtime) -> str:
    try:
        with anyio.fail_after(READY_TIMEOUT_S):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            refusal = await _sqlite_writes(runtime)
    except TimeoutError:
        return f"unavailable: no answer within {READY_TIMEOUT_S:g} s"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok" if refusal is None else f"unavailable: writes refused ({refusal})"


async def _sqlite_writes(runtime: Runtime) -> str | None:
    # A SQLite file answers reads while another connection holds its write lock: only a write
    # shows that verdicts cannot be recorded. PostgreSQL's SELECT 1 says enough.
    path = sqlite_file(runtime.engine)
    if path is None:
        return None
    return await anyio.to_thread.run_sync(
        sqlite_write_refusal, path, WRITE_PROBE_S, abandon_on_cancel=True
    )


async def _redis(runtime: Runtime) -> str:
    if runtime.redis is None:
        return "not configured"
    failure = await runtime.redis.probe()
    return "ok" if failure is None else f"degraded: {failure}"


@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep) -> Response:
    """Expose Prometheus metrics."""
    # With the database down the gauge keeps its last value; /readyz says why.
    with contextlib.suppress(UnavailableError):
        core_metrics.QUEUED_VERDICTS.set(await runtime.verdict_reads.count_queued())
    return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)
