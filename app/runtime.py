"""The process's long-lived resources, opened once and shared by the API, CLI and eval."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import JuryConfig, load_config
from app.core.db import SessionMaker, create_engine, create_sessionmaker
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.deliberation.service import VerdictService
from app.providers.hub import ProviderHub
from app.providers.local.runtime import serve_local_models
from app.providers.preflight import check_hosted_credentials, check_ollama_models
from app.security.ledger import DatabaseSpendLedger
from app.security.service import Authenticator
from app.security.spend import SpendGuard
from app.trust.active import TrustSource
from app.trust.policy import TrustPolicy


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request or command needs, built once per process."""

    settings: Settings
    config: JuryConfig
    engine: AsyncEngine
    sessionmaker: SessionMaker
    hub: ProviderHub
    verdicts: VerdictService
    trust: TrustSource
    trust_policy: TrustPolicy
    auth: Authenticator


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, config: JuryConfig | None = None
) -> AsyncIterator[Runtime]:
    """Load the config, serve its local models, open the database and build the services."""
    config = config or load_config(settings.config)
    async with (
        serve_local_models(config) as local_limiter,
        _open_services(settings, config, local_limiter) as runtime,
    ):
        yield runtime


@asynccontextmanager
async def _open_services(
    settings: Settings, config: JuryConfig, local_limiter: anyio.CapacityLimiter | None
) -> AsyncIterator[Runtime]:
    """Migrate and open the database, and build the services."""
    check_hosted_credentials(config, os.environ)
    await check_ollama_models(config)
    url = settings.resolved_database_url()
    if settings.auto_migrate:
        await upgrade(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    hub = ProviderHub(config, local_limiter=local_limiter)
    trust = TrustSource(sessionmaker, config)
    auth = Authenticator(sessionmaker, require_keys=settings.require_api_keys)
    verdicts = VerdictService(
        config=config,
        hub=hub,
        sessionmaker=sessionmaker,
        settings=settings,
        weights=trust,
        calibration=trust,
        spend=SpendGuard(DatabaseSpendLedger(sessionmaker), config.budgets),
    )
    try:
        # Weights learned for a juror's previous model do not apply; say so at start-up.
        await trust.report_drift()
        await auth.start()
        yield Runtime(
            settings=settings,
            config=config,
            engine=engine,
            sessionmaker=sessionmaker,
            hub=hub,
            verdicts=verdicts,
            trust=trust,
            trust_policy=TrustPolicy(),
            auth=auth,
        )
    finally:
        # Before the engine goes: verdicts in progress finish, or record their interruption.
        with anyio.CancelScope(shield=True):
            await verdicts.shutdown(settings.shutdown_grace_s)
        await engine.dispose()
