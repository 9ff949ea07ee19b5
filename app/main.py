"""The ASGI application: ``create_app()`` and the lifespan that owns its resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import ops
from app.core.config import JuryConfig
from app.core.heap import freeze_startup_heap
from app.core.http import BodySizeLimit, RequestTiming, install_error_handlers
from app.core.settings import Settings, get_settings
from app.deliberation import api as deliberation_api
from app.runtime import open_runtime
from app.security import api as security_api
from app.security.deps import Reviewer
from app.trust import api as trust_api
from app.trust import web as trust_web


def create_app(settings: Settings | None = None, *, config: JuryConfig | None = None) -> FastAPI:
    """Build the application; resources open in the lifespan, never at import time."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, config=config, run_queue=True) as runtime:
            app.state.runtime = runtime
            app.state.verdict_service = runtime.verdicts
            freeze_startup_heap()
            yield

    app = FastAPI(
        title="Jury",
        summary="Multi-model jury deliberation: a recorded verdict before an agent acts.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(deliberation_api.router)
    app.include_router(trust_api.router)
    # The review pages decide weights: reviewers' (and admins') only, like the trust API.
    app.include_router(trust_web.router, dependencies=[Reviewer])
    app.include_router(security_api.router)
    app.include_router(ops.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestTiming)
    return app
