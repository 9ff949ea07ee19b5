"""A fake OpenAI-compatible upstream on a free loopback port, for fault gates and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

ChatHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHAT_PATH = "/v1/chat/completions"


@asynccontextmanager
async def chat_upstream(handler: ChatHandler) -> AsyncIterator[str]:
    """Serve ``handler`` as ``POST /v1/chat/completions``; yield the server's ``/v1`` base URL."""
    async with loopback_upstream({CHAT_PATH: handler}) as api_base:
        yield api_base


@asynccontextmanager
async def loopback_upstream(routes: Mapping[str, ChatHandler]) -> AsyncIterator[str]:
    """Serve each handler as ``POST`` on its path; yield the server's ``/v1`` base URL."""
    application = web.Application()
    for path, handler in routes.items():
        application.router.add_post(path, handler)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()
