"""The process's long-lived resources, opened once and shared by the API, CLI and eval."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import JuryConfig, load_config
from app.core.db import SessionMaker, create_engine, create_sessionmaker
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.deliberation.service import VerdictService
from app.providers.hub import ProviderHub
from app.providers.preflight import check_hosted_credentials, check_ollama_models
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


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, config: JuryConfig | None = None
) -> AsyncIterator[Runtime]:
    """Load the config, migrate and open the database, and build the services."""
    config = config or load_config(settings.config)
    check_hosted_credentials(config, os.environ)
    await check_ollama_models(config)
    url = settings.resolved_database_url()
    if settings.auto_migrate:
        await upgrade(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    hub = ProviderHub(config)
    trust = TrustSource(sessionmaker, config)
    try:
        # Weights learned for a juror's previous model do not apply; say so at start-up.
        await trust.report_drift()
        yield Runtime(
            settings=settings,
            config=config,
            engine=engine,
            sessionmaker=sessionmaker,
            hub=hub,
            verdicts=VerdictService(
                config=config,
                hub=hub,
                sessionmaker=sessionmaker,
                settings=settings,
                weights=trust,
                calibration=trust,
            ),
            trust=trust,
            trust_policy=TrustPolicy(),
        )
    finally:
        await engine.dispose()
