"""Upstreams for real litellm calls: litellm's pooled connections are closed before one stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients


@asynccontextmanager
async def closing_litellm_clients(
    upstream: AbstractAsyncContextManager[str],
) -> AsyncIterator[str]:
    """Serve ``upstream`` (its base URL); close litellm's clients before it stops.

    litellm pools its HTTP clients for the whole process: closing them keeps a connection to a
    server that has stopped from outliving the test that started it.
    """
    async with upstream as base:
        try:
            yield base
        finally:
            await close_litellm_async_clients()  # type: ignore[no-untyped-call]
