"""The ASGI application: ``create_app()`` and the lifespan that owns its resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.core.config import JuryConfig
from app.core.heap import freeze_startup_heap
from app.core.settings import Settings, get_settings
from app.http import keys, ops, review, review_auth, trust, verdicts
from app.http.mcp.server import BearerCallers, RuntimeRef, build_server, http_routes
from app.http.middleware import BodySizeLimit, RefuseNul, RequestTiming, install_error_handlers
from app.http.sessions import Sessions
from app.runtime import open_runtime


def create_app(settings: Settings | None = None, *, config: JuryConfig | None = None) -> FastAPI:
    """Build the application; resources open in the lifespan, never at import time."""
    settings = settings or get_settings()
    # The MCP endpoint shares the runtime: the same services, keys and roles as REST.
    mcp_runtime = RuntimeRef()
    mcp = build_server(mcp_runtime, BearerCallers(mcp_runtime))
    mcp_routes = http_routes(mcp, allowed_hosts=settings.allowed_hosts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_runtime(settings, config=config, run_queue=True) as runtime,
            mcp.session_manager.run(),
        ):
            app.state.runtime = runtime
            mcp_runtime.set(runtime)
            freeze_startup_heap()
            try:
                yield
            finally:
                mcp_runtime.set(None)

    app = FastAPI(
        title="Jury",
        summary="Multi-model jury deliberation: a recorded verdict before an agent acts.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    review_auth.install(app)
    app.state.review_sessions = Sessions.from_settings(settings)
    app.state.allowed_hosts = settings.allowed_hosts
    app.include_router(verdicts.router)
    app.include_router(trust.router)
    # The review pages check their callers themselves: a browser signs in (review_auth).
    app.include_router(review.assets)
    app.include_router(review_auth.router)
    app.include_router(review.router)
    app.include_router(keys.router)
    app.include_router(ops.router)
    app.router.routes.extend(mcp_routes)
    app.add_middleware(RefuseNul)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestTiming)
    return app
