"""The process's long-lived resources, opened once and shared by the API, CLI and eval."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import JuryConfig, load_config
from app.core.db import SessionMaker, create_engine, create_sessionmaker
from app.core.redis import RedisLink, open_redis
from app.core.settings import Settings
from app.migrations.migrate import upgrade
from app.providers.hub import ProviderHub
from app.providers.local.runtime import serve_local_models
from app.providers.local.supervisor import StartupProgress
from app.providers.preflight import check_hosted_credentials, check_ollama_models
from app.security.ledger import DatabaseSpendLedger
from app.security.ratelimit import RateLimiter
from app.security.service import Authenticator
from app.security.spend import SpendGuard
from app.trust.active import TrustSource
from app.trust.policy import TrustPolicy
from app.verdicts.idempotency import IdempotencyKeys
from app.verdicts.intake import Intake
from app.verdicts.jobs.claims import VerdictJobs
from app.verdicts.jobs.queue import MemoryQueue, VerdictQueue, make_broker, recover
from app.verdicts.progress import Progress, ProgressBus
from app.verdicts.reads import VerdictReads
from app.verdicts.service import VerdictService
from app.verdicts.sweeper import Sweeper


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request or command needs, built once per process."""

    settings: Settings
    config: JuryConfig
    engine: AsyncEngine
    sessionmaker: SessionMaker
    hub: ProviderHub
    verdicts: VerdictService
    verdict_reads: VerdictReads
    trust: TrustSource
    trust_policy: TrustPolicy
    auth: Authenticator
    redis: RedisLink | None
    jobs: VerdictJobs
    queue: VerdictQueue
    intake: Intake
    progress: Progress
    sweeper: Sweeper


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    config: JuryConfig | None = None,
    run_queue: bool = False,
    sweep: bool = False,
    progress: StartupProgress | None = None,
    models: bool = True,
) -> AsyncIterator[Runtime]:
    """Load the config, serve its local models, open the database and build the services.

    ``run_queue``: this process runs queued verdicts itself (``jury serve``): those sent while
    Redis failed, and, without Redis, all of them, those a previous process left included.
    ``sweep`` (implied by ``run_queue``): this process sweeps up the rows dead processes left.
    ``progress`` hears each step of starting the local models (assembly, server start).
    ``models``: serve the local models and check the hosted ones' credentials and the Ollama
    ones' presence. False for a command that calls no model (reading the record, trust): it
    then neither waits for the servers nor needs the local extra installed.
    """
    config = config or load_config(settings.config)
    local_models = serve_local_models(config, progress=progress) if models else nullcontext()
    async with (
        local_models as local_limiter,
        open_redis(settings) as link,
        _open_services(settings, config, local_limiter, link, check_models=models) as runtime,
        AsyncExitStack() as stack,
    ):
        if run_queue:
            await _run_queue(stack, runtime)
        if run_queue or sweep:
            await _sweep(stack, runtime)
        yield runtime


async def _run_queue(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Serve the in-process queue until the runtime closes; without Redis, take up leftovers."""
    group = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(group.cancel_scope.cancel)
    # Unwound first: queued verdicts in progress get the shutdown grace, like requests do.
    stack.push_async_callback(_drain, runtime)
    await group.start(runtime.queue.memory.serve)
    if runtime.redis is None:
        await recover(runtime.queue.memory, runtime.sessionmaker)


async def _sweep(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Sweep up abandoned rows until the runtime closes."""
    group = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(group.cancel_scope.cancel)
    await group.start(runtime.sweeper.run)


async def _drain(runtime: Runtime) -> None:
    with anyio.CancelScope(shield=True):
        await runtime.verdicts.shutdown(runtime.settings.shutdown_grace_s)


@asynccontextmanager
async def _open_services(
    settings: Settings,
    config: JuryConfig,
    local_limiter: anyio.CapacityLimiter | None,
    link: RedisLink | None,
    *,
    check_models: bool,
) -> AsyncIterator[Runtime]:
    """Migrate and open the database, and build the services."""
    if check_models:
        # It imports litellm for hosted models: seconds of blocking work, kept off the loop.
        await anyio.to_thread.run_sync(check_hosted_credentials, config, os.environ)
        await check_ollama_models(config)
    url = settings.resolved_database_url()
    if settings.auto_migrate:
        await upgrade(url)
    engine = create_engine(url, timeout_s=settings.database_timeout_s)
    sessionmaker = create_sessionmaker(engine)
    hub = ProviderHub(config, local_limiter=local_limiter)
    trust = TrustSource(sessionmaker, config, cache_s=settings.trust_cache_s)
    auth = Authenticator(
        sessionmaker,
        require_keys=settings.require_api_keys,
        reopen_local=settings.reopen_local_mode,
        cache_s=settings.auth_cache_s,
    )
    bus = ProgressBus(link, ttl_s=settings.events_ttl_s)
    verdicts = VerdictService(
        config=config,
        hub=hub,
        sessionmaker=sessionmaker,
        settings=settings,
        weights=trust,
        calibration=trust,
        rules=trust,
        spend=SpendGuard(DatabaseSpendLedger(sessionmaker), config.budgets),
        progress=bus,
    )
    reads = VerdictReads(sessionmaker, config)
    jobs = VerdictJobs(verdicts, sessionmaker, lease_s=settings.worker_lease_s)
    queue = VerdictQueue(
        MemoryQueue(jobs, concurrency=settings.worker_concurrency, retry_s=settings.worker_lease_s),
        link=link,
        broker=make_broker(settings, settings.redis_url, worker=False)
        if settings.redis_url
        else None,
    )
    intake = Intake(
        config=config,
        verdicts=verdicts,
        queue=queue,
        limiter=RateLimiter(settings.rate_limit_per_minute, link),
        keys=IdempotencyKeys(link, ttl_s=settings.idempotency_ttl_s, sessionmaker=sessionmaker),
        reads=reads,
    )
    async with AsyncExitStack() as stack:
        try:
            # Weights learned for a juror's previous model do not apply; say so at start-up.
            await trust.report_drift()
            await auth.start()
            records = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(records.cancel_scope.cancel)
            await records.start(verdicts.write_records)
            # In the background: the process answers (and /readyz says "starting") meanwhile.
            records.start_soon(hub.warm_up)
            yield Runtime(
                settings=settings,
                config=config,
                engine=engine,
                sessionmaker=sessionmaker,
                hub=hub,
                verdicts=verdicts,
                verdict_reads=reads,
                trust=trust,
                trust_policy=TrustPolicy(),
                auth=auth,
                redis=link,
                jobs=jobs,
                queue=queue,
                intake=intake,
                progress=Progress(bus, reads),
                sweeper=Sweeper(
                    sessionmaker=sessionmaker,
                    config=config,
                    settings=settings,
                    queue=queue,
                    events=bus,
                ),
            )
        finally:
            # Before the engine goes: verdicts in progress finish, or record their interruption.
            with anyio.CancelScope(shield=True):
                await verdicts.shutdown(settings.shutdown_grace_s)
                await queue.aclose()
            try:
                # Then the record writer stops, committing what it was handed first.
                await stack.aclose()
            finally:
                verdicts.close()
                await hub.aclose()
                await engine.dispose()
